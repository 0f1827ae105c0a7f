"""Coupling (RealNVP, NICE): split, condition, transform one part with an elementwise family.

``x = concat(x_id, x2)`` along ``axis`` (``x_id``: the first ``num_condition`` entries, default
half rounded up as ``torch.chunk``); ``theta = conditioner(x_id)`` (``conditioner(x_id, context)``
when ``context`` is given), read by :func:`~survae_jax.functional.elementwise.elementwise_params`;

- forward: ``z = concat(x_id, g(x2; theta))``, ``V = sum log|dg/dx2|`` (``g = family.forward``);
- inverse: ``x = concat(z_id, g^{-1}(z2; conditioner(z_id)))``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import sum_except_batch
from survae_jax.functional.checks import check_tensor, event_axis
from survae_jax.functional.elementwise import elementwise_params

Array = jax.Array


def _split(x: Array, axis: int, num_condition: int | None, name: str) -> tuple[Array, Array]:
    check_tensor(x, name, min_ndim=2)
    size = x.shape[event_axis(x, axis, name)]
    n = size - size // 2 if num_condition is None else int(num_condition)
    if not 1 <= n < size:
        raise ValueError(
            f"{name}: expected axis {axis} of length > num_condition={n} (>= 2 to split), "
            f"got input of shape {tuple(x.shape)}."
        )
    return jnp.split(x, [n], axis=axis)


def _theta(conditioner, family, x_id: Array, x2: Array, axis: int, context, name: str) -> Array:
    try:
        out = conditioner(x_id) if context is None else conditioner(x_id, context)
    except Exception as e:
        e.add_note(
            f"{name}: its net rejected the identity part of shape {tuple(x_id.shape)} "
            f"(transformed part {tuple(x2.shape)}, split along axis {axis})."
        )
        raise
    what = f"the net maps the identity part {tuple(x_id.shape)} to"
    return elementwise_params(out, x2.shape, family.num_params, name, what=what).astype(x2.dtype)


def coupling_forward(x: Array, conditioner, family, *, axis: int = -1, num_condition: int | None = None,
                     key=None, context=None, name: str = "Coupling") -> tuple[Array, Array]:
    """``(z, V)`` of the coupling with ``conditioner`` and the elementwise ``family``."""
    x_id, x2 = _split(x, axis, num_condition, name)
    z2, log_det = family.forward(x2, _theta(conditioner, family, x_id, x2, axis, context, name))
    return jnp.concatenate([x_id, z2], axis=axis), sum_except_batch(log_det)


def coupling_inverse(z: Array, conditioner, family, *, axis: int = -1, num_condition: int | None = None,
                     key=None, context=None, name: str = "Coupling") -> Array:
    """``x`` with ``x_id = z_id`` and ``x2 = family.inverse(z2, theta(z_id))``."""
    z_id, z2 = _split(z, axis, num_condition, name)
    x2 = family.inverse(z2, _theta(conditioner, family, z_id, z2, axis, context, name))
    return jnp.concatenate([z_id, x2], axis=axis)
