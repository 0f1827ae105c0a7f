"""Batched, jitted evaluation of per-example log-likelihoods (test nats, ELBO, IWBO)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Array = jax.Array


def num_examples(data) -> int:
    """The common first-axis size ``N`` of the arrays of ``data`` (an ``(N, ...)`` array or a pytree).

    Raises:
      ValueError: the arrays have different first-axis sizes (or ``data`` holds no array).
      IndexError: a rank-0 leaf (no first axis).

    Source: this library.
    """
    sizes = {int(x.shape[0]) for x in jax.tree.leaves(data)}
    if len(sizes) != 1:
        raise ValueError(f"every data array needs the same first axis, got sizes {sorted(sizes)}.")
    return sizes.pop()


def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    batch_size: int = 8192,
    key: Array | None = None,
    log_prob_fn: Callable[[nnx.Module, Any, Array], Array] | None = None,
) -> np.ndarray:
    """Per-example log-likelihood ``(N,)`` in nats of ``data`` (``(N, ...)`` or a pytree).

    One jitted program maps over batches of ``batch_size`` (the data is zero-padded to a
    multiple; padded rows are dropped). ``log_prob_fn(model, batch, key) -> (B,)`` defaults to
    ``model.log_prob(batch, key=key)`` (a one-sample ELBO for inexact flows: pass a function
    that calls ``model.iwbo`` for a tighter bound). Batch ``i`` gets ``fold_in(key, i)``.
    The test nats of the paper are ``-mean`` of this (:func:`survae_jax.metrics.nats`).

    ``key``: needed when ``model`` is inexact (``model.exact`` False: the values are random
    bounds), refused as ``None`` then; an exact model ignores it (``None`` is fine).

    Raises:
      ValueError: arrays of ``data`` with different first-axis sizes, or ``key=None`` for an
        inexact model.

    Source: this library (docs/design.md 'Speed': one jitted program, ``lax.map`` over batches);
    ELBO/IWBO from Nielsen et al. 2020 and Burda et al. 2016.
    """
    fn = log_prob_fn or (lambda m, b, k: m.log_prob(b, key=k))
    n = num_examples(data)
    bs = min(int(batch_size), n)
    nb = -(-n // bs)
    pad = nb * bs - n
    if key is None:
        if not bool(getattr(model, "exact", True)):
            raise ValueError(
                f"evaluate: {type(model).__name__} is not exact (its log_prob is a random one-sample "
                "ELBO): pass key=jax.random.key(...)."
            )
        key = jax.random.key(0)  # not used by an exact model's log_prob

    def chunked(a):
        a = jnp.asarray(a)
        a = jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a
        return a.reshape(nb, bs, *a.shape[1:])

    @jax.jit
    def run(m, d, k):
        def one(args):
            i, b = args
            return fn(m, b, jax.random.fold_in(k, i))
        return jax.lax.map(one, (jnp.arange(nb), d)).reshape(-1)

    out = run(model, jax.tree.map(chunked, data), key)
    return np.asarray(out)[:n]
