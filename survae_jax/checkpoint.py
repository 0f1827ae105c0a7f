"""Orbax checkpoints of a training state: save, find the latest, restore into a template.

A checkpoint is one folder ``<dir>/step_<8 digits>`` written by orbax's
``StandardCheckpointer`` (atomically: orbax writes to a temporary name and renames it when the
write has committed). It holds the flattened leaves of a pytree (the model's ``nnx.State``, the
optax state, ...) plus the step and the training history. Restoring needs a *template*, a pytree
with the same structure, shapes and dtypes (the freshly built model's state), so a checkpoint
written by a different model is refused with a message instead of silently mis-assigned.

Typed PRNG keys (``nnx.Rngs`` state) are stored as their raw ``uint32`` key data and re-wrapped.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

_NAME = re.compile(r"^step_(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model it is restored into."""


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def checkpoint_path(directory: str, step: int) -> str:
    """The folder of the checkpoint of ``step`` inside ``directory``."""
    return os.path.join(directory, f"step_{int(step):08d}")


def list_checkpoints(directory: str) -> list[int]:
    """Steps of the committed checkpoints in ``directory``, ascending (``[]`` if none)."""
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
        ckpt.save(os.path.abspath(path), payload)
        ckpt.wait_until_finished()
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
      CheckpointError: the folder is missing or unreadable, or its leaves do not match the
        template's count, shapes or dtypes.
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} not found.")
    try:
        ckpt = ocp.StandardCheckpointer()
        payload = ckpt.restore(os.path.abspath(path))
        ckpt.close()
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {str(e)[:300]}") from e
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
        raise CheckpointError(
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
            raise CheckpointError(
                f"checkpoint {path}: array {i} has shape {np.shape(s)} {np.asarray(s).dtype}, "
                f"the model expects {np.shape(t)} {t.dtype}: it was written by a different model."
            )
        out.append(s)
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in out]), step, history
