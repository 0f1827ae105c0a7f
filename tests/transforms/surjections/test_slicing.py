"""Slice (inference slicing, Table 7) and Augment (generative slicing, Table 6 / App. H.3).

The registry (``cases_inference.py``, ``cases_generative.py``) runs the kind's properties,
the 100-key right-inverse check included; here: exact values, quadrature and errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.scipy.stats import norm

from survae_jax.distributions import ConditionalNormal, DiagonalNormal, StandardNormal
from survae_jax.flow import Flow
from survae_jax.testing import integrate_density
from survae_jax.transforms.surjections.slicing import Augment, Slice


def _fixed_linear(kernel, bias, dtype=jnp.float32):
    """A fixed ``nnx.Linear`` with the given kernel ``(in, out)`` and bias ``(out,)``."""
    kernel = jnp.asarray(kernel, dtype)
    lin = nnx.Linear(*kernel.shape, rngs=nnx.Rngs(0), param_dtype=dtype, dtype=dtype)
    lin.kernel[...] = kernel
    lin.bias[...] = jnp.asarray(bias, dtype)
    return lin


def _base(loc, scale, dtype=jnp.float32):
    base = DiagonalNormal((1,), dtype=dtype)
    base.loc[...] = jnp.array([loc], dtype)
    base.log_scale[...] = jnp.log(jnp.array([scale], dtype))
    return base


# p(x2 | z): mean 0.5 z - 0.2, log-scale 0.1 z - 0.3
_DECODER_KERNEL, _DECODER_BIAS = [[0.5, 0.1]], [-0.2, -0.3]


def test_slice_values_default_decoder():
    x = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    z, v = Slice(1, size=3).forward(x)
    np.testing.assert_array_equal(z, x[:, :1])
    want = norm.logpdf(x[:, 1:]).sum(1)
    np.testing.assert_allclose(v, want, rtol=1e-6)
    assert v.shape == (2,)


def test_slice_values_conditional_decoder_and_axis1():
    dec = ConditionalNormal(_fixed_linear(_DECODER_KERNEL, _DECODER_BIAS))
    x = jnp.array([[1.0, 0.7], [-2.0, 0.1]])
    z, v = Slice(1, dec).forward(x)
    mean, log_scale = 0.5 * x[:, 0] - 0.2, 0.1 * x[:, 0] - 0.3
    np.testing.assert_allclose(v, norm.logpdf(x[:, 1], mean, jnp.exp(log_scale)), rtol=1e-6)
    # points (B, N, 2) sliced along the point axis
    pts = jnp.arange(12.0).reshape(2, 3, 2) / 10
    zp, vp = Slice(2, axis=1, size=3).forward(pts)
    np.testing.assert_array_equal(zp, pts[:, :2])
    np.testing.assert_allclose(vp, norm.logpdf(pts[:, 2]).sum(1), rtol=1e-6)


def test_slice_inverse_draws_the_rest():
    z = jnp.zeros((4000, 1))
    x = Slice(1, size=3).inverse(z, key=jax.random.key(1))
    assert x.shape == (4000, 3)
    np.testing.assert_array_equal(x[:, :1], z)
    np.testing.assert_allclose(np.mean(x[:, 1:]), 0.0, atol=0.05)
    np.testing.assert_allclose(np.std(x[:, 1:]), 1.0, atol=0.05)


@pytest.mark.parametrize("conditional", [False, True], ids=["default", "conditional-decoder"])
def test_slice_flow_integrates_to_one(conditional):
    """2-D x, 1-D base: p(x) = p_base(x1) p(x2|x1) is a density on R^2, so the integral is 1."""
    with jax.enable_x64(True):
        dec = ConditionalNormal(_fixed_linear(_DECODER_KERNEL, _DECODER_BIAS, jnp.float64)) if conditional else None
        flow = Flow(_base(0.3, 1.2, jnp.float64), [Slice(1, dec, size=2)])
        assert flow.exact
        mass = integrate_density(flow, (-9.0, -9.0), (9.0, 9.0), num=300, dtype=jnp.float64)
        x = jnp.array([[0.4, -0.3], [-1.5, 2.0]])
        lp = flow.log_prob(x)
        m2 = 0.5 * x[:, 0] - 0.2 if conditional else 0.0
        s2 = jnp.exp(0.1 * x[:, 0] - 0.3) if conditional else 1.0
        want = norm.logpdf(x[:, 0], 0.3, 1.2) + norm.logpdf(x[:, 1], m2, s2)
    assert abs(mass - 1.0) < 1e-3, mass
    np.testing.assert_allclose(lp, want, rtol=1e-10)


def test_slice_errors():
    s = Slice(2, size=4)
    with pytest.raises(ValueError, match=r"Slice.*\(3, 3\)"):
        s.forward(jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="Slice.*key"):
        s.inverse(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"Slice.*\(3, 3\)"):
        s.inverse(jnp.zeros((3, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="Slice.*size="):
        Slice(1).inverse(jnp.zeros((3, 1)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"Slice.*\(3, 1\)"):
        Slice(1).forward(jnp.zeros((3, 1)))  # nothing left to drop
    with pytest.raises(ValueError, match="Slice.*batch axis"):
        Slice(1, axis=0)
    with pytest.raises(ValueError, match="Slice"):
        Slice(0)
    # the decoder's net expects 1 input: its own error (TypeError), with a note naming Slice
    with pytest.raises(TypeError, match=r"Slice: raised by its decoder .*\(3, 2\)"):
        Slice(2, ConditionalNormal(_fixed_linear(_DECODER_KERNEL, _DECODER_BIAS))).forward(jnp.zeros((3, 4)))


def test_slice_jit_float64():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (3, 4), jnp.float64)
        z, v = jax.jit(lambda t, x: t.forward(x))(Slice(1, size=4), x)
        xs = jax.jit(lambda t, z, k: t.inverse(z, key=k))(Slice(1, size=4), z, jax.random.key(1))
    assert z.dtype == v.dtype == xs.dtype == jnp.float64


# ----------------------------------------------------------------------------- Augment
def test_augment_listing2_values():
    """Listing 2: Augment(Normal((2,)), 2): z = (x, z2), V = -log N(z2; 0, I), inverse drops z2."""
    aug = Augment(StandardNormal((2,)), 2)
    x = jnp.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0]])
    z, v = aug.forward(x, key=jax.random.key(3))
    assert z.shape == (3, 4)
    np.testing.assert_array_equal(z[:, :2], x)
    np.testing.assert_allclose(v, -norm.logpdf(z[:, 2:]).sum(1), rtol=1e-6)
    np.testing.assert_array_equal(aug.inverse(z), x)
    # in a flow (Listing 2 with the couplings left out): log_prob is an ELBO, sample drops z2
    flow = Flow(StandardNormal((4,)), [aug])
    assert not flow.exact
    assert flow.sample(jax.random.key(0), 5).shape == (5, 2)
    elbo = flow.log_prob(x, key=jax.random.key(4))
    np.testing.assert_allclose(elbo, norm.logpdf(x).sum(1), rtol=1e-5)  # N(0,I) base: V cancels z2 exactly


def test_augment_conditional_encoder_gets_x():
    """q(z2|x) = N(2 x, e^{-1}): the encoder's context is x, and V = -log q(z2|x)."""
    enc = ConditionalNormal(_fixed_linear([[2.0, 0.0]], [0.0, -1.0]))
    aug = Augment(enc, 1)
    x = jnp.array([[10.0], [-10.0]])
    z, v = aug.forward(x, key=jax.random.key(0))
    assert abs(float(z[0, 1]) - 20.0) < 3.0 and abs(float(z[1, 1]) + 20.0) < 3.0
    np.testing.assert_allclose(v, -norm.logpdf(z[:, 1], 2 * x[:, 0], math.exp(-1.0)), rtol=1e-6)


def test_augment_points_axis1():
    aug = Augment(StandardNormal((2, 2)), 3, axis=1)
    x = jnp.ones((2, 3, 2))
    z, v = aug.forward(x, key=jax.random.key(0))
    assert z.shape == (2, 5, 2)
    np.testing.assert_array_equal(aug.inverse(z), x)
    np.testing.assert_allclose(v, -norm.logpdf(z[:, 3:]).sum((1, 2)), rtol=1e-6)


def test_augment_errors():
    aug = Augment(StandardNormal((2,)), 2)
    with pytest.raises(ValueError, match="Augment.*key"):
        aug.forward(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"Augment.*\(3, 3\)"):
        aug.forward(jnp.zeros((3, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"Augment.*\(3, 2\)"):
        aug.inverse(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="Augment.*encoder sample"):
        Augment(StandardNormal((2, 2)), 2).forward(jnp.zeros((3, 2)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="Augment.*batch axis"):
        Augment(StandardNormal((2,)), 2, axis=0)


def test_augment_float64_widens():
    """A float64 x with a float32 encoder gives a float64 latent and V (widened, never narrowed)."""
    with jax.enable_x64(True):
        x = jnp.zeros((2, 2), jnp.float64)
        z, v = jax.jit(lambda t, x, k: t.forward(x, key=k))(Augment(StandardNormal((1,)), 2), x, jax.random.key(0))
    assert z.dtype == v.dtype == jnp.float64
