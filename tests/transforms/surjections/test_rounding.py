"""RoundingSurjection (inference, Table 7): z = floor(x); boundaries, exact right inverse, V."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import Distribution
from survae_jax.transforms.surjections.rounding import RoundingSurjection, add_below_next_integer


class _Triangular(Distribution):
    """Test-local p(u) = 2u on [0, 1), per element (unconditional): log p = log 2 + log u."""

    def __init__(self, d):
        self.d = d

    def log_prob(self, x, *, context=None, key=None):
        return jnp.sum(math.log(2.0) + jnp.log(x), axis=1)

    def sample(self, key, num_samples=None, *, context=None):
        return jnp.sqrt(jax.random.uniform(key, (self._num_samples(num_samples, context), self.d)))


def test_floor_at_boundaries():
    """Integers stay put; just-below values go down; negative fractions go to the lower integer."""
    x = jnp.array([[3.0, -2.0, -0.5, -0.0, 0.999999, -1e-7, 1e-7, 2.5]])
    z, v = RoundingSurjection().forward(x)
    np.testing.assert_array_equal(z, [[3.0, -2.0, -1.0, 0.0, 0.0, -1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(v, [0.0])
    assert z.dtype == x.dtype


def test_add_below_next_integer_keeps_the_fibre():
    """float32: 2 + (1 - 2^-24) rounds to 3; the helper keeps it below 3, so floor gives 2."""
    k = jnp.array([2.0, 1e6, -1e6, 0.0, -1.0], jnp.float32)
    u = jnp.full_like(k, 1.0 - 2.0**-24)
    assert float((k + u)[0]) == 3.0  # the trap
    x = add_below_next_integer(k, u)
    np.testing.assert_array_equal(jnp.floor(x), k)
    assert np.all(np.asarray(x) >= np.asarray(k))
    np.testing.assert_array_equal(add_below_next_integer(k, jnp.zeros_like(k)), k)


def test_right_inverse_100_keys_one_compile_with_large_and_boundary_latents():
    z = jnp.array([[0.0, -1.0, 3.0, 1e6, -1e6, 2.0**23]], jnp.float32)
    r = RoundingSurjection()

    @jax.jit
    def run(r, keys):
        xs = jax.vmap(lambda k: r.inverse(z, key=k))(keys)
        return jax.vmap(lambda x: r.forward(x))(xs), xs

    (zs, vs), xs = run(r, jax.random.split(jax.random.key(0), 100))
    np.testing.assert_array_equal(zs, jnp.broadcast_to(z, zs.shape))
    np.testing.assert_array_equal(vs, jnp.zeros_like(vs))
    assert np.all(np.asarray(xs) >= np.asarray(z)) and np.all(np.asarray(xs) < np.asarray(z) + 1)


def test_learned_decoder_v_is_log_p_of_the_fractional_part():
    r = RoundingSurjection(_Triangular(2))
    x = jnp.array([[1.25, -0.5], [3.75, 0.1]])
    z, v = r.forward(x)
    u = np.asarray(x - jnp.floor(x), np.float64)
    np.testing.assert_allclose(v, np.sum(math.log(2.0) + np.log(u), axis=1), rtol=1e-5)
    xs = r.inverse(jnp.zeros((4000, 2)), key=jax.random.key(1))
    np.testing.assert_allclose(np.mean(xs), 2.0 / 3.0, atol=0.02)  # E[u] = 2/3 under p(u) = 2u


def test_errors_and_float64():
    with pytest.raises(ValueError, match="RoundingSurjection.*floating"):
        RoundingSurjection().forward(jnp.zeros((2, 2), jnp.int32))
    with pytest.raises(ValueError, match="RoundingSurjection"):
        RoundingSurjection().forward(jnp.zeros((2,)))
    with pytest.raises(ValueError, match="RoundingSurjection.*key"):
        RoundingSurjection().inverse(jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="RoundingSurjection.*decoder sample"):
        RoundingSurjection(_Triangular(3)).inverse(jnp.zeros((2, 2)), key=jax.random.key(0))
    with jax.enable_x64(True):
        x = jnp.array([[2.0**40 + 0.5, -3.0]], jnp.float64)
        z, v = jax.jit(lambda t, x: t.forward(x))(RoundingSurjection(), x)
        xs = jax.jit(lambda t, z, k: t.inverse(z, key=k))(RoundingSurjection(), z, jax.random.key(0))
    assert z.dtype == v.dtype == xs.dtype == jnp.float64
    np.testing.assert_array_equal(z, [[2.0**40, -3.0]])
    np.testing.assert_array_equal(jnp.floor(xs), z)


def test_decoder_sample_outside_the_unit_interval_is_not_corrected_eagerly_or_under_jit():
    """No branch on jit: a decoder sample u = -0.25 gives x = z + u in both (floor(x) != z)."""

    class _Neg(Distribution):
        def sample(self, key, num_samples=None, *, context=None):
            return jnp.full((self._num_samples(num_samples, context), 2), -0.25)

    r, z = RoundingSurjection(_Neg()), jnp.zeros((2, 2))
    np.testing.assert_allclose(r.inverse(z, key=jax.random.key(0)), -0.25)
    np.testing.assert_allclose(jax.jit(lambda t, z, k: t.inverse(z, key=k))(r, z, jax.random.key(0)), -0.25)
