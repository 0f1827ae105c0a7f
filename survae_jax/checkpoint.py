"""Orbax checkpoints of a training state: save, find the latest, restore into a template.

A checkpoint is one folder ``<dir>/step_<8 digits>`` written by orbax's
``StandardCheckpointer`` (atomically: orbax writes to a temporary name and renames it when the
write has committed). It holds the flattened leaves of a pytree (the model's ``nnx.State``, the
optax state, ...) plus the step and the training history. Restoring needs a *template*, a pytree
with the same structure, shapes and dtypes (the freshly built model's state), so a checkpoint
written by a different model is refused with a message instead of silently mis-assigned.

Typed PRNG keys (``nnx.Rngs`` state) are stored as their raw ``uint32`` key data and re-wrapped.

A damaged checkpoint is read once synchronously with tensorstore before orbax restores it
(:func:`_verify_readable`). Orbax's restore runs all the array reads at once on an asyncio
event loop of its own and closes that loop as soon as the first read fails, while the other
reads are still in flight; when those finish, tensorstore calls back into the closed loop and
each prints a ``RuntimeError: Event loop is closed`` traceback on stderr. The synchronous pass
waits for every read it starts, so a damaged checkpoint fails there, with one
:class:`CheckpointError`, before orbax is asked to read it.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts

_NAME = re.compile(r"^step_(\d{8})$")


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
    """The folder of the checkpoint of ``step`` inside ``directory``: ``<directory>/step_<8 digits>``.

    Raises:
      ValueError / TypeError: ``step`` cannot be converted with ``int()``.

    Source: this library.
    """
    return os.path.join(directory, f"step_{int(step):08d}")


def list_checkpoints(directory: str) -> list[int]:
    """Steps of the committed checkpoints in ``directory``, ascending (``[]`` if none).

    Only folders named ``step_<8 digits>`` count (orbax's temporary names do not match).

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


def save_checkpoint(
    directory: str, step: int, tree: Any, *, history: np.ndarray | None = None, keep: int = 2
) -> str:
    """Write ``tree`` (any pytree of arrays) as the checkpoint of ``step``; keep the last ``keep``.

    Returns the checkpoint's folder. Blocks until the write has committed.

    Raises:
      CheckpointError: the folder cannot be written.

    Source: this library (orbax ``StandardCheckpointer``; typed PRNG keys stored as ``uint32``
    key data).
    """
    leaves = jax.tree.leaves(tree)
    # Orbax cannot store empty arrays: they are left out and taken from the template on restore.
    payload = {
        "leaves": {
            f"{i:05d}": np.asarray(jax.random.key_data(x) if _is_key(x) else x)
            for i, x in enumerate(leaves) if np.size(x) > 0 or _is_key(x)
        },
        "num_leaves": np.asarray(len(leaves), np.int64),
        "step": np.asarray(step, np.int64),
        "history": np.full((1, 2), np.nan) if history is None or len(history) == 0
        else np.asarray(history, np.float64),
    }
    path = checkpoint_path(directory, step)
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.exists(path):
            shutil.rmtree(path)
        ckpt = ocp.StandardCheckpointer()
        try:
            ckpt.save(os.path.abspath(path), payload)
            ckpt.wait_until_finished()
        finally:
            ckpt.close()
    except Exception as e:  # orbax raises many kinds; one message that says where
        raise CheckpointError(f"cannot write checkpoint {path}: {type(e).__name__}: {e}") from e
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(checkpoint_path(directory, old), ignore_errors=True)
    return path


def restore_checkpoint(path: str, template: Any) -> tuple[Any, int, np.ndarray]:
    """Read the checkpoint folder ``path`` into the structure of ``template``.

    Returns:
      ``(tree, step, history)``: the restored pytree (same structure as ``template``), the step
      it was saved at and the history ``(K, 2)`` of ``(step, nats)`` rows.

    Raises:
      CheckpointError: the folder is missing, unreadable or malformed.
      CheckpointMismatchError: (a ``CheckpointError``) its leaves do not match the template's
        count, shapes or dtypes: it was written by a different model.

    Source: this library (orbax ``StandardCheckpointer``, with a synchronous tensorstore read
    first so a damaged checkpoint fails with one error).
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} not found.")
    _verify_readable(path)
    try:
        ckpt = ocp.StandardCheckpointer()
        try:
            payload = ckpt.restore(os.path.abspath(path))
        finally:
            ckpt.close()
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {_short(e)}") from e
    leaves, treedef = jax.tree.flatten(template)
    try:
        count = int(payload.get("num_leaves", len(payload["leaves"])))
        stored = [payload["leaves"].get(f"{i:05d}") for i in range(count)]
        step = int(payload["step"])
        history = np.asarray(payload["history"], np.float64).reshape(-1, 2)
        history = history[np.all(np.isfinite(history), axis=1)]
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is malformed: {type(e).__name__}: {e}") from e
    if count != len(leaves):
        raise CheckpointMismatchError(
            f"checkpoint {path} holds {count} arrays but the model has {len(leaves)}: "
            "it was written by a different model."
        )
    out = []
    for i, (s, t) in enumerate(zip(stored, leaves)):
        if s is None and np.size(t) == 0:  # an empty array, not stored
            s = np.asarray(t)
        elif s is None:
            raise CheckpointError(f"checkpoint {path}: array {i} is missing.")
        if _is_key(t):
            s = jax.random.wrap_key_data(s, impl=jax.random.key_impl(t))
        elif tuple(np.shape(s)) != tuple(np.shape(t)) or np.asarray(s).dtype != np.dtype(t.dtype):
            raise CheckpointMismatchError(
                f"checkpoint {path}: array {i} has shape {np.shape(s)} {np.asarray(s).dtype}, "
                f"the model expects {np.shape(t)} {t.dtype}: it was written by a different model."
            )
        out.append(s)
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in out]), step, history
