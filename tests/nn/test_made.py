"""MADE and MaskedDense: the autoregressive property through ``jax.jacfwd``, context, errors, dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.nn import MADE, MaskedDense
from survae_jax.nn.made import made_degrees

D, P = 5, 2


def _jacobians(made, x, c=None):
    """``d out[d, p] / d x_j`` ``(D, P, D)`` and ``d out / d c`` for one example."""
    jx = jax.jacfwd(lambda x_: made(x_[None], None if c is None else c[None])[0])(x)
    jc = None if c is None else jax.jacfwd(lambda c_: made(x[None], c_[None])[0])(c)
    return np.asarray(jx), None if jc is None else np.asarray(jc)


@pytest.mark.parametrize("order", [None, [2, 0, 4, 1, 3], [4, 3, 2, 1, 0]], ids=["natural", "permuted", "reversed"])
@pytest.mark.parametrize("context", [False, True], ids=["plain", "context"])
def test_made_jacobian_is_strictly_triangular_in_its_order(order, context):
    made = MADE(D, (8, 8), P, order=order, context_features=3 if context else None, activation=jnp.tanh,
                rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (D,))
    c = jax.random.normal(jax.random.key(2), (3,)) if context else None
    jx, jc = _jacobians(made, x, c)
    rank = np.arange(D) if order is None else np.asarray(order)
    allowed = rank[None, :] < rank[:, None]  # allowed[d, j]: out d may depend on x_j
    assert jx.shape == (D, P, D)
    # exactly zero where forbidden (on the diagonal too), nonzero for every allowed pair (full MADE)
    np.testing.assert_array_equal(jx[np.broadcast_to(~allowed[:, None, :], jx.shape)], 0.0)
    assert np.all(jx[np.broadcast_to(allowed[:, None, :], jx.shape)] != 0.0)
    # sorted by the order, the Jacobian of the first parameter is strictly lower triangular
    perm = np.argsort(rank)
    sorted_j = jx[perm][:, 0][:, perm]
    np.testing.assert_array_equal(np.triu(sorted_j), 0.0)
    assert np.count_nonzero(np.tril(sorted_j, -1)) == D * (D - 1) // 2
    if context:  # every output, the first in the order too, depends on the context
        assert jc.shape == (D, P, 3) and np.all(np.abs(jc).sum(-1) > 0)
    np.testing.assert_array_equal(np.asarray(made.order[...]), rank)


def test_made_without_hidden_layers_and_single_feature():
    made = MADE(3, (), 2, order=[1, 2, 0], rngs=nnx.Rngs(0))
    jx, _ = _jacobians(made, jnp.ones(3))
    np.testing.assert_array_equal(jx[2], 0.0)  # rank 0: depends on nothing
    np.testing.assert_array_equal(jx[0, :, [0, 1]], 0.0)  # rank 1: only x_2
    assert np.all(jx[0, :, 2] != 0) and np.all(jx[1, :, [0, 2]] != 0) and np.all(jx[1, :, 1] == 0)
    one = MADE(1, (4,), 3, context_features=2, rngs=nnx.Rngs(1))
    out = one(jnp.array([[0.5], [-3.0]]), jnp.zeros((2, 2)))
    assert out.shape == (2, 1, 3)
    np.testing.assert_array_equal(out[0], out[1])  # a constant of x


def test_made_degrees_cycle_over_hidden_units():
    degrees = made_degrees(4, (7,), order=[3, 1, 0, 2])
    np.testing.assert_array_equal(degrees[0], [4, 2, 1, 3])
    np.testing.assert_array_equal(degrees[1], [1, 2, 3, 1, 2, 3, 1])


def test_made_shapes_leading_axes_zero_init_and_float64():
    made = MADE(D, (6,), P, rngs=nnx.Rngs(0))
    assert made(jnp.ones((2, 3, D))).shape == (2, 3, D, P)
    zero = MADE(D, (6,), P, zero_init_last=True, context_features=2, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(zero(jnp.ones((3, D)), jnp.ones((3, 2))), np.zeros((3, D, P)))
    with jax.enable_x64(True):
        assert made(jnp.ones((2, D), jnp.float64)).dtype == jnp.float64


def test_masked_dense_is_x_times_masked_kernel_and_masked_weights_get_no_gradient():
    mask = np.array([[1, 0, 1], [0, 0, 1]], bool)
    layer = MaskedDense(2, 3, mask, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    x = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    want = x @ (np.asarray(layer.kernel[...]) * mask) + np.asarray(layer.bias[...])
    np.testing.assert_allclose(layer(x), want, rtol=1e-6)
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
    grads = jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p, rest)(x) ** 2))(params)
    np.testing.assert_array_equal(np.asarray(grads["kernel"][...])[~mask], 0.0)
    assert np.all(np.asarray(grads["kernel"][...])[mask] != 0.0)


def test_made_and_masked_dense_errors():
    made = MADE(D, (6,), P, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"MADE: expected input of shape \(\.\.\., 5\), got \(2, 4\)"):
        made(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="MADE: expected no context"):
        made(jnp.ones((2, D)), jnp.ones((2, 1)))
    cond = MADE(D, (6,), P, context_features=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"MADE: expected a context \(\.\.\., 2\), got none"):
        cond(jnp.ones((2, D)))
    with pytest.raises(ValueError, match=r"MADE: expected a context of shape \(2, 2\), got \(3, 2\)"):
        cond(jnp.ones((2, D)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match=r"MADE: order must be a permutation of range\(3\)"):
        MADE(3, (4,), 2, order=[0, 0, 1], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="MADE: num_params must be >= 1"):
        MADE(3, (4,), 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"MaskedDense: expected a mask of shape \(2, 3\), got \(3, 2\)"):
        MaskedDense(2, 3, np.ones((3, 2)), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="MaskedDense: the mask must hold only 0/1"):
        MaskedDense(2, 1, np.array([[0.5], [1.0]]), rngs=nnx.Rngs(0))
