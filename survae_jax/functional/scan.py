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


def _scan_blocks(h: Array, block, num_blocks: int, key, step, carry: tuple, *, reverse: bool, name: str,
                 remat: bool = False):
    """``lax.scan`` of ``step(module_l, h, k_l, extra) -> (h', extra')`` over the ``L`` stacked blocks (block
    ``l`` merged from its slice of the stack, key ``split(key, L)[l]``); ``carry``: the initial
    ``extra`` (a tuple of arrays). Checks the batch and that each block keeps ``h``'s shape and dtype.
    ``remat``: the body is ``jax.checkpoint``-ed, so a gradient stores only each block's input and
    recomputes the block's intermediates (the same values: same parameters, same key)."""
    h = jnp.asarray(h)
    if h.ndim < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(h.shape)}.")
    graphdef, state = nnx.split(block)

    def body(c, xs):
        h_in, extra = c
        params, k = xs
        h_out, extra = _located(f"{name}: block", lambda: step(nnx.merge(graphdef, params), h_in, k, extra))
        _check_block_output(name, h_in, h_out)
        return (h_out, extra), None

    if remat:
        body = jax.checkpoint(body)
    (h, extra), _ = jax.lax.scan(body, (h, carry), (state, _keys(key, num_blocks)), length=num_blocks,
                                 reverse=reverse)
    return h, extra


def scan_forward(x: Array, block, num_blocks: int, *, key=None, context=None,
                 name: str = "Scan", remat: bool = False) -> tuple[Array, Array]:
    """``(z, V)``: ``x`` through the ``L`` stacked blocks, data side first, ``V = sum_l V_l``; a row
    that leaves the reals gets ``V = -inf`` (as :func:`~survae_jax.functional.compose_forward`).
    ``remat``: a gradient recomputes each block's intermediates from its input (``jax.checkpoint``
    of the scan body) instead of storing them for all blocks; the same values."""
    def step(b, h, k, extra):
        total, dead = extra
        z, v = b.forward(h, key=k, context=context)
        z, dead = off_support(z, dead | jnp.isnan(v))
        return z, (total + jnp.where(dead, 0.0, v).astype(total.dtype), dead)

    x = jnp.asarray(x)
    rows = x.shape[0] if x.ndim else 0
    total = jnp.zeros((rows,), x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)
    z, (total, dead) = _scan_blocks(x, block, num_blocks, key, step, (total, jnp.zeros((rows,), bool)),
                                    reverse=False, name=name, remat=remat)
    return z, jnp.where(dead, -jnp.inf, total)


def scan_inverse(z: Array, block, num_blocks: int, *, key=None, context=None, name: str = "Scan",
                 remat: bool = False) -> Array:
    """``x``: ``z`` through the blocks' ``inverse``, block ``L - 1`` first, with the keys of ``forward``
    (``remat`` as :func:`scan_forward`)."""
    def step(b, h, k, extra):
        return b.inverse(h, key=k, context=context), extra

    return _scan_blocks(z, block, num_blocks, key, step, (), reverse=True, name=name, remat=remat)[0]


def scan_inverse_and_log_det(z: Array, block, num_blocks: int, *, key=None, context=None,
                             name: str = "Scan", remat: bool = False) -> tuple[Array, Array]:
    """``(x, V)``: :func:`scan_inverse` summing each block's ``inverse_and_log_det`` on the way (``V``
    from the latent side where a layer has it, as ``compose_inverse_and_log_det``; ``remat`` as
    :func:`scan_forward`)."""
    def step(b, h, k, total):
        x, v = b.inverse_and_log_det(h, key=k, context=context)
        return x, total + v.astype(total.dtype)

    z = jnp.asarray(z)
    total = jnp.zeros((z.shape[0] if z.ndim else 0,), jnp.result_type(z, float))
    return _scan_blocks(z, block, num_blocks, key, step, total, reverse=True, name=name, remat=remat)


scan_inverse.and_log_det = scan_inverse_and_log_det
