"""MaxPoolSurjection2d (Appendix I.3): window layout, closed-form V with ties, agreement with
MaxSurjection(4) per window, right inverse over 100 keys, float64, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.transforms.surjections import MaxPoolSurjection2d, MaxSurjection


def hn(e):
    return 0.5 * math.log(2 / math.pi) - 0.5 * e**2


def test_forward_values_and_ties():
    t = MaxPoolSurjection2d()
    img = jnp.array([[1.0, 2.0, 5.0, 5.0], [3.0, 0.0, 5.0, 5.0]])  # right window: a 4-way tie
    x = jnp.stack([img, -img], -1)[None]  # (1, 2, 4, 2)
    z, v = t.forward(x)
    assert z.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(z[0, 0], [[3.0, 0.0], [5.0, -5.0]])
    want = (
        4 * math.log(0.25)
        + (hn(2.0) + hn(1.0) + hn(3.0))  # channel 0, left window, max 3
        + 3 * hn(0.0)  # channel 0, right window, all tied
        + (hn(1.0) + hn(2.0) + hn(3.0))  # channel 1, left window, max 0
        + 3 * hn(0.0)
    )
    np.testing.assert_allclose(v, [want], rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(t.forward(x)[0]) + jnp.sum(t.forward(x)[1]))(x)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_agrees_with_max_surjection_per_window():
    x = jax.random.normal(jax.random.key(0), (3, 4, 6, 2))
    z, v = MaxPoolSurjection2d().forward(x)
    win = x.reshape(3, 2, 2, 3, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(3, 2, 3, 2, 4)
    zm, vm = MaxSurjection(4).forward(win)
    np.testing.assert_array_equal(z, zm)
    np.testing.assert_allclose(v, vm, rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1, 2, 0], jnp.max(x[:, 2:4, 4:6, 0], axis=(1, 2)))


def test_right_inverse_100_keys_and_fibre():
    t = MaxPoolSurjection2d()
    z = jax.random.normal(jax.random.key(1), (2, 2, 3, 3))
    keys = jax.random.split(jax.random.key(2), 100)

    def both(k):
        x = t.inverse(z, key=k)
        return t.forward(x)[0], x

    out, xs = jax.jit(jax.vmap(both))(keys)
    assert xs.shape == (100, 2, 4, 6, 3)
    assert bool(jnp.all(out == z[None]))
    up = jnp.repeat(jnp.repeat(z, 2, axis=1), 2, axis=2)[None]
    assert bool(jnp.all(xs <= up))
    # the copied position is uniform over the 4 window positions
    hits = np.asarray(xs == up).reshape(100, 2, 2, 2, 3, 2, 3).transpose(0, 1, 2, 4, 6, 3, 5)
    freq = hits.reshape(-1, 4).mean(0)
    np.testing.assert_allclose(freq, 0.25, atol=0.03)


def test_float64():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (1, 2, 2, 1), jnp.float64)
        t = MaxPoolSurjection2d()
        z, v = jax.jit(lambda t, x: t.forward(x))(t, x)
        assert z.dtype == v.dtype == jnp.float64
        assert t.inverse(z, key=jax.random.key(1)).dtype == jnp.float64


def test_errors_name_the_layer():
    t = MaxPoolSurjection2d()
    with pytest.raises(ValueError, match=r"MaxPoolSurjection2d.*even H and W.*\(1, 3, 4, 1\)"):
        t.forward(jnp.ones((1, 3, 4, 1)))
    with pytest.raises(ValueError, match=r"MaxPoolSurjection2d.*even H and W.*\(1, 2, 5, 1\)"):
        t.forward(jnp.ones((1, 2, 5, 1)))
    with pytest.raises(ValueError, match=r"MaxPoolSurjection2d.*rank 4.*\(2, 4, 4\)"):
        t.forward(jnp.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="MaxPoolSurjection2d.inverse is stochastic"):
        t.inverse(jnp.ones((1, 2, 2, 1)))
