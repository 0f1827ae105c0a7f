"""StochasticPermutation (Appendix G): a uniform random permutation per example, both ways, V = 0."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.transforms.stochastic.permutation import StochasticPermutation


def test_each_example_is_permuted_and_v_is_zero():
    x = jax.random.normal(jax.random.key(0), (8, 5, 2))
    p = StochasticPermutation(axis=1)
    z, v = p.forward(x, key=jax.random.key(1))
    np.testing.assert_array_equal(v, np.zeros(8))
    for xi, zi in zip(np.asarray(x), np.asarray(z)):  # same set of points, rows kept whole
        assert sorted(map(tuple, xi)) == sorted(map(tuple, zi))
    xs = p.inverse(z, key=jax.random.key(2))
    for xi, yi in zip(np.asarray(x), np.asarray(xs)):
        assert sorted(map(tuple, xi)) == sorted(map(tuple, yi))


def test_uniform_over_all_permutations_and_independent_across_examples():
    """6000 draws of a permutation of 3 items: each of the 3! = 6 orders ~1000 times (+-15%)."""
    x = jnp.tile(jnp.arange(3.0)[None], (6000, 1))
    z, _ = jax.jit(lambda p, x, k: p.forward(x, key=k))(StochasticPermutation(axis=-1), x, jax.random.key(3))
    counts = {perm: 0 for perm in itertools.permutations(range(3))}
    for row in np.asarray(z).astype(int):
        counts[tuple(row)] += 1
    assert all(850 < c < 1150 for c in counts.values()), counts


def test_other_axes_and_errors():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    z, _ = StochasticPermutation(axis=-1).forward(x, key=jax.random.key(0))
    np.testing.assert_array_equal(np.sort(z, axis=-1), x)  # each row of 4 permuted
    with pytest.raises(ValueError, match="StochasticPermutation.*batch axis"):
        StochasticPermutation(axis=0)
    with pytest.raises(ValueError, match="StochasticPermutation.*key"):
        StochasticPermutation().forward(x)
    with pytest.raises(ValueError, match="StochasticPermutation"):
        StochasticPermutation(axis=3).forward(x, key=jax.random.key(0))
    with jax.enable_x64(True):
        z64, v64 = StochasticPermutation().forward(jnp.zeros((2, 3), jnp.float64), key=jax.random.key(0))
    assert z64.dtype == v64.dtype == jnp.float64
