"""MaxSurjection / GenerativeMaxSurjection (Tables 6-7 "Max", Appendix E): closed-form V,
ties, right/left inverses over 100 keys, 2-D quadrature, classifier, axes, float64, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import ConditionalCategorical, StandardNormal
from survae_jax.flow import Flow
from survae_jax.functional import generative_max_inverse, max_forward, max_inverse
from survae_jax.transforms.surjections import GenerativeMaxSurjection, MaxSurjection

KEYS = jax.random.split(jax.random.key(0), 100)


def hn(e, scale=1.0):
    """log HalfNormal(e; scale)."""
    return 0.5 * math.log(2 / math.pi) - math.log(scale) - 0.5 * (e / scale) ** 2


def _logits(z):
    """A fixed 'classifier net' z (B,) -> logits (B, 2) of the argmax index."""
    return jnp.stack([jnp.sin(3.0 * z), 2.0 * jnp.cos(z)], axis=-1)


def test_forward_values_and_ties():
    t = MaxSurjection(3)
    x = jnp.array([[1.0, 3.0, 3.0], [0.0, -1.0, 2.0], [2.0, 2.0, 2.0]])
    z, v = t.forward(x)
    np.testing.assert_array_equal(z, [3.0, 2.0, 2.0])
    want = [
        -math.log(3) + hn(2.0) + hn(0.0),  # tie: k = 1 (first index), x_2 sits at distance 0
        -math.log(3) + hn(2.0) + hn(3.0),
        -math.log(3) + 2 * hn(0.0),  # all tied
    ]
    np.testing.assert_allclose(v, want, rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(t.forward(x)[0]) + jnp.sum(t.forward(x)[1]))(x)
    assert bool(jnp.all(jnp.isfinite(g)))
    # a non-standard scale
    _, v = MaxSurjection(3, scale=0.5).forward(x[1:2])
    np.testing.assert_allclose(v, [-math.log(3) + hn(2.0, 0.5) + hn(3.0, 0.5)], rtol=1e-6)


@pytest.mark.parametrize(
    "make, zshape",
    [
        (lambda: MaxSurjection(4), (5,)),
        (lambda: MaxSurjection(2, keepdims=True), (5, 1)),
        (lambda: MaxSurjection(3, axis=1), (4, 2)),  # (B, K, C) points, max over the points
        (lambda: MaxSurjection(3, axis=-2, keepdims=True, scale=0.3), (4, 1, 2)),
        (lambda: MaxSurjection(2, ConditionalCategorical(_logits)), (6,)),
    ],
)
def test_right_inverse_100_keys(make, zshape):
    t = make()
    z = jax.random.normal(jax.random.key(1), zshape)
    out = jax.jit(jax.vmap(lambda k: t.forward(t.inverse(z, key=k))[0]))(KEYS)
    assert bool(jnp.all(out == z[None]))
    x = t.inverse(z, key=KEYS[0])
    assert x.shape[t.axis] == t.size and x.ndim == z.ndim + (0 if t.keepdims else 1)


def test_inverse_places_the_max_uniformly_and_v_matches():
    t = MaxSurjection(4)
    z = jnp.array([0.5, -1.0])
    xs = jax.vmap(lambda k: t.inverse(z, key=k))(jax.random.split(jax.random.key(7), 2000))  # (N, 2, 4)
    hits = np.asarray(xs == z[None, :, None])
    assert np.all(hits.sum(-1) >= 1)
    freq = hits[:, 0].mean(0)
    np.testing.assert_allclose(freq, 0.25, atol=0.04)
    assert np.all(np.asarray(xs) <= np.asarray(z)[None, :, None])
    # the half-normal noise below the max has mean sqrt(2/pi)
    gaps = (np.asarray(z)[None, :, None] - np.asarray(xs))[~hits]
    assert abs(gaps.mean() - math.sqrt(2 / math.pi)) < 0.03


def test_generative_left_inverse_100_keys_and_values():
    x = jax.random.normal(jax.random.key(2), (4, 3))
    for g in (
        GenerativeMaxSurjection(5),
        GenerativeMaxSurjection(2, axis=1),
        GenerativeMaxSurjection(2, keepdims=True, axis=-1),
    ):
        xx = x[..., :1] if g.keepdims else x
        out = jax.jit(jax.vmap(lambda k: g.inverse(g.forward(xx, key=k)[0])))(KEYS)
        assert bool(jnp.all(out == xx[None]))
    g = GenerativeMaxSurjection(5)
    z, v = g.forward(x, key=jax.random.key(3))
    assert z.shape == (4, 3, 5)
    gap = np.asarray(x)[..., None] - np.asarray(z, np.float64)
    want = -(-3 * math.log(5) + np.sum(hn(gap), axis=(1, 2)) - 3 * hn(0.0))
    np.testing.assert_allclose(v, want, rtol=1e-5)
    gc = GenerativeMaxSurjection(2, ConditionalCategorical(_logits))
    x1 = x[:, 0]
    z, v = gc.forward(x1, key=jax.random.key(4))
    k = np.argmax(np.asarray(z), -1)
    lq = np.asarray(jax.nn.log_softmax(_logits(x1)))[np.arange(4), k]
    want = -(lq + hn(np.asarray(x1) - np.min(np.asarray(z), -1)))
    np.testing.assert_allclose(v, want, rtol=1e-5)


def _grid_2d(lo, hi, n):
    """Midpoint rule on [lo, hi]^2 with the x_1 cells shifted by half a cell, so that the
    diagonal x_0 = x_1 (where a classifier's p(k|z) jumps) runs along cell edges."""
    h = (hi - lo) / n
    g0 = lo + h * (np.arange(n) + 0.5)
    g1 = lo + h * (np.arange(n) + 1.0)
    xx = np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2)
    return jnp.asarray(xx, jnp.float32), h * h


@pytest.mark.parametrize(
    "layer",
    [
        MaxSurjection(2, keepdims=True),
        MaxSurjection(2, keepdims=True, scale=0.5),
        MaxSurjection(2, ConditionalCategorical(lambda z: _logits(z[:, 0])), keepdims=True),
    ],
    ids=["default", "scale0.5", "classifier"],
)
def test_quadrature_k2(layer):
    """p(x) = p_Z(max x) p(k|z) HN(max x - min x) on R^2. The image of max is all of R, where the
    standard normal base has all its mass, and sum_k p(k|z) = 1, int HN = 1: the total is 1."""
    flow = Flow(StandardNormal((1,)), [layer])
    xx, da = _grid_2d(-9.0, 9.0, 900)
    p = np.exp(np.asarray(jax.jit(lambda f, x: f.log_prob(x))(flow, xx), np.float64))
    assert abs(p.sum() * da - 1.0) < 1e-3


def test_float64_and_jit():
    with jax.enable_x64(True):
        x = jnp.array([[1.0, 3.0, 3.0]], jnp.float64)
        t = MaxSurjection(3)
        z, v = jax.jit(lambda t, x: t.forward(x))(t, x)
        assert z.dtype == v.dtype == jnp.float64
        np.testing.assert_allclose(v, [-math.log(3) + hn(2.0) + hn(0.0)], rtol=1e-14)
        assert t.inverse(z, key=jax.random.key(0)).dtype == jnp.float64
        zg, vg = GenerativeMaxSurjection(3).forward(z, key=jax.random.key(0))
        assert zg.dtype == vg.dtype == jnp.float64


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"MaxSurjection: expected 3 values on axis -1.*\(2, 4\)"):
        MaxSurjection(3).forward(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"MaxSurjection: expected the max with length 1 on axis -1.*\(2, 3\)"):
        MaxSurjection(3, keepdims=True).inverse(jnp.ones((2, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="MaxSurjection.inverse is stochastic"):
        MaxSurjection(3).inverse(jnp.ones((2,)))
    with pytest.raises(ValueError, match="GenerativeMaxSurjection.forward is stochastic"):
        GenerativeMaxSurjection(3).forward(jnp.ones((2,)))
    with pytest.raises(ValueError, match=r"GenerativeMaxSurjection: expected 3 values"):
        GenerativeMaxSurjection(3).inverse(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="batch axis"):
        MaxSurjection(3, axis=0)
    with pytest.raises(ValueError, match="MaxSurjection.*floating"):
        MaxSurjection(2).forward(jnp.ones((2, 2), jnp.int32))


def test_functional_pair_jit_vmap_grad():
    """The pure pair with plain arrays: dV/dx_j = z - x_j (j != k), dV/dx_k = -sum_{j != k} (z - x_j)."""
    x = jnp.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.25]])
    z, v = jax.jit(lambda x: max_forward(x, size=3))(x)
    zm, vm = MaxSurjection(3).forward(x)
    np.testing.assert_array_equal(z, zm)
    np.testing.assert_allclose(v, vm, rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(max_forward(x, size=3)[1]))(x)
    np.testing.assert_allclose(g, [[1.5, -(1.5 + 3.0), 3.0], [-(1.0 + 0.75), 1.0, 0.75]], rtol=1e-6)
    xs = jax.vmap(lambda k: max_inverse(z, key=k, size=3))(KEYS[:10])
    back = jax.vmap(lambda xx: generative_max_inverse(xx, size=3))(xs)  # max of the drawn x: z again
    np.testing.assert_array_equal(back, jnp.broadcast_to(z, (10, 2)))
