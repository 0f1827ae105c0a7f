"""What the bridges share: a flow's event shape, its inexact parts, batches of any shape, one context."""

from __future__ import annotations

import importlib
import math

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import Distribution

Array = jax.Array


def require(module: str, who: str, extra: str):
    """Import ``module`` or raise ``ImportError`` saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{who} needs {module}, which is not installed: pip install 'survae-jax[{extra}]' "
                          f"(or pip install {module}).") from e


def check_flow(flow, who: str) -> None:
    if not isinstance(flow, Distribution):
        raise TypeError(f"{who}: expected a survae_jax Flow (or another survae_jax Distribution), "
                        f"got {type(flow).__name__}.")


def inexact_parts(flow) -> list[str]:
    """The names of what makes ``flow.log_prob`` a bound: inexact layers (``transforms[i] (Name)``)
    and an inexact base; empty for an exact flow."""
    parts = [f"transforms[{i}] ({t.name})" for i, t in enumerate(getattr(flow, "transforms", ())) if not t.exact]
    base = getattr(flow, "base", None)
    if base is not None and not getattr(base, "exact", True):
        parts.append(f"base ({type(base).__name__})")
    if not parts and not getattr(flow, "exact", True):
        parts.append(type(flow).__name__)
    return parts


def check_context(flow, context, who: str):
    """``context`` as an array (the context of one example, no batch axis) or ``None``; a
    conditional flow without one is refused."""
    if context is None:
        if getattr(flow, "conditional", False):
            raise ValueError(
                f"{who}: {type(flow).__name__} is conditional; pass context= (the context of one example, "
                "without a batch axis): the result is then the distribution p(x | context).")
        return None
    return jnp.asarray(context)


def rows(context, n: int):
    """``context`` repeated for ``n`` rows, ``(n, *context.shape)``, or ``None``."""
    return None if context is None else jnp.broadcast_to(context, (n, *context.shape))


def event_spec(flow, context, who: str) -> tuple[tuple[int, ...], jnp.dtype]:
    """The shape and dtype of one sample of ``flow`` (traced with ``jax.eval_shape``, nothing runs)."""

    def one(key):
        c = rows(context, 1)
        return flow.sample(key, 1 if c is None else None, context=c)

    try:
        spec = jax.eval_shape(one, jax.random.key(0))
    except Exception as e:
        raise ValueError(
            f"{who}: could not trace {type(flow).__name__}.sample to find its event shape "
            f"(a layer that needs context= given none?): {type(e).__name__}: {e}") from e
    return tuple(spec.shape[1:]), spec.dtype


def flatten(value, event_shape: tuple[int, ...], who: str) -> tuple[Array, tuple[int, ...]]:
    """``value`` of shape ``S + event_shape`` as a batch ``(prod(S), *event_shape)``, and ``S``."""
    value = jnp.asarray(value)
    k = len(event_shape)
    if value.ndim < k or tuple(value.shape[value.ndim - k:]) != tuple(event_shape):
        raise ValueError(f"{who}: expected a value of shape sample_shape + {tuple(event_shape)}, "
                         f"got {tuple(value.shape)}.")
    lead = tuple(value.shape[:value.ndim - k])
    return value.reshape((math.prod(lead), *event_shape)), lead
