"""SortSurjection / GenerativeSortSurjection (Tables 6-7 "Sort", Appendix F): values, ties
(lexicographic on points), permutation invariance, right/left inverses over 100 keys, uniform
inverse permutation, D=2 quadrature, float64, errors."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import Distribution, StandardNormal
from survae_jax.flow import Flow
from survae_jax.transforms.surjections import GenerativeSortSurjection, SortSurjection

KEYS = jax.random.split(jax.random.key(0), 100)


class OrderedNormal(Distribution):
    """Test base: the order statistics of 2 iid N(0, 1): 2 phi(z_0) phi(z_1) on z_0 <= z_1."""

    def log_prob(self, x, *, context=None, key=None):
        lp = math.log(2.0) + jnp.sum(-0.5 * x**2 - 0.5 * math.log(2 * math.pi), axis=-1)
        return jnp.where(x[:, 0] <= x[:, 1], lp, -jnp.inf)

    def sample(self, key, num_samples=None, *, context=None):
        return jnp.sort(jax.random.normal(key, (num_samples, 2)), axis=-1)


def test_vector_values_and_ties():
    t = SortSurjection()  # (B, D) vectors: axis=1 is the last axis, the values are sorted
    x = jnp.array([[3.0, 1.0, 2.0], [0.0, -0.0, -1.0], [2.0, 2.0, 2.0]])
    z, v = t.forward(x)
    np.testing.assert_array_equal(z, [[1.0, 2.0, 3.0], [-1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(v, [-math.log(6)] * 3, rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(t.forward(x)[0] * jnp.arange(3.0)))(x)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_points_lexicographic_ties_and_permutation_invariance():
    t = SortSurjection(axis=1, by=0)
    x = jnp.array([[[1.0, 5.0], [0.0, 2.0], [1.0, 3.0], [0.0, 2.0]]])  # ties on x_0 and a duplicate
    z, v = t.forward(x)
    np.testing.assert_array_equal(z[0], [[0.0, 2.0], [0.0, 2.0], [1.0, 3.0], [1.0, 5.0]])
    np.testing.assert_allclose(v, [-math.log(24)], rtol=1e-6)
    perms = jnp.array(list(itertools.permutations(range(4))))  # all 24 orders of the points
    zs = jax.jit(jax.vmap(lambda p: t.forward(x[:, p])[0]))(perms)
    assert bool(jnp.all(zs == z[None]))
    zb, _ = SortSurjection(axis=1, by=1).forward(x)  # order by the second coordinate, ties by the first
    np.testing.assert_array_equal(zb[0], [[0.0, 2.0], [0.0, 2.0], [1.0, 3.0], [1.0, 5.0]])
    zb, _ = SortSurjection(axis=1, by=1).forward(jnp.array([[[2.0, 1.0], [1.0, 1.0], [0.0, 3.0]]]))
    np.testing.assert_array_equal(zb[0], [[1.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    zb, _ = SortSurjection(axis=1, by=-1).forward(x[:, :, ::-1])
    np.testing.assert_array_equal(zb[0], [[2.0, 0.0], [2.0, 0.0], [3.0, 1.0], [5.0, 1.0]])


@pytest.mark.parametrize(
    "t, shape",
    [
        (SortSurjection(), (4, 5, 2)),
        (SortSurjection(), (4, 5)),
        (SortSurjection(axis=-1), (3, 2, 4)),
        (SortSurjection(axis=1, by=1), (2, 3, 4, 2)),
    ],
)
def test_right_inverse_100_keys(t, shape):
    x = jnp.round(2.0 * jax.random.normal(jax.random.key(1), shape))  # integers: many ties
    z = t.forward(x)[0]
    out = jax.jit(jax.vmap(lambda k: t.forward(t.inverse(z, key=k))[0]))(KEYS)
    assert bool(jnp.all(out == z[None]))


def test_inverse_draws_a_uniform_permutation():
    t = SortSurjection()
    z = jnp.array([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]])
    xs = jax.jit(jax.vmap(lambda k: t.inverse(z, key=k)))(jax.random.split(jax.random.key(3), 3000))
    codes = np.asarray(xs[:, 0, :, 0] @ jnp.array([9.0, 3.0, 1.0]))  # one code per order
    _, counts = np.unique(codes, return_counts=True)
    assert len(counts) == 6
    np.testing.assert_allclose(counts / 3000, 1 / 6, atol=0.03)
    np.testing.assert_array_equal(xs[:, 0, :, 1], 0.0)  # the points move whole


def test_generative_left_inverse_100_keys_and_values():
    for g, shape in ((GenerativeSortSurjection(), (4, 5, 2)), (GenerativeSortSurjection(axis=-1), (4, 3))):
        x = jnp.round(2.0 * jax.random.normal(jax.random.key(4), shape))
        x = g.inverse(x)  # the data of a generative sort are sorted
        out = jax.jit(jax.vmap(lambda k: g.inverse(g.forward(x, key=k)[0])))(KEYS)
        assert bool(jnp.all(out == x[None]))
        z, v = g.forward(x, key=jax.random.key(5))
        np.testing.assert_allclose(v, [math.log(math.factorial(shape[1]))] * 4, rtol=1e-6)


def test_quadrature_d2():
    """p(x) = p_Z(sort x) / 2 on R^2. The image of sort is {z_0 <= z_1}:
    - standard normal base: integrates to its mass there, 1/2;
    - the order statistics of two normals (full mass on the image): 1, and p(x) equals the iid
      normal density exactly."""
    n, lo, hi = 800, -8.0, 8.0
    h = (hi - lo) / n
    g0 = lo + h * (np.arange(n) + 0.5)
    g1 = lo + h * (np.arange(n) + 1.0)  # off the diagonal, where the ordered base jumps
    xx = jnp.asarray(np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    lp = jax.jit(lambda f, x: f.log_prob(x))
    total = lambda f: float(np.exp(np.asarray(lp(f, xx), np.float64)).sum() * h * h)
    assert abs(total(Flow(StandardNormal((2,)), [SortSurjection()])) - 0.5) < 1e-3
    ordered = Flow(OrderedNormal(), [SortSurjection()])
    assert abs(total(ordered) - 1.0) < 1e-3
    np.testing.assert_allclose(lp(ordered, xx[::997]), StandardNormal((2,)).log_prob(xx[::997]), atol=1e-5)


def test_float64_and_jit():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (2, 3, 2), jnp.float64)
        t = SortSurjection()
        z, v = jax.jit(lambda t, x: t.forward(x))(t, x)
        assert z.dtype == v.dtype == jnp.float64
        np.testing.assert_allclose(v, [-math.log(6)] * 2, rtol=1e-14)
        assert t.inverse(z, key=jax.random.key(1)).dtype == jnp.float64
        zg, vg = GenerativeSortSurjection().forward(z, key=jax.random.key(1))
        assert zg.dtype == vg.dtype == jnp.float64


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"SortSurjection.*rank >= 2.*\(3,\)"):
        SortSurjection().forward(jnp.ones(3))
    with pytest.raises(ValueError, match=r"SortSurjection: by=2.*\(2, 3, 2\)"):
        SortSurjection(by=2).forward(jnp.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"SortSurjection: axis 3 does not fit.*\(2, 3, 2\)"):
        SortSurjection(axis=3).forward(jnp.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="batch axis"):
        SortSurjection(axis=0)
    with pytest.raises(ValueError, match="SortSurjection.inverse is stochastic"):
        SortSurjection().inverse(jnp.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="GenerativeSortSurjection.forward is stochastic"):
        GenerativeSortSurjection().forward(jnp.ones((2, 3, 2)))
