"""bits/dim on closed forms: a uniform model over L levels is log2(L) bits/dim."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from survae_jax.data.images import load_digits
from survae_jax.distributions import StandardUniform
from survae_jax.flow import Flow
from survae_jax.metrics import bits_per_dim
from survae_jax.transforms import Scale, UniformDequantization


def test_uniform_over_256_levels_is_8_bits_per_dim():
    d = 28 * 28
    # density of y = (x + u) / 256 on the unit cube is 1: log p(y) = 0, uniform noise log q = 0
    assert bits_per_dim(np.zeros(5), d, num_levels=256) == pytest.approx(8.0, abs=1e-12)
    # the same through a flow whose dequantization layer carries the offset as its V
    flow = Flow(StandardUniform((8, 8, 3)), [UniformDequantization(num_bits=8)])
    x = jax.random.randint(jax.random.key(0), (16, 8, 8, 3), 0, 256)
    ll = np.asarray(flow.log_prob(x, key=jax.random.key(1)))
    np.testing.assert_allclose(ll, -8 * 8 * 3 * 8 * math.log(2), rtol=1e-6)
    assert bits_per_dim(ll, 8 * 8 * 3) == pytest.approx(8.0, abs=1e-6)


def test_uniform_over_the_17_levels_of_the_digits_is_log2_17():
    x, _ = load_digits("test")
    flow = Flow(StandardUniform((8, 8, 1)), [UniformDequantization(), Scale(1.0 / 17.0)])
    ll = np.asarray(flow.log_prob(x.astype(np.int32), key=jax.random.key(0)))
    assert bits_per_dim(ll, 64) == pytest.approx(math.log2(17), abs=1e-6)
    assert bits_per_dim(np.zeros(len(x)), 64, num_levels=17) == pytest.approx(math.log2(17), abs=1e-12)


def test_dequantization_term_is_subtracted():
    ll = np.array([-100.0, -120.0])
    log_q = np.array([3.0, 5.0])  # log q(u|x) > 0: a peaked noise density costs bits
    expected = (110.0 + 4.0) / (10 * math.log(2)) + 8.0
    assert bits_per_dim(ll, 10, log_q=log_q, num_levels=256) == pytest.approx(expected, rel=1e-12)
    assert bits_per_dim(ll, 10, log_q=log_q) == pytest.approx(bits_per_dim(ll - log_q, 10), rel=1e-12)


def test_bits_per_dim_errors():
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(np.zeros(2), 0)
    with pytest.raises(ValueError, match="num_levels"):
        bits_per_dim(np.zeros(2), 4, num_levels=1)
    with pytest.raises(ValueError, match="log_q"):
        bits_per_dim(np.zeros(2), 4, log_q=np.zeros(3))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        bits_per_dim(np.zeros((2, 2)), 4)
