"""Couplings: the one-liner, the net's input/output shapes per split axis, the scale functions, errors."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.nn import MLP, ElementwiseParams
from survae_jax import functional as F
from survae_jax.transforms.bijections import AdditiveCoupling, AffineCoupling, Coupling


class ConstNet(nnx.Module):
    """Returns fixed per-element parameters ``(..., m, P)`` and records the shape it was given."""

    def __init__(self, theta):
        self.theta = jnp.asarray(theta, jnp.float32)
        self.seen = None

    def __call__(self, x_id, context=None):
        object.__setattr__(self, "seen", tuple(x_id.shape))
        return jnp.broadcast_to(self.theta, (*x_id.shape[:-1], *self.theta.shape[-2:]))


def test_one_liner_zero_init_is_identity():
    c = AffineCoupling(MLP(1, 2, zero_init_last=True, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(0), (5, 2))
    z, v = c.forward(x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(v, np.zeros(5))


@pytest.mark.parametrize(
    ("fn", "scale_at_0"),
    [("exp", 1.0), ("softplus", math.log(2.0)), ("sigmoid", 1 / (1 + math.exp(-2.0)) + 1e-3), ("tanh_exp", 1.0)],
)
def test_scale_functions_closed_form(fn, scale_at_0):
    """z2 = scale(s) x2 + t with (s, t) per element; V = sum log scale(s)."""
    s, t = 0.0, 0.7
    c = AffineCoupling(ConstNet([[s, t], [s, t]]), scale_fn=fn)
    x = jnp.array([[1.0, 2.0, -1.0, 3.0]])
    z, v = c.forward(x)
    np.testing.assert_allclose(z, [[1.0, 2.0, -scale_at_0 + t, 3 * scale_at_0 + t]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(v, [2 * math.log(scale_at_0)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c.inverse(z), x, rtol=1e-6)


def test_exp_scale_never_overflows_in_v():
    c = AffineCoupling(ConstNet([[100.0, 0.0]]))
    _, v = c.forward(jnp.array([[0.0, 1.0]]))
    assert float(v[0]) == 100.0  # log(exp(100)) would be inf in float32


def test_both_net_output_layouts_agree():
    """net output (..., m * P) (read sequentially) or (..., m, P) (after ElementwiseParams)."""
    mlp = MLP(2, 4, hidden=(8,), rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(1), (3, 4))
    z1, v1 = AffineCoupling(mlp).forward(x)
    z2, v2 = AffineCoupling(nnx.Sequential(mlp, ElementwiseParams(2))).forward(x)
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_array_equal(v1, v2)


@pytest.mark.parametrize(
    ("shape", "axis", "num_condition", "net_in", "theta_shape"),
    [
        ((3, 4), -1, None, (3, 2), (2, 2)),
        ((3, 5), -1, None, (3, 3), (2, 2)),  # odd: the identity part is the larger half
        ((3, 5), -1, 1, (3, 1), (4, 2)),
        ((2, 4, 4, 6), -1, None, (2, 4, 4, 3), (3, 2)),  # NHWC channels
        ((2, 7, 2), -1, None, (2, 7, 1), (1, 2)),  # point coordinates
        ((2, 6, 2), 1, None, (2, 3, 2), (2, 2)),  # points: net maps (B, 3, 2) to (B, 3, 2, P)
    ],
    ids=["vector", "vector-odd", "num_condition", "image-channels", "points-coords", "points-axis1"],
)
def test_split_shapes(shape, axis, num_condition, net_in, theta_shape):
    x = jax.random.normal(jax.random.key(2), shape)
    net = ConstNet(jnp.zeros(theta_shape).at[..., 1].set(1.0))
    z, v = AffineCoupling(net, axis=axis, num_condition=num_condition).forward(x)
    assert net.seen == net_in
    n = net_in[axis]
    np.testing.assert_array_equal(jnp.take(z, jnp.arange(n), axis=axis), jnp.take(x, jnp.arange(n), axis=axis))
    np.testing.assert_allclose(jnp.take(z, jnp.arange(n, shape[axis]), axis=axis),
                               jnp.take(x, jnp.arange(n, shape[axis]), axis=axis) + 1.0, rtol=1e-6)
    np.testing.assert_array_equal(v, np.zeros(shape[0]))


def test_points_axis1_with_per_point_mlp():
    """Split the points of (B, N, 2); an MLP on each point's coordinates maps (B, n, 2) -> (B, n, 4)."""
    c = AffineCoupling(MLP(2, 4, hidden=(8,), rngs=nnx.Rngs(3)), axis=1)
    x = jax.random.normal(jax.random.key(3), (2, 6, 2))
    z, _ = c.forward(x)
    np.testing.assert_allclose(c.inverse(z), x, atol=1e-5)


def test_additive_is_volume_preserving():
    c = AdditiveCoupling(MLP(2, 2, hidden=(8,), rngs=nnx.Rngs(4)))
    x = jax.random.normal(jax.random.key(4), (3, 4))
    z, v = c.forward(x)
    np.testing.assert_array_equal(v, np.zeros(3))
    np.testing.assert_allclose(z[:, 2:] - x[:, 2:], MLP(2, 2, hidden=(8,), rngs=nnx.Rngs(4))(x[:, :2]), rtol=1e-6)


def test_conditional_passes_context_to_the_net():
    c = AffineCoupling(MLP(1 + 2, 2, hidden=(8,), rngs=nnx.Rngs(5)), conditional=True)
    x = jax.random.normal(jax.random.key(5), (3, 2))
    ctx1, ctx2 = jnp.zeros((3, 2)), jnp.ones((3, 2))
    z1, _ = c.forward(x, context=ctx1)
    z2, _ = c.forward(x, context=ctx2)
    assert not np.allclose(z1, z2)
    np.testing.assert_allclose(c.inverse(z2, context=ctx2), x, atol=1e-5)
    with pytest.raises(ValueError, match="AffineCoupling is conditional and needs context="):
        c.forward(x)


def test_unconditional_ignores_context():
    c = AffineCoupling(MLP(1, 2, hidden=(8,), rngs=nnx.Rngs(6)))
    x = jax.random.normal(jax.random.key(6), (3, 2))
    np.testing.assert_array_equal(c.forward(x)[0], c.forward(x, context=jnp.ones((3, 5)))[0])


def test_errors_name_layer_and_shapes():
    c = AffineCoupling(MLP(1, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"AffineCoupling: expected axis -1 of length > num_condition=1.*\(4, 1\)"):
        c.forward(jnp.ones((4, 1)))
    with pytest.raises(ValueError, match=r"AffineCoupling.*rank >= 2.*\(4,\)"):
        c.forward(jnp.ones((4,)))
    # the net's own exception, re-raised with a note naming the layer and the shapes
    with pytest.raises(ValueError, match=r"MLP: expected input") as info:
        c.forward(jnp.ones((4, 3)))
    assert any("AffineCoupling: its net rejected the identity part of shape (4, 2)" in n
               for n in info.value.__notes__)
    bad = AffineCoupling(MLP(1, 3, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"AffineCoupling: the net maps .*\(4, 1\) to \(4, 3\); expected \(4, 2\) or \(4, 1, 2\)"):
        bad.forward(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="AdditiveCoupling.*floating"):
        AdditiveCoupling(MLP(1, 1, rngs=nnx.Rngs(0))).forward(jnp.ones((4, 2), jnp.int32))
    with pytest.raises(ValueError, match="scale_fn must be one of"):
        AffineCoupling(MLP(1, 2, rngs=nnx.Rngs(0)), scale_fn="relu")
    with pytest.raises(ValueError, match="batch axis"):
        AffineCoupling(MLP(1, 2, rngs=nnx.Rngs(0)), axis=0)


def test_float64_with_float32_net():
    c = AffineCoupling(MLP(1, 2, hidden=(8,), rngs=nnx.Rngs(7)))
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 2)), jnp.float64)
        z, v = c.forward(x)
        assert z.dtype == jnp.float64 and v.dtype == jnp.float64
        np.testing.assert_allclose(c.inverse(z), x, rtol=1e-12, atol=1e-12)


@dataclasses.dataclass(frozen=True)
class ScaleOnly(F.ElementwiseFamily):
    """A user's family: ``z = x * exp(a)``, one parameter per element."""

    num_params: ClassVar[int] = 1

    def forward(self, x, theta):
        return x * jnp.exp(theta[..., 0]), theta[..., 0]

    def inverse(self, z, theta):
        return z * jnp.exp(-theta[..., 0])


def test_user_family_goes_through_coupling():
    """V of a user-written family through Coupling = log|det jacfwd| per example; round trip."""
    c = Coupling(MLP(2, 3, hidden=(8,), activation=jnp.tanh, rngs=nnx.Rngs(8)), ScaleOnly(), num_condition=2)
    x = jax.random.normal(jax.random.key(8), (3, 5))
    z, v = c.forward(x)
    jac = jax.vmap(jax.jacfwd(lambda r: c.forward(r[None])[0][0]))(x)
    np.testing.assert_allclose(v, jnp.linalg.slogdet(jac)[1], rtol=1e-5, atol=1e-6)
    assert abs(float(v[0])) > 1e-3  # not the identity
    np.testing.assert_allclose(c.inverse(z), x, rtol=1e-5, atol=1e-6)


def test_module_equals_its_pair_and_families_are_one_coupling():
    net = MLP(2, 4, hidden=(8,), rngs=nnx.Rngs(9))
    x = jax.random.normal(jax.random.key(9), (3, 4))
    for layer, family in [(AffineCoupling(net, scale_fn="softplus"), F.Affine("softplus")),
                          (AdditiveCoupling(MLP(2, 2, rngs=nnx.Rngs(9))), F.Additive())]:
        assert isinstance(layer, Coupling) and layer.family == family
        z, v = F.coupling_forward(x, layer.net, family)
        np.testing.assert_array_equal(layer.forward(x)[0], z)
        np.testing.assert_array_equal(layer.forward(x)[1], v)
        np.testing.assert_array_equal(layer.inverse(z), F.coupling_inverse(z, layer.net, family))
    assert hash(F.Affine("exp")) == hash(F.Affine("exp")) and F.Affine("exp") != F.Affine("sigmoid")
