"""Dropout from a keyed hash: the finaliser's known values, keep rate, independence, scaling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.nn.dropout import _fmix32, dropout, dropout_bits

N = 2**20
KEY = jax.random.key(3)


def _fmix32_reference(h: int) -> int:
    """MurmurHash3's fmix32 in Python integers (Appleby's published constants)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def test_bits_are_the_formula_in_python_integers():
    words = [int(w) for w in np.asarray(jax.random.key_data(KEY))]
    got = np.asarray(dropout_bits(KEY, (3, 5))).reshape(-1)
    want = [_fmix32_reference(_fmix32_reference(i ^ words[0]) ^ words[1]) for i in range(15)]
    assert got.tolist() == want
    h = np.array([0, 1, 0xDEADBEEF, 0xFFFFFFFF], np.uint32)
    assert np.asarray(_fmix32(jnp.asarray(h))).tolist() == [_fmix32_reference(int(v)) for v in h]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_rate_and_independence(rate):
    keep = np.asarray(dropout(jnp.ones((N,)), rate, KEY)) > 0
    p, sd = 1.0 - rate, np.sqrt(rate * (1.0 - rate) / N)
    assert abs(keep.mean() - p) < 5 * sd
    # neighbouring entries and a second key are uncorrelated (|r| within 5 / sqrt(N))
    other = np.asarray(dropout(jnp.ones((N,)), rate, jax.random.fold_in(KEY, 1))) > 0
    pairs = [(keep, other), (keep[: N // 2], keep[N // 2:])]
    pairs += [(keep[:-lag], keep[lag:]) for lag in (1, 2, 8, 50, 64, 256, 2500)]  # the Transformer's strides
    for a, b in pairs:
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(len(a))


def test_bits_spread_evenly_over_256_bins():
    for key in (KEY, jax.random.key(0)):
        u = np.asarray(dropout_bits(key, (N,)))
        for shift in (24, 0):  # the high and the low byte
            counts = np.bincount((u >> shift) & 0xFF, minlength=256)
            chi2 = ((counts - N / 256) ** 2 / (N / 256)).sum()
            assert abs(chi2 - 255) < 6 * np.sqrt(2 * 255)  # mean 255, sd 22.6: too even fails too


def test_inverted_scaling_keeps_the_mean_and_off_is_identity():
    x = jnp.linspace(-2.0, 3.0, N)
    y = dropout(x, 0.25, KEY)
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(np.asarray(y)[kept], np.asarray(x)[kept] / 0.75, rtol=1e-6)
    assert abs(float(jnp.mean(dropout(jnp.ones((N,)), 0.25, KEY))) - 1.0) < 5 * np.sqrt(0.25 / 0.75 / N)
    assert dropout(x, 0.25, None) is x and dropout(x, 0.0, KEY) is x
    assert np.array_equal(np.asarray(y), np.asarray(jax.jit(dropout, static_argnums=1)(x, 0.25, KEY)))


def test_a_mask_of_2_32_entries_and_a_rate_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="2\\^32"):
        dropout_bits(KEY, (2**16, 2**16))
    for rate in (1.0, -0.1):
        with pytest.raises(ValueError, match="rate must be in"):
            dropout(jnp.ones(3), rate, KEY)


def test_every_word_of_a_four_word_key_changes_the_bits():
    data = np.arange(4, dtype=np.uint32)
    base = np.asarray(dropout_bits(jax.random.wrap_key_data(data, impl="rbg"), (64,)))
    for j in range(4):
        moved = data.copy()
        moved[j] ^= np.uint32(1)
        assert not np.array_equal(np.asarray(dropout_bits(jax.random.wrap_key_data(moved, impl="rbg"), (64,))), base)
