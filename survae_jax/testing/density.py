"""Flow-level check: an exact flow's density integrates to the value the maths gives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.testing.case import PropertyError


def _bounds(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(lo, np.float64))
    hi = np.atleast_1d(np.asarray(hi, np.float64))
    if lo.shape != hi.shape or lo.ndim != 1 or lo.size not in (1, 2):
        raise ValueError(f"integrate_density: lo and hi must be scalars or length-1/2 sequences, got {lo}, {hi}.")
    if np.any(hi <= lo):
        raise ValueError(f"integrate_density: need hi > lo on every axis, got lo={lo}, hi={hi}.")
    return lo, hi


def grid(lo, hi, num: int) -> tuple[np.ndarray, float]:
    """Midpoints of a regular grid on the box ``[lo, hi]`` (1-D or 2-D) and the cell volume.

    Returns ``(points, cell)``: ``points`` of shape ``(num**D, D)`` (float64, the last axis
    varying fastest), ``cell = prod((hi - lo) / num)``.

    Raises:
      ValueError: ``lo``/``hi`` not scalars or length-1/2 sequences of the same length, or
        ``hi <= lo`` on some axis.

    Source: the midpoint rule (this library's quadrature check, docs/design.md 'How a layer is
    checked').
    """
    lo, hi = _bounds(lo, hi)
    h = (hi - lo) / num
    axes = [lo[d] + (np.arange(num) + 0.5) * h[d] for d in range(lo.size)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1), float(np.prod(h))


def integrate_density(flow, lo, hi, *, num: int = 400, chunk_size: int = 16384, dtype=jnp.float32) -> float:
    """Integral of ``exp(flow.log_prob(x))`` over the box ``[lo, hi]`` by the midpoint rule.

    Args:
      flow: an exact distribution over ``(B, D)`` with ``D`` 1 or 2 (a ``Flow``, a base...).
      lo, hi: the box's corners: scalars (1-D) or length-1/2 sequences.
      num: grid points per axis (``num**D`` evaluations; error O(h^2) for a smooth density).
      chunk_size: points per ``log_prob`` call (one jitted program, ``lax.map`` over chunks).
      dtype: dtype of the grid points fed to ``log_prob``.

    Returns:
      The integral as a Python float (the sum is accumulated in float64); points outside the
      support (``log_prob = -inf``) contribute 0.

    Raises:
      ValueError: bad bounds, or a flow whose ``log_prob`` is a bound (``exact`` False), or a
        NaN log-density on the grid.

    Source: the midpoint rule; the exact-likelihood check of docs/design.md 'How a layer is checked'
    (this library).
    """
    if not bool(getattr(flow, "exact", True)):
        raise ValueError(
            f"integrate_density: {type(flow).__name__}.log_prob is a stochastic bound (exact=False); "
            "quadrature needs an exact density."
        )
    points, cell = grid(lo, hi, num)
    n, d = points.shape
    chunk = min(chunk_size, n)
    pad = (-n) % chunk
    padded = np.concatenate([points, np.repeat(points[:1], pad, axis=0)]) if pad else points
    batches = jnp.asarray(padded.reshape(-1, chunk, d), dtype)

    @jax.jit
    def log_density(flow, batches):
        return jax.lax.map(lambda xb: flow.log_prob(xb), batches)

    log_p = np.asarray(log_density(flow, batches), np.float64).reshape(-1)[:n]
    if np.isnan(log_p).any():
        bad = points[np.isnan(log_p)][:3]
        raise ValueError(f"integrate_density: log_prob is NaN at {bad.tolist()} ...")
    return float(np.sum(np.exp(log_p)) * cell)


def check_density_integrates(
    flow,
    lo,
    hi,
    *,
    num: int = 400,
    expected: float = 1.0,
    atol: float = 1e-3,
    chunk_size: int = 16384,
    dtype=jnp.float32,
) -> float:
    """Check that an exact 1-D or 2-D flow's density integrates to ``expected`` on ``[lo, hi]``.

    ``expected`` is 1 for a flow whose mass lies inside the box, or the base's mass on the
    surjection's image when that is what the maths gives (say why in the test). The grid must
    cover the mass: a standard normal base needs about ``[-6, 6]`` per axis for 1e-3.

    Args: as :func:`integrate_density`, plus ``expected`` and the absolute tolerance ``atol``.

    Returns:
      The integral (float).

    Raises:
      PropertyError: ``|integral - expected| > atol``; the message names the flow and
        the property ``'density_integrates'``.
      ValueError: see :func:`integrate_density`.

    Source: the quadrature check of the project's docs/design.md; change of variables, Appendix A.
    """
    value = integrate_density(flow, lo, hi, num=num, chunk_size=chunk_size, dtype=dtype)
    if not abs(value - expected) <= atol:
        raise PropertyError(
            type(flow).__name__,
            {
                "density_integrates": f"integral over [{lo}, {hi}] with {num} points per axis is "
                f"{value:.6f}, expected {expected} +- {atol}."
            },
        )
    return value
