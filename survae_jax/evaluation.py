"""Batched, jitted evaluation of per-example log-likelihoods (test nats, ELBO, IWBO)."""

from __future__ import annotations

import functools
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


def _log_prob(model, batch, key):
    return model.log_prob(batch, key=key)


@functools.partial(jax.jit, static_argnames=("fn", "graphdef"))
def _eval_batch(state, batch, key, i, *, fn, graphdef):
    """One batch; compiled once per (fn, model structure, shapes), reused across calls."""
    return fn(nnx.merge(graphdef, state), batch, jax.random.fold_in(key, i))


def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    batch_size: int = 8192,
    key: Array | None = None,
    log_prob_fn: Callable[[nnx.Module, Any, Array], Array] | None = None,
) -> np.ndarray:
    """Per-example log-likelihood ``(N,)`` in nats of ``data`` (``(N, ...)`` or a pytree).

    ``log_prob_fn(model, batch, key) -> (B,)`` defaults to ``model.log_prob(batch, key=key)``
    (a one-sample ELBO for inexact flows: pass a function that calls ``model.iwbo`` for a
    tighter bound). The data are cut into ``ceil(N / batch_size)`` batches of equal size
    ``b <= batch_size`` (the last one zero-padded by fewer than one row per batch; padded rows
    are dropped). One program, compiled once for ``b`` (and kept for later calls with the same
    ``log_prob_fn``, model structure and shapes), is called per batch; the calls are
    queued without waiting and the host reads the results once at the end. Batch ``i`` gets
    ``fold_in(key, i)``. The test nats of the paper are ``-mean`` of this
    (:func:`survae_jax.metrics.nats`).

    Why a call per batch and not one ``lax.map``: XLA:CPU runs convolutions several times
    slower inside a loop, and a call costs microseconds next to a batch's milliseconds.

    ``key``: needed when ``model`` is inexact (``model.exact`` False: the values are random
    bounds), refused as ``None`` then; an exact model ignores it (``None`` is fine).

    Raises:
      ValueError: arrays of ``data`` with different first-axis sizes, ``batch_size < 1``, or
        ``key=None`` for an inexact model.

    Source: this library; ELBO/IWBO from Nielsen et al. 2020 and Burda et al. 2016.
    """
    fn = log_prob_fn or _log_prob
    n = num_examples(data)
    if int(batch_size) < 1:
        raise ValueError(f"evaluate: batch_size must be >= 1, got {batch_size}.")
    nb = -(-n // int(batch_size))
    bs = -(-n // nb)
    pad = nb * bs - n
    if key is None:
        if not bool(getattr(model, "exact", True)):
            raise ValueError(
                f"evaluate: {type(model).__name__} is not exact (its log_prob is a random one-sample "
                "ELBO): pass key=jax.random.key(...)."
            )
        key = jax.random.key(0)  # not used by an exact model's log_prob
    graphdef, state = nnx.split(model)

    def padded(a):
        a = jnp.asarray(a)
        return jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a

    data = jax.tree.map(padded, data)
    outs = []
    for i in range(nb):
        batch = jax.tree.map(lambda a: jax.lax.slice_in_dim(a, i * bs, (i + 1) * bs), data)
        outs.append(_eval_batch(state, batch, key, jnp.asarray(i, jnp.int32), fn=fn, graphdef=graphdef))
    return np.concatenate([np.asarray(o) for o in outs])[:n]
