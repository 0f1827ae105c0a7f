"""Orbax checkpoints of a training state: save, find the latest, restore into a template.

A checkpoint is one folder ``<dir>/step_<step, at least 8 digits>`` written by orbax's
``StandardCheckpointer`` (atomically: orbax writes to a temporary name and renames it when the
write has committed). It holds the flattened leaves of a pytree (the model's ``nnx.State``, the
optax state, ...), their key paths, the step and the training history. Restoring needs a
*template*, a pytree with the same structure, shapes and dtypes (the freshly built model's
state), so a checkpoint written by a different model is refused with a message naming the first
array that differs instead of being silently mis-assigned.

A trained model is saved with :func:`save_model` and loaded with :func:`load_model`, which also
reads what :func:`survae_jax.train` wrote (its checkpoints hold the model's ``nnx.Param`` state,
its other state and the optimizer state, in that order; ``load_model`` takes the first two).
A restored model is the saved one or an error: every array's key path, shape and dtype must
match the template's, except that an array is read into a wider dtype of its kind when that
keeps every value (saved without ``jax_enable_x64``, loaded with it); a lossy cast is refused.

Typed PRNG keys (``nnx.Rngs`` state) are stored as their raw ``uint32`` key data and re-wrapped.

Several processes (``jax.distributed``, the folder on storage every host sees): process 0 alone
writes (and removes old checkpoints); every process waits for the write at a barrier and then
reads what it needs on its own.

A damaged checkpoint is read once synchronously with tensorstore before orbax restores it
(:func:`_verify_readable`). Orbax's restore runs all the array reads at once on an asyncio
event loop of its own and closes that loop as soon as the first read fails, while the other
reads are still in flight; when those finish, tensorstore calls back into the closed loop and
each prints a ``RuntimeError: Event loop is closed`` traceback on stderr. The synchronous pass
waits for every read it starts, so a damaged checkpoint fails there, with one
:class:`CheckpointError`, before orbax is asked to read it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts

from survae_jax.distributed import barrier as _barrier

_NAME = re.compile(r"^step_(\d{8,})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model it is restored into.

    The message names the checkpoint folder (``<dir>/step_00001000``).

    Raised by :func:`save_checkpoint` and :func:`restore_checkpoint` (a ``RuntimeError``).

    Source: this library (checkpoints of ``train``; docs/design.md 'Speed').
    """


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint whose arrays do not fit the template: written by a different model.

    The message gives the array index and both shapes/dtypes, e.g. stored ``(2, 64)`` float32
    against the model's ``(2, 128)`` float32.

    Raised by :func:`restore_checkpoint` (a :class:`CheckpointError`).

    Source: this library.
    """


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _verify_readable(path: str) -> None:
    """Read every stored byte of the OCDBT checkpoint ``path`` and decode its zarr arrays.

    Synchronous (tensorstore futures, no asyncio), and every read started is waited for, so
    nothing is left running when it fails. A folder without ``manifest.ocdbt`` (another
    storage layout) is left to orbax.

    Raises:
      CheckpointError: the manifest, the tree of keys, a value or an array cannot be read or
        decoded; the message names the checkpoint and the array.
    """
    if not os.path.isfile(os.path.join(path, "manifest.ocdbt")):
        return
    ctx = ts.Context()
    kv_spec = {"driver": "ocdbt", "base": {"driver": "file", "path": os.path.abspath(path) + "/"}}
    try:
        kv = ts.KvStore.open(kv_spec, context=ctx).result()
        keys = kv.list().result()
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {_short(e)}") from e
    arrays = sorted({k[: -len(b"/.zarray")].decode() for k in keys if k.endswith(b"/.zarray")})
    other = [k for k in keys if not any(k.startswith(a.encode() + b"/") for a in arrays)]
    # Start every read, then wait for all of them before reporting the first failure.
    pending = [(k.decode(errors="replace"), kv.read(k)) for k in other]
    pending += [(a, ts.open({"driver": "zarr", "kvstore": {**kv_spec, "path": a + "/"}},
                            context=ctx, open=True, read=True)) for a in arrays]
    errors, reads = [], []
    for name, fut in pending:
        try:
            out = fut.result()
            if isinstance(out, ts.TensorStore):
                reads.append((name, out.read()))
        except Exception as e:  # tensorstore raises ValueError and others
            errors.append((name, e))
    for name, fut in reads:
        try:
            fut.result()
        except Exception as e:
            errors.append((name, e))
    if errors:
        name, e = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckpointError(
            f"cannot read checkpoint {path}: array {name!r}{more}: {type(e).__name__}: {_short(e)}"
        ) from e


def checkpoint_path(directory: str, step: int) -> str:
    """The folder of the checkpoint of ``step`` inside ``directory``: ``<directory>/step_<digits>``.

    The step is zero-padded to 8 digits (``step_00001000``); a step past 99,999,999 has more.

    Raises:
      ValueError / TypeError: ``step`` cannot be converted with ``int()``.

    Source: this library.
    """
    return os.path.join(directory, f"step_{int(step):08d}")


def list_checkpoints(directory: str) -> list[int]:
    """Steps of the committed checkpoints in ``directory``, ascending (``[]`` if none).

    Only folders named ``step_<8 or more digits>`` count (orbax's temporary names do not match).

    Raises:
      OSError: ``directory`` exists but cannot be listed.

    Source: this library.
    """
    if not os.path.isdir(directory):
        return []
    steps = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m and os.path.isdir(os.path.join(directory, name)):
            steps.append(int(m.group(1)))
    return sorted(steps)


def _checkpointer(*, writer: bool) -> ocp.StandardCheckpointer:
    """Orbax's checkpointer; with several processes it runs in process 0 (``writer``) or in this
    process alone (reading), so that orbax waits for no other process."""
    if jax.process_count() == 1:
        return ocp.StandardCheckpointer()
    me = 0 if writer else jax.process_index()
    return ocp.StandardCheckpointer(
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}))


def check_writable(directory: str) -> None:
    """Check that checkpoints can be written to ``directory`` (created if missing), before training.

    Creates the folder and writes and removes a probe file in it, so that a folder that cannot be
    written is found before any step is trained, not at the first save.

    Raises:
      CheckpointError: the folder cannot be created or written (e.g. a file stands where it
        should be, or no permission); the message names the folder and the reason.

    Source: this library.
    """
    probe = os.path.join(directory, f".write_test.{os.getpid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints to {directory}: {e.strerror or e}.") from e


def _key_paths(tree: Any) -> list[str]:
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8).copy()


def _write(path: str, tree: Any, step: int, history: np.ndarray | None) -> None:
    """Write ``tree`` with orbax into the folder ``path`` (replaced if it exists); with several
    processes, process 0 writes and the others wait for it."""
    if jax.process_index() != 0:
        _barrier(f"survae_jax checkpoint {path}")
        return
    leaves = jax.tree.leaves(tree)
    # Orbax cannot store empty arrays: they are left out and taken from the template on restore.
    payload = {
        "leaves": {
            f"{i:05d}": np.asarray(jax.random.key_data(x) if _is_key(x) else x)
            for i, x in enumerate(leaves) if np.size(x) > 0 or _is_key(x)
        },
        "num_leaves": np.asarray(len(leaves), np.int64),
        "paths": _encode(json.dumps(_key_paths(tree))),
        "step": np.asarray(step, np.int64),
        "history": np.full((1, 2), np.nan) if history is None or len(history) == 0
        else np.asarray(history, np.float64),
    }
    try:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        if os.path.exists(path):
            shutil.rmtree(path)
        ckpt = _checkpointer(writer=True)
        try:
            ckpt.save(os.path.abspath(path), payload)
            ckpt.wait_until_finished()
        finally:
            ckpt.close()
    except Exception as e:  # orbax raises many kinds; one message that says where
        raise CheckpointError(f"cannot write checkpoint {path}: {type(e).__name__}: {_short(e)}") from e
    finally:
        _barrier(f"survae_jax checkpoint {path}")


def save_checkpoint(
    directory: str, step: int, tree: Any, *, history: np.ndarray | None = None, keep: int = 2
) -> str:
    """Write ``tree`` (any pytree of arrays) as the checkpoint of ``step``; keep the last ``keep``.

    Returns the checkpoint's folder. Blocks until the write has committed. ``keep=0`` keeps all.
    With several processes every process calls it: process 0 writes, all return after the write.

    Raises:
      CheckpointError: the folder cannot be written.

    Source: this library (orbax ``StandardCheckpointer``; typed PRNG keys stored as ``uint32``
    key data).
    """
    path = checkpoint_path(directory, step)
    _write(path, tree, step, history)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 and jax.process_index() == 0 else []:
        shutil.rmtree(checkpoint_path(directory, old), ignore_errors=True)
    return path


class _Stored:
    """The leaves, key paths (``None`` for a checkpoint written before they were stored), step and
    history read from one checkpoint folder."""

    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise CheckpointError(f"checkpoint {path} not found.")
        _verify_readable(path)
        try:
            ckpt = _checkpointer(writer=False)
            try:
                payload = ckpt.restore(os.path.abspath(path))
            finally:
                ckpt.close()
        except Exception as e:
            raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {_short(e)}") from e
        try:
            self.count = int(payload.get("num_leaves", len(payload["leaves"])))
            self.leaves = [payload["leaves"].get(f"{i:05d}") for i in range(self.count)]
            self.paths = (json.loads(np.asarray(payload["paths"], np.uint8).tobytes().decode())
                          if "paths" in payload else None)
            self.step = int(payload["step"])
            history = np.asarray(payload["history"], np.float64).reshape(-1, 2)
            self.history = history[np.all(np.isfinite(history), axis=1)]
        except Exception as e:
            raise CheckpointError(f"checkpoint {path} is malformed: {type(e).__name__}: {e}") from e
        self.path = path

    def describe(self, i: int) -> str:
        s = self.leaves[i] if i < self.count else None
        name = f" {self.paths[i]}" if self.paths and i < len(self.paths) else ""
        shape = "" if s is None else f" {np.shape(s)} {np.asarray(s).dtype}"
        return f"array {i}{name}{shape}"

    def into(self, template: Any, *, prefix_ok: bool = False) -> Any:
        """The stored leaves unflattened into ``template``'s structure, after checking that they fit.

        ``prefix_ok``: the template may be the first part of the stored tree (a model out of a
        ``train()`` checkpoint, whose further arrays are the optimizer state).
        """
        leaves, treedef = jax.tree.flatten(template)
        names = _key_paths(template)
        n = len(leaves)

        def expected(i):
            t = leaves[i]
            return f"array {i} {names[i]} {np.shape(t)} {t.dtype}"

        optimizer_rest = self.paths is not None and all(p.startswith("[2]") for p in self.paths[n:])
        if self.count < n or (self.count > n and not (prefix_ok and optimizer_rest)):
            i = self._first_difference(names, leaves)
            what = (f"the first difference: the checkpoint's {self.describe(i)}, the template's "
                    f"{expected(i)}" if i < min(n, self.count) else
                    f"the checkpoint has no {expected(i)}" if i >= self.count else
                    f"the template ends before the checkpoint's {self.describe(i)}")
            hint = ""
            if self.paths and any(p.startswith("[2]") for p in self.paths):
                hint = (" It is a train() checkpoint (model parameters, other state and optimizer "
                        "state): load the model from it with survae_jax.load_model(path, model).")
            raise CheckpointMismatchError(
                f"checkpoint {self.path} holds {self.count} arrays but the template has {n} "
                f"({_summary(names)}); {what}: it was written by a different model.{hint}"
            )
        out = []
        for i, t in enumerate(leaves):
            s = self.leaves[i]
            if self.paths is not None and self.paths[i] != names[i]:
                raise CheckpointMismatchError(
                    f"checkpoint {self.path}: {self.describe(i)} where the template has {expected(i)}: "
                    "it was written by a different model."
                )
            if s is None and np.size(t) == 0:  # an empty array, not stored
                s = np.asarray(t)
            elif s is None:
                raise CheckpointError(f"checkpoint {self.path}: array {i} is missing.")
            if _is_key(t):
                s = jax.random.wrap_key_data(s, impl=jax.random.key_impl(t))
            elif tuple(np.shape(s)) != tuple(np.shape(t)) or np.asarray(s).dtype != np.dtype(t.dtype):
                s = self._cast_exactly(i, s, t, expected(i))
            out.append(s)
        return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in out])

    def _cast_exactly(self, i: int, s, t, expected: str):
        """``s`` in the template's dtype when the cast keeps every value (an int32 permutation
        saved without ``jax_enable_x64`` read into an int64 one, float32 into float64); else an error."""
        s, want = np.asarray(s), np.dtype(t.dtype)
        same_kind = s.dtype.kind == want.kind or {s.dtype.kind, want.kind} <= {"i", "u"}
        if tuple(s.shape) == tuple(np.shape(t)) and same_kind:
            cast = s.astype(want)
            if np.array_equal(cast.astype(s.dtype), s, equal_nan=s.dtype.kind == "f"):
                return cast
        why = "it was written by a different model."
        if tuple(s.shape) == tuple(np.shape(t)) and {s.dtype.itemsize, want.itemsize} == {4, 8}:
            why = (f"the same shape in another precision, which {want} cannot hold exactly: the checkpoint and the "
                   "model were made with jax_enable_x64 set differently; build the model with the setting it was "
                   "saved with.")
        raise CheckpointMismatchError(f"checkpoint {self.path}: {self.describe(i)}, the model expects {expected}: {why}")

    def _first_difference(self, names, leaves) -> int:
        for i in range(min(len(leaves), self.count)):
            s = self.leaves[i]
            if self.paths is not None and self.paths[i] != names[i]:
                return i
            if s is not None and not _is_key(leaves[i]) and tuple(np.shape(s)) != tuple(np.shape(leaves[i])):
                return i
        return min(len(leaves), self.count)


def _summary(names: list[str]) -> str:
    """The top-level parts of a template's key paths with their array counts: ``[0]: 8, [1]: 1``."""
    counts: dict[str, int] = {}
    for name in names:
        head = name[: name.index("]") + 1] if name.startswith("[") else name.split(".")[0]
        counts[head] = counts.get(head, 0) + 1
    return ", ".join(f"{k}: {v} arrays" for k, v in counts.items()) or "no arrays"


def restore_checkpoint(path: str, template: Any) -> tuple[Any, int, np.ndarray]:
    """Read the checkpoint folder ``path`` into the structure of ``template``.

    Returns:
      ``(tree, step, history)``: the restored pytree (same structure as ``template``), the step
      it was saved at and the history ``(K, 2)`` of ``(step, nats)`` rows.

    Raises:
      CheckpointError: the folder is missing, unreadable or malformed.
      CheckpointMismatchError: (a ``CheckpointError``) its leaves do not match the template's
        count, key paths, shapes or dtypes: it was written by a different model. The message
        names the first array that differs, in the checkpoint and in the template.

    Source: this library (orbax ``StandardCheckpointer``, with a synchronous tensorstore read
    first so a damaged checkpoint fails with one error).
    """
    stored = _Stored(path)
    return stored.into(template), stored.step, stored.history


def _model_parts(model) -> tuple[Any, Any]:
    from flax import nnx

    return tuple(nnx.split(model, nnx.Param, ...)[1:])


def save_model(path: str, model, *, overwrite: bool = False) -> str:
    """Save a trained model's state (``nnx.Param`` leaves and the other state) to the folder ``path``.

    Load it with :func:`load_model` into a model built the same way. Blocks until written.

    Args:
      path: the folder to write (an orbax checkpoint).
      model: an ``nnx.Module`` (a ``Flow``...).
      overwrite: replace an existing ``path``; without it an existing path is an error.

    Returns:
      ``path``.

    Raises:
      CheckpointError: ``path`` exists (and ``overwrite`` is false) or cannot be written.

    Source: this library (orbax ``StandardCheckpointer``).
    """
    if os.path.exists(path) and not overwrite:
        raise CheckpointError(f"save_model: {path} exists; pass overwrite=True to replace it.")
    _write(path, _model_parts(model), 0, None)
    return path


def resolve_model_path(path: str) -> str:
    """The checkpoint folder :func:`load_model` reads for ``path``.

    ``path`` may be a folder written by :func:`save_model` or one checkpoint ``step_...``, a
    checkpoint directory of :func:`survae_jax.train` (its newest checkpoint), or a run folder of
    the ``survae-jax`` command (the newest checkpoint in its ``checkpoints/``).

    Raises:
      CheckpointError: ``path`` does not exist or holds no checkpoint.

    Source: this library.
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"load_model: {path} not found.")
    for directory in (path, os.path.join(path, "checkpoints")):
        steps = list_checkpoints(directory)
        if steps:
            return checkpoint_path(directory, steps[-1])
    if os.path.isdir(os.path.join(path, "checkpoints")) or os.path.isfile(os.path.join(path, "config.json")):
        raise CheckpointError(f"load_model: no checkpoint in {os.path.join(path, 'checkpoints')}.")
    return path


def load_model(path: str, template):
    """Load a saved model into ``template``, a model built the same way; return it (updated in place).

    Reads what :func:`save_model` wrote, and what :func:`survae_jax.train` wrote: pass its
    ``checkpoint_dir`` (the newest checkpoint is read; its optimizer state is left out), one
    ``step_...`` folder of it, or a ``survae-jax`` run folder. The restored model is the saved one
    or an error: every array's key path, shape and dtype must match the template's.

    Example::

        sj.train(build_model(), data, checkpoint_dir="ckpt")
        model = sj.load_model("ckpt", build_model())

    Raises:
      CheckpointError: no checkpoint at ``path``, or an unreadable one.
      CheckpointMismatchError: (a ``CheckpointError``) the checkpoint was written by a different
        model; the message names the first array that differs, stored and expected.

    Source: this library (orbax ``StandardCheckpointer``).
    """
    from flax import nnx

    stored = _Stored(resolve_model_path(path))
    params, rest = stored.into(_model_parts(template), prefix_ok=True)
    nnx.update(template, params, rest)
    return template
