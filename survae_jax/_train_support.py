"""Parts of :func:`survae_jax.train` around its steps: Ctrl-C, validation and early stopping,
progress output, the history rows every ``log_every`` steps.

Kept apart from the step/block execution in :mod:`survae_jax.training`: each part is called
once per block of steps, between compiled calls, and holds no JAX state of the loop itself.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from survae_jax.evaluation import num_examples

#: The largest step :func:`survae_jax.train` can count to: its step counter is a JAX ``int32``.
MAX_STEPS = 2**31 - 1


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped :func:`survae_jax.train` after a whole block of steps.

    Attributes:
      step: the last step done; the model holds the parameters of that step.
      checkpoint: the checkpoint written at ``step`` (``None`` without a ``checkpoint_dir``);
        ``train(..., resume=True)`` continues from it.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does; the ``survae-jax``
    command exits with status 130.

    Source: this library.
    """

    def __init__(self, message: str, step: int, checkpoint: str | None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class SigintGuard:
    """While installed, the first SIGINT only asks the loop to stop after its block; a second one
    raises ``KeyboardInterrupt`` at once (no checkpoint).

    Installed only in the main thread (Python delivers signals there); elsewhere it does nothing.
    ``uninstall`` puts the previous handler back.
    """

    def __init__(self, log: Callable[[str], None]):
        self.requested = False
        self._log = log
        self._previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:  # the second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        self._log("train: interrupt: stopping after this block of steps and saving a checkpoint "
                  "(Ctrl-C again to stop at once, without one).")

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def validation_every(cfg) -> int:
    """Steps between validations: ``valid_every``, else ``checkpoint_every``, else ``log_every``."""
    return cfg.valid_every or cfg.checkpoint_every or cfg.log_every


def make_validator(graphdef, data: Any, batch_size: int, key, dp=None) -> Callable[[Any, Any], float]:
    """``fn(params, rest) -> mean negative log-likelihood`` (nats per example) of ``data``.

    One jitted program, compiled once: ``lax.map`` over batches of ``batch_size`` (the last one
    padded with repeats of the first rows and masked out); batch ``i`` gets ``fold_in(key, i)``,
    the same keys at every validation so that an inexact model's one-sample ELBOs are compared
    with common random numbers. ``dp`` (a :class:`~survae_jax.distributed.DataParallel`): each
    batch is split over its devices (the same batches, with masked rows appended up to a
    multiple of the device count); ``data`` must then be the same on every process.
    """
    n = num_examples(data)
    bs = min(int(batch_size), n)
    nb = -(-n // bs)
    pad = nb * bs - n
    sharded = dp is not None and dp.sharded
    width = -(-bs // dp.size) * dp.size if sharded else bs

    def chunked(a):
        a = np.asarray(a)
        a = np.concatenate([a, a[:pad]]) if pad else a
        a = a.reshape(nb, bs, *a.shape[1:])
        return np.concatenate([a, a[:, np.arange(width - bs) % bs]], axis=1) if width > bs else a

    chunks = jax.tree.map(chunked, data)
    mask = np.arange(nb * width).reshape(nb, width) % width < bs
    mask &= (np.arange(nb)[:, None] * bs + np.arange(width)[None, :]) < n
    if sharded:
        chunks, mask = dp.shard_rows((chunks, mask), axis=1)
    else:
        chunks, mask = jax.tree.map(jnp.asarray, (chunks, mask))

    @jax.jit
    def run(params, rest, chunks, mask):
        model = nnx.merge(graphdef, params, rest)

        def one(args):
            i, b, m = args
            lp = model.log_prob(b, key=jax.random.fold_in(key, i))
            return jnp.sum(jnp.where(m, lp, 0.0))

        return -jnp.sum(jax.lax.map(one, (jnp.arange(nb), chunks, mask))) / n

    return lambda params, rest: float(run(params, rest, chunks, mask))


class Validation:
    """The validation state of a run: best nats and step, validations since the best, the rows
    ``(step, valid nats)``, and a host copy of the best ``(params, rest)``."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_nats = math.inf
        self.best_step: int | None = None
        self.best_state = None
        self.since_best = 0
        self.rows: list[tuple[float, float]] = []

    def resume(self, best_step: int, rows: np.ndarray, best_state, start: int, every: int) -> None:
        """State after resuming at ``start`` from a best checkpoint of ``best_step`` whose history
        holds the validation rows up to it; validations fall on multiples of ``every``."""
        self.rows = [tuple(r) for r in rows]
        self.best_step = best_step
        self.best_nats = float(rows[-1, 1]) if len(rows) else math.inf
        self.best_state = best_state
        self.since_best = start // every - best_step // every

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.since_best >= self.patience

    def record(self, step: int, value: float, state) -> bool:
        """Record a validation; ``True`` when it is a new best (its state is copied to the host)."""
        self.rows.append((step, value))
        if value < self.best_nats:
            self.best_nats, self.best_step, self.since_best = value, step, 0
            self.best_state = jax.device_get(state)
            return True
        self.since_best += 1
        return False

    def history(self) -> np.ndarray:
        return np.asarray(self.rows, np.float64).reshape(-1, 2)


def bin_history(rows, log_every: int) -> np.ndarray:
    """Block rows ``(step, mean)`` gathered into one row per ``log_every`` steps.

    A row ends at a multiple of ``log_every`` (or at the last step); its value is the
    step-weighted mean of the blocks that end in ``(previous row, row]``.
    """
    out: list[tuple[float, float]] = []
    prev, total, count, cur_bin = 0, 0.0, 0, None
    for step, mean in rows:
        step = int(step)
        b = -(-step // log_every)
        if cur_bin is not None and b != cur_bin:
            out.append((last, total / count))
            total, count = 0.0, 0
        n = step - prev
        total, count, prev, cur_bin, last = total + mean * n, count + n, step, b, step
    if count:
        out.append((last, total / count))
    return np.asarray(out, np.float64).reshape(-1, 2)


class Progress:
    """The progress display: a tqdm bar when ``stream`` is a terminal, else one plain line per
    ``log_every`` steps (a log file gets lines, not one long line of carriage returns)."""

    def __init__(self, total: int, initial: int, enabled: bool, log_every: int, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.log_every = total, log_every
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=self.stream) \
            if enabled and is_tty else None
        self.lines = enabled and not is_tty
        self._pending: list[tuple[int, float]] = []
        self._last_step, self._t = initial, time.perf_counter()

    def note(self, text: str) -> None:
        """A one-line note that does not break the bar."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, step: int, mean: float, valid: str = "") -> None:
        """After a block ending at ``step`` with mean loss ``mean``; ``valid``: text to add."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(nats=f"{mean:.4f}", **({"valid": valid} if valid else {}))
            return
        if not self.lines:
            return
        self._pending.append((step, mean))
        if step % self.log_every == 0 or step == self.total or valid:
            steps = np.diff([self._last_step] + [s for s, _ in self._pending])
            value = float(np.sum(np.array([m for _, m in self._pending]) * steps) / max(1, np.sum(steps)))
            now = time.perf_counter()
            rate = (step - self._last_step) / max(now - self._t, 1e-9)
            extra = f"  valid {valid}" if valid else ""
            print(f"step {step:,}/{self.total:,}  train {value:.4f} nats{extra}  {rate:,.0f} steps/s",
                  file=self.stream, flush=True)
            self._pending, self._last_step, self._t = [], step, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
