"""Run an experiment into a run folder; reload, evaluate and sample a finished run.

A run folder holds::

    config.json        the experiment's name and config (written first)
    train.log          one line per note of the training loop (the execution it chose: a
                       compiled loop of steps or one call per step, and why; the devices:
                       the 'data' mesh and what is sharded, or one device unsharded)
    checkpoints/       orbax checkpoints, step_00001000, ... (the last two kept)
    density.png ...    the experiment's figures (samples.png with its samples in samples.npy)
    metrics.json       train and test nats, times, steps/s (written last, atomically)

``metrics.json`` is the mark of a finished run: it is removed when a run (re)starts and written
only after training, evaluation and figures have succeeded, so a folder whose run failed never
claims success.

With several processes (``jax.distributed``) every process runs the same command: each trains on
its shard of the training set (:func:`~survae_jax.distributed.process_shard`), all evaluate the
whole test set together, and process 0 alone writes the files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
from typing import Any, Callable

import jax
from flax import nnx

from survae_jax import distributed
from survae_jax.checkpoint import (
    CheckpointError,
    check_writable,
    checkpoint_path,
    list_checkpoints,
    restore_checkpoint,
)
from survae_jax.experiments import get_experiment
from survae_jax.experiments.registry import Experiment
from survae_jax.training import evaluate, train

_SCHEDULE_ONLY = {"steps", "log_every", "checkpoint_every"}


class RunError(RuntimeError):
    """A run folder that cannot be used: unwritable, already used, or not a run.

    The message names the folder (e.g. ``runs/toy2d_checkerboard_baseline_s0``).

    Raised by :func:`run_experiment` and :func:`load_run` (a ``RuntimeError``).

    Source: this library (the run folder layout of this module).
    """


def _finite(obj):
    """JSON has no NaN/inf: write them as ``null``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_finite(obj), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _prepare_dir(run_dir: str) -> None:
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, f".write_test.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise RunError(f"cannot write the run folder {run_dir}: {e.strerror or e}.") from e


def _config_dict(exp: Experiment, config: Any) -> dict:
    return {"experiment": exp.name, **dataclasses.asdict(config)}


def check_resume(run_dir: str, steps: int) -> int:
    """The step a resume of ``run_dir`` to ``steps`` optimizer steps continues from.

    That is the newest checkpoint in ``run_dir/checkpoints`` (``0`` for a run that wrote its
    ``config.json`` but no checkpoint yet). A missing folder, or one with neither, holds nothing
    to resume; a checkpoint past ``steps`` is refused: the run cannot go back to ``steps``.
    Nothing is written.

    Raises:
      RunError: nothing to resume, or a checkpoint step greater than ``steps``.

    Source: this library.
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    latest = list_checkpoints(ckpt_dir)
    if not latest and not os.path.isfile(os.path.join(run_dir, "config.json")):
        what = "an empty folder" if os.path.isdir(run_dir) and not os.listdir(run_dir) else (
            "no config.json, no checkpoint" if os.path.isdir(run_dir) else "no such folder")
        raise RunError(f"nothing to resume in {run_dir} ({what}); drop --resume to start a run.")
    if latest and latest[-1] > int(steps):
        raise RunError(f"--resume: {ckpt_dir} holds a checkpoint of step {latest[-1]:,}, past the "
                       f"{int(steps):,} steps asked for (--steps {int(steps)}); give --steps "
                       f"{latest[-1]} or more (--steps {latest[-1]} re-evaluates the run).")
    return latest[-1] if latest else 0


def run_experiment(
    exp: Experiment,
    config: Any,
    run_dir: str,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    devices: Any = None,
) -> dict:
    """Train ``exp`` with ``config`` into ``run_dir``; return the metrics written to ``metrics.json``.

    With ``resume``, continue from the latest checkpoint of ``run_dir`` (its stored config must
    equal ``config`` except for the schedule fields ``steps``, ``log_every``,
    ``checkpoint_every``; a folder without ``config.json`` and checkpoints is an error); without
    it, ``run_dir`` must not hold a run already.
    ``devices``: :attr:`~survae_jax.training.TrainConfig.devices` of the training and the test
    evaluation (default every device); a run may be resumed on another count.

    Raises:
      RunError: an unwritable folder, a folder that already holds a run (without ``resume``);
        with ``resume``: nothing to resume, a config that differs from the stored one, or a
        checkpoint past the config's steps (:func:`check_resume`).
      TrainingError, CheckpointError: from :func:`survae_jax.train`.

    The metrics are in nats (``train_nats``, ``test_nats``; PPLL for point clouds) plus times
    in seconds; test data shapes are the experiment's (``(N, 2)``, ``(N, 50, 2)``).

    Source: this library (docs/design.md: one training loop and one CLI for every experiment).
    """
    t_start = time.perf_counter()
    if resume:
        check_resume(run_dir, exp.train_config(config, progress=False).steps)  # before any file is written
    _prepare_dir(run_dir)
    cfg_path = os.path.join(run_dir, "config.json")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    check_writable(ckpt_dir)  # before anything is written or trained
    new = _config_dict(exp, config)
    if os.path.exists(cfg_path) or list_checkpoints(ckpt_dir):
        if not resume:
            raise RunError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out.")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                old = json.load(f)
            diff = sorted(k for k in set(old) | set(new) if k not in _SCHEDULE_ONLY
                          and json.dumps(old.get(k)) != json.dumps(new.get(k)))
            if diff:
                raise RunError(f"{run_dir}: --resume with a config that differs from config.json in {diff}.")
    metrics_path = os.path.join(run_dir, "metrics.json")
    distributed.barrier(f"survae_jax run {run_dir} checked")  # every process has looked before any writes
    primary = distributed.is_primary()
    if primary and os.path.exists(metrics_path):
        os.remove(metrics_path)
    if primary:
        _write_json(cfg_path, new)

    train_data, test_data = exp.load_data(config)
    train_data = distributed.process_shard(train_data)
    valid_data = exp.load_valid_data(config)
    model = exp.build_model(config)
    log_path = os.path.join(run_dir, "train.log")

    def note(msg: str) -> None:  # all to train.log; all but the execution note also to stderr
        if not primary:
            return
        with open(log_path, "a") as f:
            f.write(msg + "\n")
        if not msg.startswith("train: execution="):
            print(msg, file=sys.stderr, flush=True)

    train_config = dataclasses.replace(exp.train_config(config, progress=progress and primary), devices=devices)
    result = train(
        model, train_data, config=train_config,
        optimizer=exp.optimizer(config), loss_fn=exp.loss_fn(config),
        checkpoint_dir=ckpt_dir, resume=resume, init_fn=exp.init_fn(config), log=note, valid_data=valid_data,
    )
    key = jax.random.fold_in(jax.random.key(config.seed), 7)
    t_eval = time.perf_counter()
    ll = evaluate(model, test_data, key=key, log_prob_fn=exp.log_prob_fn(config),
                  batch_size=exp.eval_batch_size(config), devices=devices)
    out = {
        "experiment": exp.name,
        "step": result.step,
        "train_nats": result.train_nats,
        **exp.test_metrics(config, ll, model),
        "steps_per_second": result.steps_per_second,
        "train_time_s": result.wall_time_s,
        "cpu_time_s": result.cpu_time_s,
        "compile_time_s": result.compile_time_s,
        "execution": result.execution,
        "execution_reason": result.execution_reason,
        "devices": result.devices,
        "sharding": result.sharding,
        "processes": jax.process_count(),
        "eval_time_s": time.perf_counter() - t_eval,
        "resumed_from": result.resumed_from,
        **({} if valid_data is None else {"best_step": result.best_step, "best_valid_nats": result.best_valid_nats,
                                          "stopped_early": result.stopped_early}),
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    if jax.process_count() > 1:  # the figures are drawn by process 0 alone, from host copies
        nnx.update(model, jax.device_get(nnx.state(model)))
    figures = exp.plot(model, config, test_data, run_dir, jax.random.fold_in(key, 1)) if primary else []
    out["figures"] = [os.path.basename(p) for p in figures]
    out["wall_time_s"] = time.perf_counter() - t_start
    if primary:
        _write_json(metrics_path, out)
    distributed.barrier(f"survae_jax run {run_dir} written")
    return out


def load_run(run_dir: str) -> tuple[Experiment, Any, Any, int]:
    """Rebuild a run's model from ``config.json`` and its latest checkpoint (the best validated one,
    ``checkpoints/best``, for a run trained with a validation set that restores its best).

    Returns:
      ``(experiment, config, model, step)``.

    Raises:
      RunError: no ``config.json`` (not a run folder) or an unreadable one.
      CheckpointError: no checkpoint, or a corrupt one.

    Source: this library (orbax checkpoints of :mod:`survae_jax.checkpoint`).
    """
    cfg_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise RunError(f"{run_dir} is not a run folder: {cfg_path} not found.")
    try:
        with open(cfg_path) as f:
            stored = json.load(f)
        exp = get_experiment(stored["experiment"])
        config = exp.config_from_dict(stored)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunError(f"cannot read {cfg_path}: {type(e).__name__}: {e}") from e
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    steps = list_checkpoints(ckpt_dir)
    if not steps:
        raise CheckpointError(f"no checkpoint in {ckpt_dir}.")
    model = exp.build_model(config)
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = exp.optimizer(config).init(params)
    (params, rest, _), step, _ = restore_checkpoint(checkpoint_path(ckpt_dir, steps[-1]), (params, rest, opt_state))
    best_dir = os.path.join(ckpt_dir, "best")
    best = list_checkpoints(best_dir)
    if best and exp.train_config(config, progress=False).restore_best:  # validated: the best parameters
        (params, rest), step, _ = restore_checkpoint(checkpoint_path(best_dir, best[-1]), (params, rest))
    nnx.update(model, params, rest)
    return exp, config, model, step


def evaluate_run(run_dir: str, *, iwbo: int | None = None) -> dict:
    """Test metrics of a run's latest checkpoint (the same key as at the end of training).

    Returns ``{"run", "step", **test metrics}``: ``test_nats`` (nats per example, over the
    test set ``(N, ...)``), ``test_exact``, ``num_parameters`` and the experiment's own (PPLL).
    With ``iwbo=K``, the test log-likelihoods are the IWBO with ``K`` importance samples
    (Burda et al. 2016; for an exact model it equals ``log p``) over the first
    ``config.iwbo_examples`` test examples where the run's config has that field set (the same
    examples as its training run's IWBO), else over the whole test set: ``test_nats`` is then
    replaced by ``test_iwbo_nll_nats`` (``-IWBO`` per example), ``iwbo_samples`` says ``K`` and
    ``iwbo_examples`` how many examples were scored.

    Raises:
      ValueError: ``iwbo`` < 1.
      RunError, CheckpointError: from :func:`load_run`.

    Source: this library.
    """
    if iwbo is not None and int(iwbo) < 1:
        raise ValueError(f"evaluate_run: iwbo must be >= 1 importance samples, got {iwbo}.")
    exp, config, model, step = load_run(run_dir)
    _, test_data = exp.load_data(config)
    key = jax.random.fold_in(jax.random.key(config.seed), 7)
    log_prob_fn, batch_size, extra = exp.log_prob_fn(config), exp.eval_batch_size(config), {}
    if iwbo is not None:
        k = int(iwbo)
        chunk = max(d for d in range(1, min(k, 128) + 1) if k % d == 0)  # samples per vmap

        def log_prob_fn(m, b, key_):
            return m.iwbo(b, key=key_, num_samples=k, chunk_size=chunk)

        n = int(jax.tree.leaves(test_data)[0].shape[0])
        wanted = getattr(config, "iwbo_examples", None)
        m = n if wanted is None else min(int(wanted), n)
        if wanted is not None and int(wanted) > n:
            print(f"eval: the run's iwbo_examples={int(wanted):,} is more than the {n:,} test examples; "
                  f"the IWBO is on all {n:,}.", file=sys.stderr, flush=True)
        test_data = jax.tree.map(lambda a: a[:m], test_data)
        # examples x samples per batch: 65,536 at the default batch of 8,192, scaled with it
        batch_size, extra = max(1, 8 * batch_size // chunk), {"iwbo_samples": k, "iwbo_examples": m}
    ll = evaluate(model, test_data, key=key, log_prob_fn=log_prob_fn, batch_size=batch_size)
    metrics_ = exp.test_metrics(config, ll, model, iwbo_samples=extra.get("iwbo_samples"))
    if iwbo is not None:  # test_nats keeps one meaning (the training run's); this pass is the IWBO
        metrics_["test_iwbo_nll_nats"] = metrics_.pop("test_nats")
    return {"run": run_dir, "step": step, **metrics_, **extra}


def sample_run(run_dir: str, *, num_samples: int = 50_000, seed: int = 0, path: str | None = None) -> str:
    """Draw ``num_samples`` from a run's model; write the experiment's sample figure to ``path``
    and the samples beside it (``samples.npy`` next to ``samples.png``).

    Raises:
      ValueError: ``num_samples`` < 1.
      RunError, CheckpointError: from :func:`load_run`.

    Samples are ``(num_samples, *event)`` (e.g. ``(50000, 2)`` for toy2d; point clouds are
    clamped to 8..64 clouds of ``(50, 2)``); returns the figure's path.

    Source: this library.
    """
    if int(num_samples) < 1:
        raise ValueError(f"sample_run: num_samples must be >= 1, got {num_samples}.")
    exp, config, model, _ = load_run(run_dir)
    path = path or os.path.join(run_dir, "samples.png")
    return exp.sample(model, config, path, jax.random.key(seed), int(num_samples))

