"""Inverted dropout whose mask comes from a keyed integer hash of each entry's index.

``dropout(x, rate, key)`` zeroes each entry with probability ``rate`` and scales the rest by
``1 / (1 - rate)``, so ``E[dropout(x)] = x`` (Srivastava et al., 2014). Entry ``i`` of the
flattened ``x`` is kept when ``u_i >= round(rate 2^32)``, with 32 random bits

    u_i = f(f(i XOR k_0) XOR k_1),    f(h) = murmur3's 32-bit finaliser

(Appleby, MurmurHash3 ``fmix32``: xor-shift 16, multiply 0x85EBCA6B, xor-shift 13, multiply
0xC2B2AE35, xor-shift 16) and ``k_0``, ``k_1`` the XOR of the JAX key's even- and odd-numbered
``uint32`` words (for the default threefry key: its two words). ``f`` is a bijection of 32-bit
words with full avalanche, so for one key the ``u_i`` are distinct and each bit of ``i`` or of
the key flips each output bit about half the time; ``rate`` is used to 2^-32. Trap: two keys with
the same ``k_1`` give the same bits with the index XOR-shifted by ``k_0 XOR k_0'``; keys from
``fold_in``/``split`` share a word with probability 2^-32.

Why not ``jax.random.bernoulli``: threefry costs about 20 integer rounds per number; on XLA:CPU
it was 7-15 % of a PermuteFlow-8 training step and, with the rematerialised scan drawing every
mask twice, a quarter of PermuteFlow-32's (8.3 vs 6.2 s per step, ``results/speed.md``). The
hash is 18 integer operations that XLA fuses into the masking. It is a statistical generator,
not a cryptographic one, which a dropout mask does not need (tests/nn/test_dropout.py checks
the keep rate, correlations at several lags and between keys, and the spread of the bits).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array

_MAX_ENTRIES = 2**32  # the index i is a uint32


def _fmix32(h: Array) -> Array:
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def dropout_bits(key: Array, shape: tuple[int, ...]) -> Array:
    """``uint32`` bits ``u`` of ``shape``: ``u_i = f(f(i XOR k_0) XOR k_1)`` over the flat index ``i``.

    Raises:
      ValueError: ``shape`` with ``2^32`` entries or more (the index would wrap).
    """
    size = math.prod(shape)
    if size >= _MAX_ENTRIES:
        raise ValueError(f"dropout: at most 2^32 - 1 entries per mask, got shape {tuple(shape)}.")
    words = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
    k0, k1 = (jax.lax.reduce(words[j::2], jnp.uint32(0), jax.lax.bitwise_xor, (0,)) for j in (0, 1))
    i = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return _fmix32(_fmix32(i ^ k0) ^ k1)


def dropout(x: Array, rate: float, key: Array | None) -> Array:
    """Inverted dropout of ``x`` (any shape) at ``rate`` in ``[0, 1)``; ``x`` itself when ``key`` is
    ``None`` or ``rate == 0``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}.")
    if key is None or rate == 0.0:
        return x
    keep = dropout_bits(key, x.shape) >= jnp.uint32(min(round(rate * 2**32), 2**32 - 1))
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))
