"""Conv1x1 (dense and LU) and Squeeze2d: closed forms, layouts and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.transforms.bijections import Conv1x1, Squeeze2d


def test_lu_starts_at_the_same_rotation_as_dense():
    dense, lu = Conv1x1(5, rngs=nnx.Rngs(0)), Conv1x1(5, lu=True, rngs=nnx.Rngs(0))
    w_dense, w_lu = dense.functional_args()["weight"], lu.functional_args()["weight"]
    ld_dense, ld_lu = jnp.linalg.slogdet(w_dense)[1], lu.functional_args()["log_det"]
    np.testing.assert_allclose(w_lu, w_dense, atol=1e-6)
    np.testing.assert_allclose(w_dense @ w_dense.T, np.eye(5), atol=1e-5)  # a rotation
    np.testing.assert_allclose([ld_dense, ld_lu], [0.0, 0.0], atol=1e-5)


@pytest.mark.parametrize("lu", [False, True])
def test_v_is_positions_times_log_det(lu):
    """V = H * W * log|det W| for NHWC; checked after moving W away from a rotation."""
    c = Conv1x1(3, lu=lu, rngs=nnx.Rngs(1))
    if lu:
        c.log_s[...] = jnp.array([0.3, -0.2, 0.5])
    else:
        c.weight[...] = c.weight[...] @ jnp.diag(jnp.array([2.0, 0.5, 3.0]))
    w = c.functional_args()["weight"]
    x = jax.random.normal(jax.random.key(1), (2, 4, 5, 3))
    z, v = c.forward(x)
    np.testing.assert_allclose(z, jnp.einsum("ij,bhwj->bhwi", w, x), rtol=1e-5, atol=1e-6)
    want = 20 * np.linalg.slogdet(np.asarray(w, np.float64))[1]
    np.testing.assert_allclose(v, [want, want], rtol=1e-5)
    np.testing.assert_allclose(c.inverse(z), x, atol=1e-5)


def test_conv1x1_errors():
    c = Conv1x1(3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv1x1: expected input of shape \(B, \.\.\., 3\).*\(2, 4, 4, 2\)"):
        c.forward(jnp.ones((2, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"Conv1x1.*rank >= 2"):
        c.inverse(jnp.ones((3,)))


def test_squeeze_layout():
    """z[b, h, w, c f^2 + i f + j] = x[b, f h + i, f w + j, c]."""
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    z, v = Squeeze2d(2).forward(x)
    assert z.shape == (2, 2, 3, 12)
    np.testing.assert_array_equal(v, [0.0, 0.0])
    xn, zn = np.asarray(x), np.asarray(z)
    for b, h, w, c, i, j in [(0, 0, 0, 0, 0, 1), (1, 1, 2, 2, 1, 0), (0, 1, 1, 1, 1, 1)]:
        assert zn[b, h, w, c * 4 + i * 2 + j] == xn[b, 2 * h + i, 2 * w + j, c]
    np.testing.assert_array_equal(Squeeze2d(2).inverse(z), x)
    z3, _ = Squeeze2d(3).forward(jnp.ones((1, 3, 6, 2)))
    assert z3.shape == (1, 1, 2, 18)


def test_squeeze_errors():
    s = Squeeze2d(2)
    with pytest.raises(ValueError, match=r"Squeeze2d: expected input \(B, H, W, C\) with H and W divisible by 2, got \(2, 3, 4, 1\)"):
        s.forward(jnp.ones((2, 3, 4, 1)))
    with pytest.raises(ValueError, match=r"Squeeze2d: expected input of rank 4.*\(2, 4, 4\)"):
        s.forward(jnp.ones((2, 4, 4)))
    with pytest.raises(ValueError, match=r"Squeeze2d: expected latent \(B, H, W, C\) with C divisible by 4, got \(2, 2, 2, 6\)"):
        s.inverse(jnp.ones((2, 2, 2, 6)))
    with pytest.raises(ValueError, match="factor must be an int >= 2"):
        Squeeze2d(1)
