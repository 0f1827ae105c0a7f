"""Private helpers: call a (possibly conditional) distribution the way a layer needs it.

The conditionals of the surjections (``p(x2|z)`` of ``Slice``, ``q(z2|x)`` of ``Augment``,
``q(u|x)`` of ``VariationalDequantization``, ...) may be conditional distributions (they get the
layer's input or output as ``context``) or unconditional ones (they draw ``num_samples = B``
samples and ignore the layer's tensors). These helpers hide that difference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def is_conditional(dist) -> bool:
    """Whether ``dist`` takes ``context`` (conditional distributions, conditional flows)."""
    return bool(getattr(dist, "conditional", False))


def _named(layer: str, role: str, shape, call):
    """Run ``call()``; re-raise a shape error of the distribution as ``ValueError`` naming ``layer``."""
    try:
        return call()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{layer}: its {role} refused a tensor of shape {tuple(shape)}: {e}") from e


def draw(dist, key: Array, num_samples: int, context: Array, *, layer: str = "layer", role: str = "encoder"):
    """``(sample, log_prob)`` from ``dist``: one draw per ``context`` row, or ``num_samples`` draws."""
    if is_conditional(dist):
        return _named(layer, role, context.shape, lambda: dist.sample_and_log_prob(key, context=context))
    return _named(layer, role, (num_samples,), lambda: dist.sample_and_log_prob(key, num_samples))


def sample(dist, key: Array, num_samples: int, context: Array, *, layer: str = "layer", role: str = "decoder"):
    """A sample of ``dist``: one per ``context`` row (conditional), else ``num_samples`` of them."""
    if is_conditional(dist):
        return _named(layer, role, context.shape, lambda: dist.sample(key, context=context))
    return _named(layer, role, (num_samples,), lambda: dist.sample(key, num_samples))


def log_prob(dist, x: Array, context: Array, key: Array | None, *, layer: str = "layer", role: str = "decoder"):
    """``log dist(x | context)`` ``(B,)`` in nats (``context`` ignored by an unconditional ``dist``)."""
    if is_conditional(dist):
        return _named(layer, role, x.shape, lambda: dist.log_prob(x, context=context, key=key))
    return _named(layer, role, x.shape, lambda: dist.log_prob(x, key=key))


def check_like(layer: str, what: str, got: Array, ref: Array, axis: int | None = None) -> None:
    """Raise ``ValueError`` unless ``got`` has ``ref``'s shape (except along ``axis`` if given)."""
    g, r = tuple(got.shape), tuple(ref.shape)
    if axis is None:
        ok = g == r
        expected = r
    else:
        ok = len(g) == len(r) and all(a == b for i, (a, b) in enumerate(zip(g, r)) if i != axis)
        expected = tuple("*" if i == axis else s for i, s in enumerate(r))
    if not ok:
        raise ValueError(f"{layer}: expected {what} of shape {expected}, got {g}.")


def in_unit_interval(layer: str, what: str, u: Array, hint: str = "") -> Array:
    """Rows of ``u`` ``(B, ...)`` whose every entry lies in ``[0, 1]``: a ``(B,)`` bool mask.

    When ``u`` is concrete (eager, not a tracer) a row outside ``[0, 1]`` (or holding NaN)
    raises ``ValueError`` naming ``layer``, the range found and ``hint``. Under ``jit``/``vmap``
    values cannot be checked; the caller uses the mask instead.
    """
    ok = jnp.all((u >= 0) & (u <= 1), axis=tuple(range(1, u.ndim)))  # NaN compares False
    if isinstance(u, jax.core.Tracer) or bool(np.all(np.asarray(ok))):
        return ok
    values = np.asarray(u, dtype=np.float64)
    finite = values[~np.isnan(values)]
    found = f"values in [{finite.min():.6g}, {finite.max():.6g}]" if finite.size else "no finite value"
    nan = " and NaN" if np.isnan(values).any() else ""
    bad = np.flatnonzero(~np.asarray(ok)).tolist()
    raise ValueError(
        f"{layer}: expected every {what} in [0, 1], got {found}{nan} "
        f"(rows {bad}).{' ' + hint if hint else ''}"
    )
