"""Input checks of the pure pairs: a ``ValueError`` naming the layer, what was expected and got."""

from __future__ import annotations

import jax.numpy as jnp


def check_tensor(x, name: str, *, min_ndim: int | None = None, ndim: int | None = None, what: str = "input",
                 event_shape=None, floating: bool = True) -> None:
    """Refuse ``x`` unless it has rank ``ndim`` (or at least ``min_ndim``), the shape ``(B,
    *event_shape)`` (``None`` entries match any size) and, if ``floating``, a floating dtype."""
    shape = tuple(jnp.shape(x))
    if event_shape is not None:
        ok = len(shape) == len(event_shape) + 1 and all(e is None or e == s for e, s in zip(event_shape, shape[1:]))
        if not ok:
            expected = ", ".join(["B", *("*" if e is None else str(e) for e in event_shape)])
            raise ValueError(f"{name}: expected {what} of shape ({expected}), got {shape}.")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name}: expected {what} of rank {ndim} (batch first), got shape {shape}.")
    if min_ndim is not None and len(shape) < min_ndim:
        raise ValueError(f"{name}: expected {what} of rank >= {min_ndim} (batch first), got shape {shape}.")
    if floating and not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"{name}: expected a floating-point {what}, got dtype {jnp.result_type(x)}.")


def event_axis(x, axis: int, name: str, length: int | None = None) -> int:
    """``axis`` of ``x`` as a non-negative index; refused if it is the batch axis, out of range, or
    (with ``length``) of another length."""
    shape = tuple(x.shape)
    ok = -len(shape) <= axis < len(shape) and axis % len(shape) != 0
    if not ok or (length is not None and shape[axis] != length):
        size = "" if length is None else f" of length {length}"
        raise ValueError(f"{name}: expected axis {axis}{size} (not the batch axis), got input of shape {shape}.")
    return axis % len(shape)
