"""The set-to-set Transformer conditioner and its explicit, pure dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.nn.transformer import Transformer, gelu, with_dropout


def _net(**kw):
    kw.setdefault("zero_init_last", False)
    return Transformer(2, 4, num_blocks=1, d_model=16, num_heads=4, d_ff=32, rngs=nnx.Rngs(0), **kw)


X = jax.random.normal(jax.random.key(1), (3, 6, 2))
PERM = np.array([3, 0, 5, 1, 4, 2])


def test_shape_and_permutation_equivariance_without_positions():
    net = _net()
    y = net(X)
    assert y.shape == (3, 6, 4)
    np.testing.assert_allclose(net(X[:, PERM]), y[:, PERM], atol=1e-5)


def test_positional_encoding_makes_it_order_dependent():
    net = _net(num_points=6)
    assert net.pos[...].shape == (6, 16)
    assert jnp.abs(net(X[:, PERM]) - net(X)[:, PERM]).max() > 1e-3
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 6, 2\), got \(3, 5, 2\)"):
        net(X[:, :5])


def test_zero_init_last_outputs_zero():
    net = Transformer(2, 4, num_blocks=1, d_model=16, num_heads=4, d_ff=32, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(net(X), 0.0)


def test_dropout_only_in_an_explicit_copy():
    net = _net(dropout=0.5)
    y = net(X)
    np.testing.assert_array_equal(net(X), y)  # deterministic by default
    a = with_dropout(net, jax.random.key(7))
    np.testing.assert_array_equal(a(X), a(X))  # a copy's forward is pure
    assert jnp.abs(a(X) - y).max() > 1e-3
    assert jnp.abs(with_dropout(net, jax.random.key(8))(X) - a(X)).max() > 1e-3
    np.testing.assert_array_equal(net(X), y)  # the original is untouched
    np.testing.assert_array_equal(with_dropout(a, None)(X), y)


def test_gradients_through_dropout_under_jit():
    net = _net(dropout=0.2)
    graph, params, rest = nnx.split(net, nnx.Param, ...)

    def loss(params, key):
        return jnp.mean(with_dropout(nnx.merge(graph, params, rest), key)(X) ** 2)

    g1 = jax.jit(jax.grad(loss))(params, jax.random.key(0))
    g2 = jax.jit(jax.grad(loss))(params, jax.random.key(1))
    k1, k2 = g1["embed"]["kernel"][...], g2["embed"]["kernel"][...]
    assert np.isfinite(k1).all() and jnp.abs(k1 - k2).max() > 0


def test_bad_construction_and_input():
    with pytest.raises(ValueError, match="divisible"):
        Transformer(2, 4, d_model=10, num_heads=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout"):
        Transformer(2, 4, dropout=1.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="Transformer"):
        _net()(X[..., :1])


def test_float64_stays_float64():
    with jax.enable_x64(True):
        net = _net()
        y = net(X.astype(jnp.float64))
    assert y.dtype == jnp.float64


def test_attention_is_softmax_weighted_values_and_its_gradient_matches():
    with jax.enable_x64(True):
        _check_attention_float64()


def _check_attention_float64():
    from survae_jax.nn.transformer import _attention

    q, k, v = (jax.random.normal(kk, (3, 5, 2, 4), jnp.float64) * 3.0 for kk in jax.random.split(jax.random.key(0), 3))

    def naive(q, k, v):  # per batch and head: softmax over the keys of q k^T / sqrt(d), times v
        w = jax.nn.softmax(jnp.einsum("bnhd,bmhd->bhnm", q, k) / 2.0, axis=-1)
        return jnp.einsum("bhnm,bmhd->bnhd", w, v)

    np.testing.assert_allclose(_attention(q, k, v), naive(q, k, v), rtol=1e-12)
    loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))  # noqa: E731
    for got, want in zip(jax.grad(loss(_attention), (0, 1, 2))(q, k, v), jax.grad(loss(naive), (0, 1, 2))(q, k, v)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # logits far out of exp's range: still finite (the max is subtracted)
    big = _attention(q * 1e3, k * 1e3, v)
    assert np.isfinite(big).all()


def test_one_block_matches_the_written_out_formula_in_float64():
    """``y = W_out LN(h2)``, ``h2 = h1 + W_2 gelu(W_1 LN h1)``, ``h1 = h0 + W_o MHA(LN h0)``,
    ``h0 = W_in x``, with ``gelu(x) = x Phi(x)`` (the normal CDF, not the tanh approximation)."""
    with jax.enable_x64(True):
        net = _net()
        x = np.asarray(X, np.float64)
        p = {k: np.asarray(v, np.float64) for k, v in nnx.to_flat_state(nnx.state(net, nnx.Param))
             for k in ["/".join(map(str, k))]}

        def lin(name, a):
            return a @ p[f"{name}/kernel"] + p[f"{name}/bias"]

        def ln(name, a):
            mu, var = a.mean(-1, keepdims=True), a.var(-1, keepdims=True)
            return (a - mu) / np.sqrt(var + 1e-6) * p[f"{name}/scale"] + p[f"{name}/bias"]

        from scipy.special import erf, softmax
        h = lin("embed", x)
        qkv = lin("blocks/0/qkv", ln("blocks/0/norm1", h)).reshape(3, 6, 12, 4)
        q, k, v = qkv[:, :, :4], qkv[:, :, 4:8], qkv[:, :, 8:]
        w = softmax(np.einsum("bnhd,bmhd->bhnm", q, k) / 2.0, axis=-1)
        h = h + lin("blocks/0/attn_out", np.einsum("bhnm,bmhd->bnhd", w, v).reshape(3, 6, 16))
        f = lin("blocks/0/ff1", ln("blocks/0/norm2", h))
        h = h + lin("blocks/0/ff2", f * 0.5 * (1.0 + erf(f / np.sqrt(2.0))))
        want = lin("out", ln("out_norm", h))
        np.testing.assert_allclose(net(jnp.asarray(x)), want, rtol=1e-10, atol=1e-12)


def test_gelu_and_its_derivatives_are_the_exact_gelus():
    """Values, first and second derivative (reverse and forward mode) against ``x Phi(x)``
    differentiated by JAX, in float64 on [-9, 9]."""
    x = np.linspace(-9.0, 9.0, 2001)
    with jax.enable_x64(True):
        xs = jnp.asarray(x, jnp.float64)
        ref = lambda t: jax.nn.gelu(t, approximate=False)  # noqa: E731
        np.testing.assert_allclose(gelu(xs), ref(xs), rtol=1e-14, atol=1e-15)
        for d in (jax.grad, jax.jacfwd, lambda f: jax.grad(jax.grad(f))):
            np.testing.assert_allclose(jax.vmap(d(gelu))(xs), jax.vmap(d(ref))(xs), rtol=1e-12, atol=1e-14)
        # Phi(x) + x phi(x) at 1 from the normal density and distribution in closed form
        phi, cdf = np.exp(-0.5) / np.sqrt(2 * np.pi), 0.5 * (1 + float(jax.scipy.special.erf(1 / np.sqrt(2))))
        np.testing.assert_allclose(jax.grad(gelu)(jnp.float64(1.0)), cdf + phi, rtol=1e-14)
        tail64 = np.asarray(gelu(jnp.asarray(np.linspace(-8.0, 0.0, 801))))
    # float32 keeps the negative tail (no cancellation of 1 + erf): relative to the float64 values
    tail32 = np.asarray(gelu(jnp.asarray(np.linspace(-8.0, 0.0, 801), jnp.float32)))
    np.testing.assert_allclose(tail32[:-1], tail64[:-1], rtol=1e-5)
