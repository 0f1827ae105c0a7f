"""MaxPoolSurjection2d (Appendix I.3): window layout, closed-form V with ties, agreement with
MaxSurjection(4) per window, right inverse over 100 keys, float64, errors.
GenerativeMaxPoolSurjection2d (its Table 6 dual): closed-form V, and the ELBO of max-pooled
normals against the exact log-density of the max of 4 normals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import StandardNormal
from survae_jax.flow import Flow
from survae_jax.transforms.surjections import GenerativeMaxPoolSurjection2d, MaxPoolSurjection2d, MaxSurjection


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


def test_generative_values():
    """Unpooling (1, 1, 2, 1) -> (1, 2, 4, 1): per window one position holds x, the others lie
    below; V = sum_windows [log 4 - sum_{j != k} log HN(x - z_j)]."""
    g = GenerativeMaxPoolSurjection2d()
    x = jnp.array([[[[0.7], [-1.2]]]])
    z, v = g.forward(x, key=jax.random.key(0))
    assert z.shape == (1, 2, 4, 1)
    np.testing.assert_array_equal(g.inverse(z), x)
    want = 0.0
    for w, xv in enumerate((0.7, -1.2)):
        win = np.asarray(z[0, :, 2 * w : 2 * w + 2, 0], np.float64).ravel()
        assert np.sum(win == np.float32(xv)) == 1 and np.all(win <= np.float32(xv))
        gaps = np.float32(xv) - win[win != np.float32(xv)]
        want += math.log(4.0) - sum(hn(e) for e in gaps)
    np.testing.assert_allclose(v, [want], rtol=1e-5)


def test_generative_elbo_of_max_pooled_normals():
    """z ~ N(0, I) on a 2x2 window, x = max z: log p(x) = log 4 + log phi(x) + 3 log Phi(x).
    With k ~ 1/4 and HN(1) gaps, E[ELBO] = log 4 + log phi(x) + 3 (x sqrt(2/pi) - x^2/2 - log 2)
    <= log p(x), with equality at x = 0, where q is the posterior and every sample is exact."""
    flow = Flow(StandardNormal((2, 2, 1)), [GenerativeMaxPoolSurjection2d()])
    assert not flow.exact
    xs = np.array([-1.0, 0.0, 0.5, 1.5])
    keys = jax.random.split(jax.random.key(1), 2000)
    x = jnp.asarray(xs, jnp.float32).reshape(4, 1, 1, 1)
    elbos = np.asarray(jax.jit(jax.vmap(lambda k: flow.elbo(x, key=k)))(keys), np.float64)
    log_phi = -0.5 * xs**2 - 0.5 * math.log(2 * math.pi)
    log_cdf = np.log(0.5 * (1 + np.array([math.erf(x / math.sqrt(2)) for x in xs])))
    log_p = math.log(4) + log_phi + 3 * log_cdf
    expected = math.log(4) + log_phi + 3 * (xs * math.sqrt(2 / math.pi) - 0.5 * xs**2 - math.log(2))
    assert np.all(expected[[0, 2, 3]] < log_p[[0, 2, 3]] - 1e-3)
    np.testing.assert_allclose(elbos[:, 1], log_p[1], atol=1e-5)
    se = elbos.std(0) / math.sqrt(len(keys))
    assert np.all(np.abs(elbos.mean(0) - expected) <= 4 * se + 1e-5)
