"""Flow-level check: an exact flow's density integrates to the value the maths gives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.testing.case import PropertyError


def _bounds(lo, hi, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as float64 vectors; scalars are repeated to ``dim`` axes (1 when ``dim`` is None)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if dim is not None and dim not in (1, 2):
        raise ValueError(f"integrate_density: the density must be 1-D or 2-D, got dim={dim}.")
    lo = np.full(dim or 1, lo) if lo.ndim == 0 else lo
    hi = np.full(dim or 1, hi) if hi.ndim == 0 else hi
    if lo.shape != hi.shape or lo.ndim != 1 or lo.size not in (1, 2):
        raise ValueError(f"integrate_density: lo and hi must be scalars or length-1/2 sequences, got {lo}, {hi}.")
    if np.any(hi <= lo):
        raise ValueError(f"integrate_density: need hi > lo on every axis, got lo={lo}, hi={hi}.")
    return lo, hi


def grid(lo, hi, num: int, dim: int | None = None) -> tuple[np.ndarray, float]:
    """Midpoints of a regular grid on the box ``[lo, hi]`` (1-D or 2-D) and the cell volume.

    Scalar bounds hold for every axis: ``dim`` axes (1 when ``dim`` is None).

    Returns ``(points, cell)``: ``points`` of shape ``(num**D, D)`` (float64, the last axis
    varying fastest), ``cell = prod((hi - lo) / num)``.

    Raises:
      ValueError: ``lo``/``hi`` not scalars or length-1/2 sequences of the same length, or
        ``hi <= lo`` on some axis.

    Source: the midpoint rule (this library's quadrature check, docs/design.md 'How a layer is
    checked').
    """
    lo, hi = _bounds(lo, hi, dim)
    h = (hi - lo) / num
    axes = [lo[d] + (np.arange(num) + 0.5) * h[d] for d in range(lo.size)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1), float(np.prod(h))


def _data_dim(flow, dtype) -> int:
    """The data dimension (1 or 2) of ``flow``: the first of ``(1, 1)`` and ``(1, 2)`` its
    ``log_prob`` accepts (a wrong shape raises ``ValueError`` by the library's contract)."""
    for d in (1, 2):
        try:
            flow.log_prob(jnp.full((1, d), 0.5, dtype))
            return d
        except ValueError:
            pass
    raise ValueError(
        f"integrate_density: {type(flow).__name__}.log_prob accepts neither (1, 1) nor (1, 2) points: "
        "pass one bound per axis, or dim=."
    )


def integrate_density(flow, lo, hi, *, num: int = 400, chunk_size: int = 16384, dtype=jnp.float32,
                      dim: int | None = None) -> float:
    """Integral of ``exp(flow.log_prob(x))`` over the box ``[lo, hi]`` by the midpoint rule.

    Args:
      flow: an exact distribution over ``(B, D)`` with ``D`` 1 or 2 (a ``Flow``, a base...).
      lo, hi: the box's corners: length-1/2 sequences, or scalars that hold for every axis.
      num: grid points per axis (``num**D`` evaluations; error O(h^2) for a smooth density).
      chunk_size: points per ``log_prob`` call (one jitted program, ``lax.map`` over chunks).
      dtype: dtype of the grid points fed to ``log_prob``.
      dim: the number of axes for scalar bounds; ``None``: the first of 1 and 2 for which the
        flow's ``log_prob`` accepts points ``(1, dim)`` (a flow that takes any size gets 1:
        pass ``dim=2`` for its 2-D density).

    Returns:
      The integral as a Python float (the sum is accumulated in float64); points outside the
      support (``log_prob = -inf``) contribute 0.

    Raises:
      ValueError: bad bounds, or a flow whose ``log_prob`` is a bound (``exact`` False), or a
        NaN log-density on the grid, or scalar bounds for a flow that takes neither 1-D nor 2-D
        points.

    Source: the midpoint rule; the exact-likelihood check of docs/design.md 'How a layer is checked'
    (this library).
    """
    if not bool(getattr(flow, "exact", True)):
        raise ValueError(
            f"integrate_density: {type(flow).__name__}.log_prob is a stochastic bound (exact=False); "
            "quadrature needs an exact density."
        )
    if dim is None and np.ndim(lo) == 0 and np.ndim(hi) == 0:
        dim = _data_dim(flow, dtype)
    points, cell = grid(lo, hi, num, dim)
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
    dim: int | None = None,
) -> float:
    """Check that an exact 1-D or 2-D flow's density integrates to ``expected`` on ``[lo, hi]``.

    ``expected`` is 1 for a flow whose mass lies inside the box, or the base's mass on the
    surjection's image when that is what the maths gives (say why in the test). The grid must
    cover the mass: a standard normal base needs about ``[-6, 6]`` per axis for 1e-3
    (``lo=-6, hi=6``: scalar bounds hold for every axis).

    Args: as :func:`integrate_density`, plus ``expected`` and the absolute tolerance ``atol``.

    Returns:
      The integral (float).

    Raises:
      PropertyError: ``|integral - expected| > atol``; the message names the flow and
        the property ``'density_integrates'``.
      ValueError: see :func:`integrate_density`.

    Source: the quadrature check of the project's docs/design.md; change of variables, Appendix A.
    """
    value = integrate_density(flow, lo, hi, num=num, chunk_size=chunk_size, dtype=dtype, dim=dim)
    if not abs(value - expected) <= atol:
        raise PropertyError(
            type(flow).__name__,
            {
                "density_integrates": f"integral over [{lo}, {hi}] with {num} points per axis is "
                f"{value:.6f}, expected {expected} +- {atol}."
            },
        )
    return value
