"""Autoregressive bijections (MAF): closed form, V against slogdet(jacfwd) with a triangular
Jacobian, the D-pass inverse in float64, the IAF direction, context and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax import functional as F
from survae_jax.nn import MADE
from survae_jax.testing import to_float64
from survae_jax.transforms import Invert
from survae_jax.transforms.bijections import AdditiveAutoregressive, AffineAutoregressive, AutoregressiveBijection


def _two_d_net(x, context=None):
    """A hand-written autoregressive net on D = 2 (flat sequential layout ``(B, 2 * 2)``):
    ``theta_1 = (0.3, -1)``, ``theta_2 = (0.5 x_1, 2 x_1)``."""
    x1 = x[:, 0]
    return jnp.stack([jnp.full_like(x1, 0.3), jnp.full_like(x1, -1.0), 0.5 * x1, 2.0 * x1], axis=-1)


def test_closed_form_with_a_plain_function_as_the_net():
    x = jnp.array([[1.0, 2.0], [-0.5, 0.25]])
    z, v = F.autoregressive_forward(x, _two_d_net, F.Affine("exp"))
    x1, x2 = np.asarray(x[:, 0]), np.asarray(x[:, 1])
    want = np.stack([np.exp(0.3) * x1 - 1.0, np.exp(0.5 * x1) * x2 + 2.0 * x1], axis=-1)
    np.testing.assert_allclose(z, want, rtol=1e-6)
    np.testing.assert_allclose(v, 0.3 + 0.5 * x1, rtol=1e-6)
    np.testing.assert_allclose(F.autoregressive_inverse(z, _two_d_net, F.Affine("exp")), x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("order", [None, (4, 0, 2, 5, 1, 3)], ids=["natural", "permuted"])
def test_v_is_slogdet_of_a_triangular_jacobian_and_the_inverse_is_exact_in_float64(order):
    d = 6
    layer = AffineAutoregressive(MADE(d, (16,), 2, order=order, activation=jnp.tanh, rngs=nnx.Rngs(0)))
    rank = np.arange(d) if order is None else np.asarray(order)
    with jax.enable_x64(True):
        layer = to_float64(layer)
        x = jax.random.normal(jax.random.key(1), (3, d), jnp.float64)
        z, v = layer.forward(x)
        jac = np.asarray(jax.vmap(jax.jacfwd(lambda xi: layer.forward(xi[None])[0][0]))(x))
        sorted_jac = jac[:, np.argsort(rank)][:, :, np.argsort(rank)]
        np.testing.assert_array_equal(np.triu(sorted_jac, 1), 0.0)  # lower triangular in the order
        assert np.all(np.tril(sorted_jac, -1)[:, np.tril_indices(d, -1)[0], np.tril_indices(d, -1)[1]] != 0)
        np.testing.assert_allclose(v, np.linalg.slogdet(jac)[1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.log(np.abs(np.diagonal(jac, axis1=1, axis2=2))).sum(-1), v, rtol=1e-12)
        x_back, v_back = layer.inverse_and_log_det(z)
        np.testing.assert_allclose(x_back, x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(v_back, v, rtol=1e-12, atol=1e-12)


def test_iaf_direction_conditional_and_additive():
    made = MADE(3, (8,), 2, order=(2, 0, 1), context_features=2, rngs=nnx.Rngs(0))
    maf = AffineAutoregressive(made, conditional=True)
    iaf = Invert(maf)
    u = jax.random.normal(jax.random.key(0), (4, 3))
    c = jax.random.normal(jax.random.key(1), (4, 2))
    x, v_iaf = iaf.forward(u, context=c)  # IAF: D passes for the density direction
    z, v = maf.forward(x, context=c)
    np.testing.assert_allclose(z, u, atol=1e-5)
    np.testing.assert_allclose(v_iaf, -v, rtol=1e-6)
    np.testing.assert_allclose(iaf.inverse(x, context=c), z)  # IAF sampling: one pass
    other = maf.forward(x, context=c + 1.0)[0]
    assert np.all(np.abs(np.asarray(other - z)) > 0)  # every entry, the first in the order too, is conditional
    with pytest.raises(ValueError, match="AffineAutoregressive is conditional and needs context="):
        maf.forward(x)
    add = AdditiveAutoregressive(MADE(3, (8,), 1, rngs=nnx.Rngs(1)))
    za, va = add.forward(x)
    np.testing.assert_array_equal(va, np.zeros(4))
    np.testing.assert_allclose(add.inverse(za), x, atol=1e-6)


def test_default_family_zero_init_identity_and_errors():
    layer = AutoregressiveBijection(MADE(3, (8,), 2, zero_init_last=True, rngs=nnx.Rngs(0)))
    assert layer.family == F.Affine()
    x = jax.random.normal(jax.random.key(0), (2, 3))
    z, v = layer.forward(x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(v, np.zeros(2))
    with pytest.raises(ValueError, match="AutoregressiveBijection: expected input of rank 2"):
        layer.forward(jnp.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"MADE: expected input of shape \(\.\.\., 3\)") as err:
        layer.inverse(jnp.zeros((2, 4)))
    assert "AutoregressiveBijection: its autoregressive net rejected the input of shape (2, 4)" in err.value.__notes__[0]
    with pytest.raises(ValueError, match=r"AutoregressiveBijection: the net gives 2 parameter\(s\) per entry but "
                                         r"the family Additive needs 1"):
        AutoregressiveBijection(MADE(3, (8,), 2, rngs=nnx.Rngs(0)), F.Additive())
    with pytest.raises(TypeError, match="AutoregressiveBijection: family must have num_params"):
        AutoregressiveBijection(MADE(3, (8,), 2, rngs=nnx.Rngs(0)), object())
    with pytest.raises(ValueError, match=r"AutoregressiveBijection: the net maps \(2, 3\) to \(2, 5\)"):
        F.autoregressive_forward(x, lambda x_: jnp.zeros((2, 5)), F.Affine())
