"""The library's training loop: many optimizer steps per compiled call, resumable bit for bit.

``train(model, data, ...)`` minimises ``loss_fn(model, batch, key)`` (by default the mean
negative log-likelihood in nats, ``-mean(model.log_prob(batch, key=key))``, which is the negative
ELBO for flows with stochastic layers) with an optax optimizer (default Adam, lr 1e-3, as in
Appendix I.1 of the SurVAE paper).

How it is fast (docs/design.md, "Speed"):

* the model is ``nnx.split`` once into a graph definition and its state; the hot loop is a plain
  ``jax.jit`` over ``(params, other state, optax state)``, not ``nnx.jit``/``nnx.Optimizer``;
* one compiled call runs a block of up to ``log_every`` steps with ``lax.fori_loop``
  (``execution="loop"``), or, for steps that XLA runs slower inside a loop (convolutions on
  CPU), one jitted call runs one step (``execution="step"``); both are built on one step body
  (the same bits for dense layers; XLA may pick other convolution kernels in a loop, which
  round differently, hence a rule and not a timing decides). The
  batches are gathered inside the program from the training array, which lives on the device,
  by the epoch's permutation (drawn once per epoch on the host by NumPy; blocks never cross
  an epoch boundary);
* the state buffers are donated, the program is compiled ahead of time once (the block length
  is a runtime argument, so a short last block does not recompile), and the host syncs only
  once per block, to log the block's mean loss.

How it is reproducible: step ``t`` uses the key ``fold_in(key(seed), t)`` and the batch
``perm_e[(t mod E) B : (t mod E + 1) B]`` where ``E = N // B`` steps make an epoch,
``e = t // E`` and ``perm_e`` is a permutation drawn from ``(seed, e)``. Both are pure
functions of ``(seed, t)``, so a run resumed from a checkpoint ends with exactly the parameters
of an uninterrupted run (same seed, same config, same NumPy: ``perm_e`` is NumPy's
``Generator.permutation``, whose stream NumPy does not promise across versions).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from survae_jax import _train_support as support
from survae_jax._train_support import MAX_STEPS, TrainingInterrupted
from survae_jax.distributed import DataParallel, barrier
from survae_jax.evaluation import evaluate, num_examples
from survae_jax.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    check_writable,
    checkpoint_path,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)

__all__ = ["MAX_STEPS", "TrainConfig", "TrainResult", "TrainingError", "TrainingInterrupted", "evaluate",
           "nll_loss", "train"]

Array = jax.Array
LossFn = Callable[[nnx.Module, Any, Array], Array]


class TrainingError(RuntimeError):
    """Training cannot go on: a NaN/inf loss, or data smaller than one batch (``N < B``).

    Raised by :func:`train` (a ``RuntimeError``).

    Source: this library (docs/design.md 'Speed': the NaN check runs once per compiled block).
    """


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Schedule of :func:`train`.

    Attributes:
      steps: total optimizer steps (the paper: 10,000 = 10 epochs of 1,000 batches of 128).
      batch_size: examples per step.
      seed: the seed of every batch and every per-step key.
      log_every: steps per compiled block; the host syncs (progress bar, NaN check) once per block.
      checkpoint_every: steps between checkpoints (a multiple of ``log_every`` is best; blocks
        are cut at checkpoint steps); ``0``: only at the end.
      keep_checkpoints: how many checkpoints to keep on disk (``0``: all).
      init_batch_size: examples passed to the data-dependent init (ActNorm).
      execution: how the steps run: ``"loop"``, a block of up to ``log_every`` steps in one
        compiled ``lax.fori_loop`` per call; ``"step"``, one jitted call per step (the host still
        syncs once per block); ``"auto"`` (default), a rule on the step's program (convolutions
        on the CPU backend: ``"step"``, else ``"loop"``; see :func:`train`). The rule depends on the
        model and backend only, never on a timing, so a resumed run makes the same choice.
      progress: show the progress: a tqdm bar on a terminal, else one plain line every
        ``log_every`` steps (step, mean training nats, validation nats, steps/s).
      valid_every: steps between validations when :func:`train` gets ``valid_data`` (blocks are
        cut there); ``0``: every ``checkpoint_every`` steps, or ``log_every`` if that is ``0``.
      patience: stop early after this many validations in a row without a new best; ``0``:
        never stop early.
      valid_batch_size: examples per batch of the validation program.
      restore_best: with ``valid_data``, the returned model holds the best validated parameters
        (else those of the last step).
      devices: where the steps run: ``None`` (default) every device (``jax.devices()``), an
        ``int`` ``k`` the first ``k``, or a sequence of ``jax.Device``. On ``D > 1`` devices each
        batch is sharded over a ``Mesh`` axis ``data`` (``B / D`` examples per device) and the
        parameters and optimizer state are replicated (:mod:`survae_jax.distributed`); one
        device runs unsharded. ``batch_size`` must divide by ``D``.

    A batch is ``(batch_size, ...)``, e.g. ``(128, 2)`` for the toy data.

    Raises:
      ValueError: a count out of range, e.g. ``steps`` above 2,147,483,647 (the step counter is a
        JAX ``int32``) or a ``batch_size`` below 1.

    Source: Appendix I.1 of the SurVAE paper (Nielsen et al. 2020) for the defaults (10,000
    steps, batch 128); this library for the block/checkpoint fields (docs/design.md 'Speed').
    """

    steps: int = 10_000
    batch_size: int = 128
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 2
    init_batch_size: int = 512
    progress: bool = True
    execution: str = "auto"
    valid_every: int = 0
    patience: int = 0
    valid_batch_size: int = 8192
    restore_best: bool = True
    devices: Any = None

    def __post_init__(self):
        for name, low in (("steps", 1), ("batch_size", 1), ("log_every", 1), ("checkpoint_every", 0),
                          ("keep_checkpoints", 0), ("init_batch_size", 1), ("valid_every", 0),
                          ("patience", 0), ("valid_batch_size", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"TrainConfig: {name} must be an integer >= {low}, got {value!r}.")
        d = self.devices
        if isinstance(d, bool) or (isinstance(d, (int, np.integer)) and d < 1) or not (
                d is None or isinstance(d, (int, np.integer, tuple, list))):
            raise ValueError(f"TrainConfig: devices must be None, an integer >= 1 or a sequence of jax "
                             f"devices, got {d!r}.")
        if self.steps > MAX_STEPS:
            raise ValueError(
                f"TrainConfig: steps must be at most {MAX_STEPS:,} (the step counter is a JAX int32), "
                f"got {self.steps:,}."
            )


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      model: the trained model (the same object that was passed in, updated in place).
      step: the last step done (== ``config.steps``).
      train_nats: mean training loss over the last epoch (or all steps, if fewer), nats.
      history: ``(K, 2)`` rows ``(step, mean loss of the steps since the previous row)``, one
        row every ``log_every`` steps (and one at the last step).
      wall_time_s: seconds spent in the loop this session (compilation excluded).
      cpu_time_s: CPU seconds of this process (all threads) in the loop: on a shared machine,
        ``done / cpu_time_s`` estimates the steps per second the loop would reach alone.
      compile_time_s: seconds spent compiling the block.
      steps_per_second: steps done this session / ``wall_time_s``.
      resumed_from: the checkpoint step this session started from (``0`` for a fresh run).
      execution: ``"loop"`` or ``"step"``, how the steps ran (``""``: nothing to run).
      execution_reason: why (``"requested"`` or the rule of ``"auto"``).
      memory_bytes: XLA's memory of the compiled program (arguments, outputs and temporaries;
        0 when the backend does not say).
      valid_history: ``(K, 2)`` rows ``(step, validation nats)`` (empty without ``valid_data``;
        after a resume, the rows up to the best step and those of this session).
      best_step, best_valid_nats: the best validation (``None`` and ``inf`` without one).
      stopped_early: training stopped after ``patience`` validations without a new best.
      devices: the devices the steps ran on (the ``data`` mesh's size; ``1``: unsharded).
      sharding: how (a line: the mesh and what is sharded, or one unsharded device).

    Source: this library (docs/design.md 'Speed': timings measured per block, compile excluded).
    """

    model: nnx.Module
    step: int
    train_nats: float
    history: np.ndarray
    wall_time_s: float
    cpu_time_s: float
    compile_time_s: float
    steps_per_second: float
    resumed_from: int
    execution: str = ""
    execution_reason: str = ""
    memory_bytes: int = 0
    valid_history: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    best_step: int | None = None
    best_valid_nats: float = math.inf
    stopped_early: bool = False
    devices: int = 1
    sharding: str = ""


def nll_loss(model: nnx.Module, batch: Array, key: Array) -> Array:
    """Default loss: ``-mean(model.log_prob(batch, key=key))`` in nats (negative ELBO if inexact).

    Args:
      model: a distribution (``Flow``...) with ``log_prob(x, *, key)`` returning ``(B,)`` nats.
      batch: a data batch ``(B, ...)``.
      key: PRNG key for the stochastic layers.

    Returns:
      A scalar, nats per example (not per dimension).

    The model's errors pass through (``ValueError`` for a badly shaped batch).

    Source: maximum likelihood / the ELBO of SurVAE flows (Nielsen et al. 2020, Eq. 4).
    """
    return -jnp.mean(model.log_prob(batch, key=key))


def _auto_init(model, batch, key):
    """``initialize_actnorm`` when the model holds an ActNorm (else nothing: no eager pass)."""
    try:
        from survae_jax.transforms.bijections.actnorm import ActNorm, initialize_actnorm
    except ImportError:
        return model
    if not any(isinstance(m, ActNorm) for _, m in nnx.iter_graph(model)):
        return model
    out = initialize_actnorm(model, batch, key=key)
    return model if out is None else out


def _epoch_perm(data_key, epoch, n) -> np.ndarray:
    """The batch order of epoch ``epoch``: a permutation of ``range(n)`` (int32) drawn on the host
    by NumPy's PCG64 seeded with the bits of ``fold_in(data_key, epoch)``.

    On the host because XLA:CPU's sort-based ``jax.random.permutation`` took 7.7 ms for 12,800
    examples (NumPy: 0.17 ms), 6-7 % of an epoch of 100 toy steps (``results/speed.md``).
    """
    seed = np.asarray(jax.random.key_data(jax.random.fold_in(data_key, epoch)), np.uint32).ravel()
    return np.random.default_rng(seed).permutation(n).astype(np.int32)


def _epoch_perm_on_device(dp: DataParallel, rows):
    """``perm(data_key, epoch, n)`` on the device; sharded: mapped to rows of the padded global
    training array by ``rows`` and replicated on the mesh."""
    def perm(data_key, epoch, n):
        p = _epoch_perm(data_key, epoch, n)
        if not dp.sharded:
            return jnp.asarray(p)
        return dp.replicate(np.asarray(p if rows is None else rows(p), np.int32))

    return perm


def _rows_of(dp: DataParallel, data, take):
    """The rows ``take`` (host indices) of the training array (replicated when sharded)."""
    if not dp.sharded:
        return jax.tree.map(lambda a: a[take], data)
    gather = jax.jit(lambda d, i: jax.tree.map(lambda a: jnp.take(a, i, axis=0), d), out_shardings=dp.replicated)
    return gather(data, dp.replicate(jnp.asarray(take, jnp.int32)))


def _make_programs(graphdef, loss_fn, optimizer, batch_size, per_epoch, batch_sharding=None):
    """The two compiled units, built on one step body ``advance`` so that they compute the same bits.

    ``single(params, rest, opt_state, total, first_bad, step, perm, data, key)``: one step;
    ``block(params, rest, opt_state, start, num, perm, data, key)``: ``num`` steps from ``start``
    in one ``lax.fori_loop``, all inside one epoch whose batch order is ``perm``. Both carry the
    sum of the losses and the first non-finite step (or -1). ``batch_sharding``: the batch is
    constrained to it (split over the ``data`` mesh axis).
    """

    def advance(carry, total, first_bad, step, perm, data, key):
        params, rest, opt_state = carry
        idx = jax.lax.dynamic_slice_in_dim(perm, (step % per_epoch) * batch_size, batch_size)
        batch = jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)

        def loss_of(p):
            m = nnx.merge(graphdef, p, rest)
            loss = loss_fn(m, batch, jax.random.fold_in(key, step))
            return loss, nnx.split(m, nnx.Param, ...)[2]

        (loss, rest), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        bad = ~jnp.isfinite(loss) & (first_bad < 0)
        carry = (optax.apply_updates(params, updates), rest, opt_state)
        return carry, total + loss.astype(jnp.float32), jnp.where(bad, step, first_bad)

    def single(params, rest, opt_state, total, first_bad, step, perm, data, key):
        (params, rest, opt_state), total, first_bad = advance(
            (params, rest, opt_state), total, first_bad, step, perm, data, key)
        return params, rest, opt_state, total, first_bad

    def block(params, rest, opt_state, start, num, perm, data, key):
        def body(i, c):
            return advance(*c, start + i, perm, data, key)

        init = ((params, rest, opt_state), jnp.zeros((), jnp.float32), jnp.asarray(-1, jnp.int32))
        (params, rest, opt_state), total, first_bad = jax.lax.fori_loop(0, num, body, init)
        return params, rest, opt_state, total, first_bad

    return single, block


EXECUTIONS = ("auto", "loop", "step")


def _choose_execution(requested: str, lowered) -> tuple[str, str]:
    """``(execution, reason)``: ``"loop"`` (a block of steps per compiled call) or ``"step"``.

    ``"auto"`` is a rule, checked on the lowered program of the loop: on the CPU backend, a
    step that holds a convolution runs one jitted call per step, anything else runs in the
    loop. Why: XLA:CPU rewrites the convolutions of a top-level program into the layout its
    fast kernels take, but leaves several of those inside a ``while`` body (the weight and
    input gradients) in other layouts, which go to a generic kernel: a small DenseNet flow
    measured 4-7x slower per step in the loop. Without convolutions the two run the same
    kernels and the loop saves one dispatch and host round trip per step.
    """
    if requested != "auto":
        return requested, "requested"
    if jax.default_backend() == "cpu" and "stablehlo.convolution" in lowered.as_text():
        return "step", ("auto: the step holds convolutions, which XLA:CPU runs several times "
                        "slower inside a compiled loop; one jitted call per step")
    return "loop", "auto: no convolution on CPU (or not a CPU backend); a block of steps per call"


def train(
    model: nnx.Module,
    train_data: Any,
    *,
    config: TrainConfig = TrainConfig(),
    optimizer: optax.GradientTransformation | None = None,
    loss_fn: LossFn = nll_loss,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    init_fn: Callable | str | None = "auto",
    callback: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
    valid_data: Any = None,
) -> TrainResult:
    """Train ``model`` on ``train_data`` and return a :class:`TrainResult`; ``model`` is updated.

    Args:
      model: an ``nnx.Module`` (a ``Flow``...); its ``nnx.Param`` leaves are trained, its other
        state (ActNorm flags, rng counters) is carried through the loss.
      train_data: an array ``(N, ...)`` or a pytree of arrays with a common first axis ``N``
        (e.g. ``(x, context)``); each batch is the same pytree with first axis ``batch_size``.
      config: the schedule, :class:`TrainConfig`.
      optimizer: an optax transformation (schedules go inside it); default ``optax.adam(1e-3)``.
      loss_fn: ``loss_fn(model, batch, key) -> scalar`` to minimise, nats; default :func:`nll_loss`.
      checkpoint_dir: folder for orbax checkpoints (every ``checkpoint_every`` steps and at the
        end); ``None``: no checkpoints.
      resume: continue from the latest checkpoint in ``checkpoint_dir`` that can be read (a fresh
        start if there is none); an unreadable newer one is skipped with one line to ``log``.
      init_fn: data-dependent init ``init_fn(model, batch, key) -> model | None``, called once on
        ``init_batch_size`` examples before the first step of a fresh run, never on resume;
        ``"auto"`` runs ``initialize_actnorm(model, batch, key=key)`` when the model holds an
        ``ActNorm`` (for data that is an array); ``None``: none.
      callback: ``callback(step, block_mean_nats)`` after each block (raise inside to stop).
      log: where the one-line notes go (the execution chosen, a skipped damaged checkpoint);
        default: the skipped checkpoints to stderr, nothing else.
      valid_data: an optional validation set, like ``train_data``. Every ``valid_every`` steps
        (:class:`TrainConfig`) its mean negative log-likelihood in nats is computed (a fixed key
        for inexact models); the best is kept (in ``<checkpoint_dir>/best``, and returned in the
        model when ``restore_best``), and training stops after ``patience`` validations without
        a new best.

    Ctrl-C (SIGINT, in the main thread): the block of steps running is finished, a checkpoint of
    that step is written (with ``checkpoint_dir``) and :class:`TrainingInterrupted` (a
    ``KeyboardInterrupt``) is raised; ``resume=True`` continues from that step, so nothing
    trained is lost. A second Ctrl-C stops at once.

    Before anything is trained: the config, the data sizes and that ``checkpoint_dir`` can be
    written are checked.

    Execution (``config.execution``): on XLA:CPU a step with convolutions runs several times
    slower inside a compiled ``while`` loop than as a program of its own, while a step of dense
    layers runs as fast in the loop and saves a dispatch per step; ``"auto"`` picks by that
    rule and the result says which it took (:attr:`TrainResult.execution`).

    Devices (``config.devices``, default every device): on ``D > 1`` devices each batch is split
    over the ``data`` axis of a ``jax.sharding.Mesh`` and the parameters and optimizer state are
    replicated; step ``t`` sees the same examples as on one device, so the parameters agree with
    a one-device run to float32 rounding. Resuming is bit for bit on the same ``D``; on another
    ``D`` it continues from the same step and batches, to float32 rounding. With several
    processes (:func:`survae_jax.distributed.maybe_initialize_distributed`) ``train_data`` is this
    process's shard (:func:`survae_jax.distributed.process_shard`, as many rows in every
    process), the batches are drawn from all shards in process order, ``valid_data`` is the
    same everywhere, and process 0 writes the checkpoints.

    Raises:
      ValueError: an unknown ``config.execution``, unusable ``config.devices``, or a
        ``batch_size`` that does not divide by the device count (the message names both).
      TrainingError: a NaN or infinite loss (naming the first bad step), or fewer examples than
        one batch.
      CheckpointError: ``checkpoint_dir`` cannot be written; on resume, no checkpoint can be read
        (the newest one's error), or :class:`~survae_jax.checkpoint.CheckpointMismatchError`:
        one written by a different model.
      TrainingInterrupted: Ctrl-C, after the checkpoint of the last step done.

    Source: this library (docs/design.md 'Speed': one jitted block of steps, plain ``jax.jit`` over
    the ``nnx.split`` state, donated buffers); Adam from Kingma & Ba 2015 with lr 1e-3 as in
    Appendix I.1 of the SurVAE paper.
    """
    cfg = config
    if cfg.execution not in EXECUTIONS:
        raise ValueError(f"train: TrainConfig.execution must be one of {EXECUTIONS}, got {cfg.execution!r}.")
    note = log or (lambda msg: None)
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    dp = DataParallel(cfg.devices, who="train")
    dp.check_batch(cfg.batch_size)
    n_local = _check_before_training(cfg, train_data, valid_data, checkpoint_dir, jax.process_count())
    data, n, rows = dp.training_data(train_data, n_local)
    per_epoch = n // cfg.batch_size
    root = jax.random.key(cfg.seed)
    key, data_key, init_key = (jax.random.fold_in(root, i) for i in range(3))

    start, history = 0, np.zeros((0, 2))
    if checkpoint_dir and not resume and list_checkpoints(checkpoint_dir):
        raise CheckpointError(
            f"train: {checkpoint_dir} already holds checkpoints of a run; pass resume=True to continue "
            "it, or give an empty or new checkpoint_dir (a fresh run there would mix two runs' steps)."
        )
    latest = list_checkpoints(checkpoint_dir) if (resume and checkpoint_dir) else []
    barrier("survae_jax train: checkpoints listed")  # several processes: before process 0 writes any
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = optimizer.init(params)
    if latest:
        (params, rest, opt_state), start, history = _restore_newest_readable(
            checkpoint_dir, latest, (params, rest, opt_state), log)
    else:
        if init_fn is not None:
            fn = _auto_init if init_fn == "auto" else init_fn
            take = _epoch_perm(data_key, 0, n)[: min(n, cfg.init_batch_size)]
            out = fn(model, _rows_of(dp, data, take if rows is None else rows(take)), init_key)
            model = model if out is None else out
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        opt_state = optimizer.init(params)
    # Own copies: the loop donates its buffers, which must not be the caller's model arrays.
    state = dp.replicate(jax.tree.map(jnp.array, (params, rest, opt_state)))
    epoch_perm = _epoch_perm_on_device(dp, rows)
    perm_epoch, perm = start // per_epoch, epoch_perm(data_key, start // per_epoch, n)

    validation, validate = _start_validation(
        cfg, graphdef, valid_data, jax.random.fold_in(root, 3), checkpoint_dir, start, state[:2], dp)
    valid_every = support.validation_every(cfg) if validation else 0

    if start >= cfg.steps or (validation and validation.should_stop):  # finished: nothing to do
        nnx.update(model, *state[:2])
        return _result(model, cfg, start, history, per_epoch, validation, 0.0, 0.0, 0.0, float("nan"), start,
                       dp=dp)

    t0 = time.perf_counter()
    single, block = _make_programs(graphdef, loss_fn, optimizer, cfg.batch_size, per_epoch,
                                   dp.batch if dp.sharded else None)
    key = dp.replicate(key)
    scalar = (lambda v, dtype: dp.replicate(jnp.asarray(v, dtype))) if dp.sharded else jnp.asarray
    i32, f32 = scalar(0, jnp.int32), scalar(0.0, jnp.float32)

    def jit(fn, num_donated, num_before_perm):
        if not dp.sharded:
            return jax.jit(fn, donate_argnums=tuple(range(num_donated)))
        rep = dp.replicated  # every argument replicated but the training set, sharded over 'data'
        return jax.jit(fn, donate_argnums=tuple(range(num_donated)), out_shardings=(rep,) * 5,
                       in_shardings=(rep,) * num_before_perm + (rep, dp.batch, rep))

    # Trace the loop first (the usual choice): the rule reads its program, and a dense model
    # is traced once.
    execution, reason = "step", "requested"
    if cfg.execution != "step":
        lowered = jit(block, 3, 5).lower(*state, i32, i32, perm, data, key)
        execution, reason = _choose_execution(cfg.execution, lowered)
    if execution == "step":
        lowered = jit(single, 5, 6).lower(*state, f32, i32, i32, perm, data, key)
    compiled = lowered.compile()
    compile_time = time.perf_counter() - t0
    note(f"train: execution={execution} ({reason}); compiled in {compile_time:.1f} s; "
         f"devices={dp.size if dp.sharded else 1}: {dp.describe()}.")

    def run_block(state, begin, end):
        if execution == "loop":
            *state, total, first_bad = compiled(
                *state, scalar(begin, jnp.int32), scalar(end - begin, jnp.int32), perm, data, key)
            return state, total, first_bad
        total, first_bad = scalar(0.0, jnp.float32), scalar(-1, jnp.int32)
        for t in range(begin, end):
            *state, total, first_bad = compiled(*state, total, first_bad, scalar(t, jnp.int32),
                                                perm, data, key)
        return state, total, first_bad

    progress = support.Progress(cfg.steps, start, cfg.progress, cfg.log_every)
    sigint = support.SigintGuard(log or progress.note)
    rows = [tuple(r) for r in history]
    step, done, t_loop, c_loop = start, 0, 0.0, 0.0
    try:
        sigint.install()
        while step < cfg.steps:
            # A block ends at the next multiple of log_every, checkpoint step, validation step,
            # epoch end or the last step.
            end = min(cfg.steps, (step // cfg.log_every + 1) * cfg.log_every, (step // per_epoch + 1) * per_epoch)
            if cfg.checkpoint_every:
                end = min(end, (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every)
            if valid_every:
                end = min(end, (step // valid_every + 1) * valid_every)
            t1, c1 = time.perf_counter(), time.process_time()
            if step // per_epoch != perm_epoch:  # once per epoch: the new batch order
                perm_epoch, perm = step // per_epoch, epoch_perm(data_key, step // per_epoch, n)
            state, total, first_bad = run_block(state, step, end)
            # The one host sync per block; the mean in float32 as the loop would compute it.
            mean, first_bad = float(np.float32(total) / np.float32(end - step)), int(first_bad)
            t_loop += time.perf_counter() - t1
            c_loop += time.process_time() - c1
            done += end - step
            if first_bad >= 0 or not math.isfinite(mean):
                where = f" (checkpoints in {checkpoint_dir})" if checkpoint_dir else ""
                raise TrainingError(
                    f"train: loss is {mean} at step {first_bad if first_bad >= 0 else end}; "
                    f"stopped without saving{where}."
                )
            step = end
            rows.append((step, mean))
            valid_text = ""
            if valid_every and (step % valid_every == 0 or step == cfg.steps):
                valid_text = validate(step, state[:2])
            progress.update(step, mean, valid_text)
            saved = checkpoint_dir and (
                step == cfg.steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
            )
            if saved:
                save_checkpoint(checkpoint_dir, step, tuple(state), history=np.asarray(rows),
                                keep=cfg.keep_checkpoints)
            if sigint.requested or (validation and validation.should_stop):
                _stop(checkpoint_dir, step, cfg, state, rows, saved, sigint.requested)
                break  # early stopping (Ctrl-C raised in _stop)
            if callback is not None:
                callback(step, mean)
    finally:
        sigint.uninstall()
        progress.close()
        nnx.update(model, *state[:2])

    return _result(model, cfg, step, rows, per_epoch, validation, t_loop, c_loop, compile_time,
                   done / t_loop if t_loop > 0 else float("nan"), start, execution, reason, compiled, dp)


def _check_before_training(cfg: TrainConfig, train_data, valid_data, checkpoint_dir, processes: int = 1) -> int:
    """Everything that can be checked before a step is trained; returns the number of examples
    of this process (the whole set times ``processes`` must hold one batch).

    Raises :class:`TrainingError` for the data, ``CheckpointError`` for an unwritable
    ``checkpoint_dir`` (found now, not at the first save).
    """
    try:
        n = num_examples(train_data)
    except ValueError as e:
        raise TrainingError(f"train: {e}") from e
    if n * processes < cfg.batch_size:
        raise TrainingError(f"train: {n * processes} examples is fewer than one batch of {cfg.batch_size}.")
    if valid_data is not None:
        try:
            num_examples(valid_data)
        except (ValueError, IndexError) as e:
            raise TrainingError(f"train: valid_data: {e}") from e
    if checkpoint_dir:
        check_writable(checkpoint_dir)
    return n


def _start_validation(cfg, graphdef, valid_data, key, checkpoint_dir, start, template, dp):
    """``(Validation, validate(step, state) -> progress text)``, or ``(None, None)`` without
    ``valid_data``. On resume, the best so far is read from ``<checkpoint_dir>/best``."""
    if valid_data is None:
        return None, None
    validation = support.Validation(cfg.patience)
    every = support.validation_every(cfg)
    best_dir = os.path.join(checkpoint_dir, "best") if checkpoint_dir else None
    best = list_checkpoints(best_dir) if best_dir and start > 0 else []
    if best and best[-1] <= start:
        tree, best_step, valid_rows = restore_checkpoint(checkpoint_path(best_dir, best[-1]), tuple(template))
        validation.resume(best_step, valid_rows, jax.device_get(tree), start, every)
    nats_of = support.make_validator(graphdef, valid_data, cfg.valid_batch_size, key, dp)

    def validate(step, state):
        value = nats_of(*state)  # NaN or inf is never a new best: it counts towards patience
        if validation.record(step, value, tuple(state)) and best_dir:
            save_checkpoint(best_dir, step, tuple(state), history=validation.history(), keep=1)
        if validation.best_step is None:
            return f"{value:.4f} (no best yet)"
        return f"{value:.4f} (best {validation.best_nats:.4f} at step {validation.best_step:,})"

    return validation, validate


def _stop(checkpoint_dir, step, cfg, state, rows, saved, interrupted) -> None:
    """Stop after the block ending at ``step``: write its checkpoint (unless just written); on
    Ctrl-C raise :class:`TrainingInterrupted`."""
    path = None
    if checkpoint_dir:
        path = checkpoint_path(checkpoint_dir, step) if saved else save_checkpoint(
            checkpoint_dir, step, tuple(state), history=np.asarray(rows), keep=cfg.keep_checkpoints)
    if interrupted:
        where = f"; checkpoint {path} written, resume continues from it" if path else " (no checkpoint_dir)"
        raise TrainingInterrupted(f"train: interrupted at step {step:,} of {cfg.steps:,}{where}.", step, path)


def _result(model, cfg, step, rows, per_epoch, validation, t_loop, c_loop, compile_time, rate, start,
            execution: str = "", reason: str = "", compiled=None, dp=None):
    """The :class:`TrainResult`; with a validation set and ``restore_best``, the model gets the
    best validated state."""
    blocks = np.asarray(rows, np.float64).reshape(-1, 2)
    result = TrainResult(
        model=model,
        step=step,
        train_nats=_last_epoch_mean(blocks, per_epoch),
        history=support.bin_history(blocks, cfg.log_every),
        wall_time_s=t_loop,
        cpu_time_s=c_loop,
        compile_time_s=compile_time,
        steps_per_second=rate,
        resumed_from=start,
        execution=execution,
        execution_reason=reason,
        memory_bytes=_memory_bytes(compiled) if compiled is not None else 0,
        devices=dp.size if dp is not None and dp.sharded else 1,
        sharding=dp.describe() if dp is not None else "",
    )
    if validation is not None:
        result.valid_history = validation.history()
        result.best_step, result.best_valid_nats = validation.best_step, validation.best_nats
        result.stopped_early = validation.should_stop
        if cfg.restore_best and validation.best_state is not None:
            nnx.update(model, *(dp.replicate(validation.best_state) if dp is not None else validation.best_state))
    return result


def _memory_bytes(compiled) -> int:
    """Arguments + outputs + temporaries of a compiled program (aliased outputs counted once)."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
                   + m.temp_size_in_bytes)
    except Exception:  # not every backend reports it
        return 0


def _restore_newest_readable(directory: str, steps: list[int], template, log):
    """Restore the newest checkpoint of ``steps`` that reads; skip damaged newer ones, one line each.

    A checkpoint that reads but does not fit ``template`` (a different model) is an error at
    once: older ones were written by the same run and would not fit either.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    first_error = None
    for i in range(len(steps) - 1, -1, -1):
        try:
            return restore_checkpoint(checkpoint_path(directory, steps[i]), template)
        except CheckpointMismatchError:
            raise
        except CheckpointError as e:
            first_error = first_error or e
            if i > 0:
                log(f"resume: skipped the damaged checkpoint of step {steps[i]} "
                    f"({' '.join(str(e).split())[:300]}); trying step {steps[i - 1]}.")
    raise first_error


def _last_epoch_mean(hist: np.ndarray, per_epoch: int) -> float:
    """Step-weighted mean of the block means over the last ``per_epoch`` steps."""
    if len(hist) == 0:
        return float("nan")
    steps = np.diff(np.concatenate([[0.0], hist[:, 0]]))
    last = hist[:, 0] > hist[-1, 0] - per_epoch
    return float(np.sum(hist[last, 1] * steps[last]) / np.sum(steps[last]))
