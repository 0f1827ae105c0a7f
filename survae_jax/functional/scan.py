"""Blocks of the same structure, parameters stacked, run as one ``lax.scan`` (a deep flow that compiles once).

``block`` is a module whose every state array carries a leading axis of length ``L = num_blocks``
(block ``l``'s values at index ``l``); ``x -> z`` applies blocks ``0, 1, ..., L - 1``, each with
key ``split(key, L)[l]``, and sums their ``V`` (Eq. 4 of the appendix), exactly as the unrolled
chain ``compose_forward([block_0, ..., block_{L-1}])`` but traced and compiled once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.functional.compose import _located, off_support

Array = jax.Array


def _keys(key: Array | None, n: int):
    return None if key is None else jax.random.split(key, n)


def _check_block_output(name: str, x: Array, z: Array) -> None:
    if z.shape != x.shape or z.dtype != x.dtype:
        raise ValueError(f"{name}: a block must map its input to the same shape and dtype; it maps "
                         f"{tuple(x.shape)} {x.dtype} to {tuple(z.shape)} {z.dtype}.")


def scan_forward(x: Array, block, num_blocks: int, *, key=None, context=None,
                 name: str = "Scan") -> tuple[Array, Array]:
    """``(z, V)``: ``x`` through the ``L`` stacked blocks, data side first, ``V = sum_l V_l``; a row
    that leaves the reals gets ``V = -inf`` (as :func:`~survae_jax.functional.compose_forward`)."""
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(x.shape)}.")
    graphdef, state = nnx.split(block)

    def body(carry, xs):
        h, total, dead = carry
        params, k = xs
        z, v = _located(f"{name}: block", lambda: nnx.merge(graphdef, params).forward(h, key=k, context=context))
        _check_block_output(name, h, z)
        z, dead = off_support(z, dead | jnp.isnan(v))
        return (z, total + jnp.where(dead, 0.0, v).astype(total.dtype), dead), None

    total = jnp.zeros((x.shape[0],), x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)
    (z, total, dead), _ = jax.lax.scan(body, (x, total, jnp.zeros((x.shape[0],), bool)),
                                     (state, _keys(key, num_blocks)), length=num_blocks)
    return z, jnp.where(dead, -jnp.inf, total)


def scan_inverse(z: Array, block, num_blocks: int, *, key=None, context=None, name: str = "Scan") -> Array:
    """``x``: ``z`` through the blocks' ``inverse``, block ``L - 1`` first, with the keys of ``forward``."""
    z = jnp.asarray(z)
    if z.ndim < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(z.shape)}.")
    graphdef, state = nnx.split(block)

    def body(h, xs):
        params, k = xs
        x = _located(f"{name}: block", lambda: nnx.merge(graphdef, params).inverse(h, key=k, context=context))
        _check_block_output(name, h, x)
        return x, None

    x, _ = jax.lax.scan(body, z, (state, _keys(key, num_blocks)), length=num_blocks, reverse=True)
    return x


def scan_inverse_and_log_det(z: Array, block, num_blocks: int, *, key=None, context=None,
                             name: str = "Scan") -> tuple[Array, Array]:
    """``(x, V)``: :func:`scan_inverse` summing each block's ``inverse_and_log_det`` on the way (``V``
    from the latent side where a layer has it, as ``compose_inverse_and_log_det``)."""
    z = jnp.asarray(z)
    if z.ndim < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(z.shape)}.")
    graphdef, state = nnx.split(block)

    def body(carry, xs):
        h, total = carry
        params, k = xs
        x, v = _located(f"{name}: block",
                        lambda: nnx.merge(graphdef, params).inverse_and_log_det(h, key=k, context=context))
        _check_block_output(name, h, x)
        return (x, total + v.astype(total.dtype)), None

    total = jnp.zeros((z.shape[0],), jnp.result_type(z, float))
    (x, total), _ = jax.lax.scan(body, (z, total), (state, _keys(key, num_blocks)), length=num_blocks, reverse=True)
    return x, total


scan_inverse.and_log_det = scan_inverse_and_log_det
