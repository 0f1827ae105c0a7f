"""ReLUSurjection (inference, Table 7) and GenerativeReLUSurjection (generative, Table 6).

Exact values at zeros and at negative/positive entries, the half-normal default's
normalisation on the fibre of 0, the learned scale, and no NaN anywhere (values and grads).
The 100-key right-inverse checks run in the registry (``cases_inference.py``,
``cases_generative.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import Distribution
from survae_jax.flow import Flow
from survae_jax.testing import integrate_density
from survae_jax.functional.max import half_normal_log_prob
from survae_jax.transforms.surjections.relu import GenerativeReLUSurjection, ReLUSurjection

LOG_HALF_NORMAL_AT_0 = math.log(2.0) - 0.5 * math.log(2.0 * math.pi)  # log(2 phi(0))


def _log_half_normal(m, sigma=1.0):
    return math.log(2.0) - math.log(sigma) - 0.5 * math.log(2 * math.pi) - 0.5 * (m / sigma) ** 2


def test_half_normal_default_is_a_density_on_the_fibre():
    """The default p(x) = 2 N(x; 0, 1) on (-inf, 0) integrates to 1 (midpoint rule on [-12, 0])."""
    with jax.enable_x64(True):
        n = 200_000
        h = 12.0 / n
        m = (jnp.arange(n) + 0.5) * h
        mass = float(jnp.sum(jnp.exp(half_normal_log_prob(m, jnp.zeros(())))) * h)
    assert abs(mass - 1.0) < 1e-8, mass


def test_relu_forward_values_at_zero_negative_positive():
    x = jnp.array([[-1.0, 0.0, 2.0], [-0.0, 3.0, -2.5]])
    z, v = ReLUSurjection().forward(x)
    np.testing.assert_array_equal(z, [[0.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    # x = 0 lies on the fibre of z = 0: its term is log p(0) = log(2 phi(0)), finite
    want = [
        _log_half_normal(1.0) + LOG_HALF_NORMAL_AT_0,
        LOG_HALF_NORMAL_AT_0 + _log_half_normal(2.5),
    ]
    np.testing.assert_allclose(v, want, rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(ReLUSurjection().forward(x)[1]) + jnp.sum(ReLUSurjection().forward(x)[0]))(x)
    assert np.all(np.isfinite(g))


def test_relu_all_positive_gives_zero_v():
    z, v = ReLUSurjection().forward(jnp.array([[0.5, 1.0], [2.0, 1e-30]]))
    np.testing.assert_array_equal(v, [0.0, 0.0])


def test_relu_inverse_fills_zeros_with_negatives():
    z = jnp.tile(jnp.array([[0.0, 1.5, 0.0, 3.0]]), (2000, 1))
    x = ReLUSurjection().inverse(z, key=jax.random.key(0))
    np.testing.assert_array_equal(x[:, [1, 3]], z[:, [1, 3]])
    neg = np.asarray(x[:, [0, 2]])
    assert np.all(neg <= 0.0)
    # half-normal: E|x| = sqrt(2/pi)
    np.testing.assert_allclose(np.mean(-neg), math.sqrt(2 / math.pi), atol=0.03)
    # right inverse, exactly, and V finite there
    z2, v2 = ReLUSurjection().forward(x)
    np.testing.assert_array_equal(z2, z)
    assert np.all(np.isfinite(v2))


def test_relu_scale_net():
    """A learned p(x|z) = half-normal with sigma = exp(scale_net(z)); here log sigma = 0.7 constant."""
    relu = ReLUSurjection(lambda z: jnp.full_like(z, 0.7))
    x = jnp.array([[-1.0, 2.0]])
    _, v = relu.forward(x)
    np.testing.assert_allclose(v, [_log_half_normal(1.0, math.exp(0.7))], rtol=1e-6)
    xs = relu.inverse(jnp.zeros((4000, 1)), key=jax.random.key(2))
    np.testing.assert_allclose(np.mean(-xs), math.exp(0.7) * math.sqrt(2 / math.pi), atol=0.06)
    with pytest.raises(ValueError, match="ReLUSurjection.*scale_net"):
        ReLUSurjection(lambda z: z[:, :1]).forward(jnp.zeros((2, 3)))

    def refusing_net(z):
        raise TypeError("the net refuses")

    with pytest.raises(TypeError, match="the net refuses") as info:  # the net's own error, with a note
        GenerativeReLUSurjection(refusing_net).forward(jnp.zeros((2, 3)), key=jax.random.key(0))
    assert "GenerativeReLUSurjection: raised by scale_net on a tensor of shape (2, 3)." in info.value.__notes__


def test_generative_relu_values():
    x = jnp.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.25]])
    g = GenerativeReLUSurjection()
    z, v = g.forward(x, key=jax.random.key(0))
    at_zero = np.asarray(x) == 0
    assert np.all(np.asarray(z)[at_zero] <= 0.0)
    np.testing.assert_array_equal(np.asarray(z)[~at_zero], np.asarray(x)[~at_zero])
    m = -np.asarray(z, np.float64)
    want = [-(_log_half_normal(m[0, 0]) + _log_half_normal(m[0, 2])), -_log_half_normal(m[1, 1])]
    np.testing.assert_allclose(v, want, rtol=1e-5)
    np.testing.assert_array_equal(g.inverse(z), x)


def test_generative_relu_right_inverse_100_keys_one_compile():
    x = jnp.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    g = GenerativeReLUSurjection()

    @jax.jit
    def run(g, keys):
        zs, vs = jax.vmap(lambda k: g.forward(x, key=k))(keys)
        return jax.vmap(g.inverse)(zs), vs

    xs, vs = run(g, jax.random.split(jax.random.key(5), 100))
    np.testing.assert_array_equal(xs, jnp.broadcast_to(x, xs.shape))
    assert np.all(np.isfinite(vs))


def test_relu_errors_and_float64():
    with pytest.raises(ValueError, match="ReLUSurjection"):
        ReLUSurjection().forward(jnp.zeros((3,)))
    with pytest.raises(ValueError, match="ReLUSurjection.*key"):
        ReLUSurjection().inverse(jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="GenerativeReLUSurjection.*key"):
        GenerativeReLUSurjection().forward(jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="GenerativeReLUSurjection.*floating"):
        GenerativeReLUSurjection().forward(jnp.zeros((3, 1), jnp.int32), key=jax.random.key(0))
    with jax.enable_x64(True):
        x = jnp.array([[-1.0, 0.0, 1.0]], jnp.float64)
        z, v = jax.jit(lambda t, x: t.forward(x))(ReLUSurjection(), x)
        zg, vg = jax.jit(lambda t, x, k: t.forward(x, key=k))(GenerativeReLUSurjection(), z, jax.random.key(0))
    assert z.dtype == v.dtype == zg.dtype == vg.dtype == jnp.float64
    np.testing.assert_allclose(v, [_log_half_normal(1.0) + LOG_HALF_NORMAL_AT_0], rtol=1e-12)


class _MixedBase(Distribution):
    """Test-local 1-D base with a point mass P(z = 0) = 0.3 and density 0.7 * 2 N(z; 0, 1) on z > 0.

    ``log_prob`` is the log-mass at 0 and the log-density elsewhere: what ``max(x, 0)`` makes of
    a continuous x, and the base that an inference ReLU needs downstream.
    """

    def log_prob(self, x, *, context=None, key=None):
        z = x[:, 0]
        pos = math.log(0.7) + math.log(2.0) - 0.5 * math.log(2 * math.pi) - 0.5 * z**2
        return jnp.where(z == 0, math.log(0.3), jnp.where(z > 0, pos, -jnp.inf))

    def sample(self, key, num_samples=None, *, context=None):
        raise NotImplementedError


def test_relu_flow_integrates_to_one():
    """p(x) = 0.3 * 2 N(x) on x < 0 (V = log p(x) on the fibre) + the base's density on x > 0:
    the base's mass 0.3 at z = 0 is spread over the negative half-line by V, so the total is 1."""
    with jax.enable_x64(True):
        flow = Flow(_MixedBase(), [ReLUSurjection()])
        assert flow.exact
        mass = integrate_density(flow, -12.0, 12.0, num=20000, dtype=jnp.float64)
        neg = integrate_density(flow, -12.0, 0.0, num=20000, dtype=jnp.float64)
    assert abs(mass - 1.0) < 1e-3, mass
    assert abs(neg - 0.3) < 1e-3, neg
