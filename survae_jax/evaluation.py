"""Batched, jitted evaluation of per-example log-likelihoods (test nats, ELBO, IWBO)."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.distributed import DataParallel

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
    devices: Any = None,
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

    ``devices`` (as :class:`~survae_jax.training.TrainConfig`; default every device): on
    ``D > 1`` devices each batch of ``b`` is split over the ``data`` mesh axis (zero rows appended
    up to a multiple of ``D``, dropped) and the model is replicated, so an IWBO's chunks of
    samples run on each device's own examples; ``data`` must then be the same on every
    process, and every process gets all ``N`` values. The batches are the same for any ``D``,
    and JAX's default partitionable PRNG draws an example's noise from its position in the
    batch, so a random bound does not depend on ``D`` either (up to float32 rounding).

    Raises:
      ValueError: arrays of ``data`` with different first-axis sizes, ``batch_size < 1``,
        ``key=None`` for an inexact model, or unusable ``devices``.

    Source: this library; ELBO/IWBO from Nielsen et al. 2020 and Burda et al. 2016.
    """
    fn = log_prob_fn or _log_prob
    n = num_examples(data)
    if int(batch_size) < 1:
        raise ValueError(f"evaluate: batch_size must be >= 1, got {batch_size}.")
    dp = DataParallel(devices, who="evaluate")
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
    if dp.sharded:
        return _evaluate_sharded(dp, graphdef, state, data, key, fn, n, nb, bs)

    def padded(a):
        a = jnp.asarray(a)
        return jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a

    data = jax.tree.map(padded, data)
    outs = []
    for i in range(nb):
        batch = jax.tree.map(lambda a: jax.lax.slice_in_dim(a, i * bs, (i + 1) * bs), data)
        outs.append(_eval_batch(state, batch, key, jnp.asarray(i, jnp.int32), fn=fn, graphdef=graphdef))
    return np.concatenate([np.asarray(o) for o in outs])[:n]


def _evaluate_sharded(dp: DataParallel, graphdef, state, data, key, fn, n, nb, bs):
    """:func:`evaluate` on the mesh of ``dp``: batches ``(bs, ...)`` split over ``data``."""
    state, key = dp.replicate((state, key))
    host = jax.tree.map(lambda a: np.asarray(a), data)
    width = -(-bs // dp.size) * dp.size  # the batch on the mesh: bs rows, zeros up to a multiple of D
    outs = []
    for i in range(nb):
        def piece(a):
            b = a[i * bs:(i + 1) * bs]
            return np.concatenate([b, np.zeros((width - len(b), *a.shape[1:]), a.dtype)]) if len(b) < width else b

        batch = dp.shard_rows(jax.tree.map(piece, host))
        outs.append(_eval_batch(state, batch, key, dp.replicate(jnp.asarray(i, jnp.int32)), fn=fn,
                                graphdef=graphdef))
    return np.concatenate([dp.to_host(o)[:bs] for o in outs])[:n]


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "sharding"))
def _sample_program(state, key, *, graphdef, num_samples, sharding):
    x = nnx.merge(graphdef, state).sample(key, num_samples)
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def sample(model: nnx.Module, key: Array, num_samples: int, *, devices: Any = None) -> Any:
    """``model.sample(key, num_samples)`` as host arrays, computed on ``devices`` (default every device).

    On ``D > 1`` devices the samples ``(num_samples, ...)`` are split over the ``data`` mesh
    axis (their number rounded up to a multiple of ``D``, the extra ones dropped) and the model
    is replicated: each device draws and maps its share. With JAX's default partitionable PRNG,
    sample ``j`` is the same for any ``D``. Every process gets all the samples.

    Returns:
      The samples as numpy arrays (the pytree ``model.sample`` returns), first axis ``num_samples``.

    Raises:
      ValueError: ``num_samples < 1`` or unusable ``devices``.

    Source: this library (``jax.sharding``; the sampling of :class:`~survae_jax.Flow`).
    """
    if int(num_samples) < 1:
        raise ValueError(f"sample: num_samples must be >= 1, got {num_samples}.")
    dp = DataParallel(devices, who="sample")
    graphdef, state = nnx.split(model)
    if not dp.sharded:
        out = _sample_program(state, key, graphdef=graphdef, num_samples=int(num_samples), sharding=None)
        return jax.tree.map(np.asarray, out)
    m = -(-int(num_samples) // dp.size) * dp.size
    state, key = dp.replicate((state, key))
    out = _sample_program(state, key, graphdef=graphdef, num_samples=m, sharding=dp.batch)
    return jax.tree.map(lambda x: dp.to_host(x)[: int(num_samples)], out)
