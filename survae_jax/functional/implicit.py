"""The inverse of a scalar map found by a solver, differentiated by the implicit function theorem."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def implicit_inverse(f: Callable, log_df: Callable, solve: Callable) -> Callable:
    """``inverse(y, *params) = solve(y, *params)``, the ``x`` with ``f(x, *params) = y``, with the
    derivative of the exact inverse (implicit function theorem), never that of the solver's steps:

    ``dx = (dy - (df/dparams) dparams) / (df/dx)``, ``df/dx = exp(log_df(x, *params))`` at the
    solver's ``x``. ``f`` and ``log_df`` are entrywise in ``x`` (``log_df`` the log of a positive
    slope); the solver's own arithmetic (bisection, a clamped square root) is never differentiated,
    so neither a zero gradient of a comparison nor an infinite one of ``sqrt(0)`` can leak out. A
    ``jax.custom_jvp``: forward and reverse mode, ``jit`` and ``vmap`` work. The slope is floored at
    the smallest normal number so that a flat ``f`` gives a huge gradient, not a division by zero.
    """

    @jax.custom_jvp
    def inverse(y, *params):
        return solve(y, *params)

    @inverse.defjvp
    def _jvp(primals, tangents):
        y, *params = primals
        y_dot, *params_dot = tangents
        x = solve(y, *params)
        _, f_dot = jax.jvp(lambda *p: f(x, *p), tuple(params), tuple(params_dot))
        slope = jnp.exp(log_df(x, *params))
        slope = jnp.maximum(slope, jnp.finfo(slope.dtype).tiny)
        return x, (y_dot - f_dot) / slope

    return inverse
