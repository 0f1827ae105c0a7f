"""Likelihood metrics: nats, bits per dimension, per-point log-likelihood.

All take per-example log-likelihoods ``log p(x)`` ``(N,)`` in nats (natural log), as returned by
``Flow.log_prob`` or :func:`survae_jax.training.evaluate`, and return Python floats.
"""

from __future__ import annotations

import math

import numpy as np


def _mean(log_likelihood) -> float:
    ll = np.asarray(log_likelihood, np.float64)
    if ll.ndim != 1 or ll.size == 0:
        raise ValueError(f"metrics: expected a non-empty (N,) array of log-likelihoods, got shape {ll.shape}.")
    return float(np.mean(ll))


def nats(log_likelihood) -> float:
    """Negative mean log-likelihood in nats per example, ``-mean(log p(x))``; lower is better.

    The unit of the paper's 2-D results (Table 1 / Appendix I.1). ``inf`` if any point has zero
    density.

    Args:
      log_likelihood: ``(N,)`` nats.

    Raises:
      ValueError: ``log_likelihood`` is not a non-empty ``(N,)`` array.

    Source: Nielsen et al. 2020, Appendix I.1 (nats on the 2-D data).
    """
    return -_mean(log_likelihood)


def bits_per_dim(log_likelihood, num_dims: int, *, log_q=None, num_levels: int | None = None) -> float:
    """Bits per dimension of discrete data: ``-mean(log P(x)) / (D log 2)``; lower is better.

    ``log P(x)`` is the log-probability of the integer data ``x`` in nats. A dequantized model
    gives a lower bound of it (Theis et al., 2016; Ho et al., 2019):

        ``log P(x) >= log p(y) - log q(u|x) - D log L``,   ``y = (x + u) / L`` in ``[0, 1)^D``,

    with ``u ~ q(u|x)`` the dequantization noise in ``[0, 1)^D`` and ``L`` the number of levels
    (256 for 8-bit pixels). So

        ``bits/dim = (-mean(log p(y) - log q(u|x)) + D log L) / (D log 2)``;

    for 8-bit data the last term is the offset ``log2(256) = 8`` bits/dim. Pass what the model
    gives:

    - ``log_likelihood`` already of the integer data (a ``Flow`` whose first layer is a
      ``UniformDequantization``/``VariationalDequantization`` followed by the ``1/L`` scaling,
      as the image experiments): nothing else; ``-log q`` and ``-D log L`` are inside it (as
      likelihood contributions V of those layers);
    - the density ``log p(y)`` of the rescaled continuous data: ``num_levels=L`` adds the
      offset ``D log L``, and ``log_q`` the dequantization term (omit it for uniform noise,
      ``log q = 0``).

    Closed forms: a uniform model over ``L`` levels (``log p(y) = 0`` on the unit cube, uniform
    noise) is ``log2 L`` bits/dim: 8 for 256 levels, ``log2 17 = 4.087`` for the 17 levels of the
    8x8 digits.

    Args:
      log_likelihood: ``(N,)`` nats: ``log P(x)`` (or its ELBO/IWBO), or ``log p(y)`` with ``num_levels``.
      num_dims: ``D``, the number of dimensions of one example (``H * W * C``).
      log_q: optional ``(N,)`` nats, ``log q(u|x)`` of the noise that made ``y``; subtracted.
      num_levels: optional ``L``: ``log_likelihood`` is a density on ``[0, 1)^D`` of ``x / L``.

    Raises:
      ValueError: ``num_dims < 1``, ``num_levels < 2``, ``log_likelihood`` not a non-empty
        ``(N,)`` array, or ``log_q`` of another shape.

    Source: the bits/dim convention of image density models (Dinh et al. 2017, Real NVP;
    Theis et al. 2016), with the variational dequantization bound of Ho et al. 2019 (Flow++),
    used by the image experiments of Nielsen et al. 2020 (Appendix I.3).
    """
    d = int(num_dims)
    if d < 1:
        raise ValueError(f"bits_per_dim: num_dims must be >= 1, got {num_dims}.")
    ll = np.asarray(log_likelihood, np.float64)
    if log_q is not None:
        lq = np.asarray(log_q, np.float64)
        if lq.shape != ll.shape:
            raise ValueError(f"bits_per_dim: log_q must have the shape of log_likelihood {ll.shape}, got {lq.shape}.")
        ll = ll - lq
    offset = 0.0
    if num_levels is not None:
        if int(num_levels) < 2:
            raise ValueError(f"bits_per_dim: num_levels must be >= 2, got {num_levels}.")
        offset = d * math.log(int(num_levels))
    return (nats(ll) + offset) / (d * math.log(2.0))


def per_point_log_likelihood(log_likelihood, num_points: int) -> float:
    """Per-point log-likelihood (PPLL) of point clouds, ``mean(log p(x)) / N_points``, nats.

    Higher is better (the sign of the paper's Appendix I.2: SortFlow -5.53, PermuteFlow
    IWBO -5.30 on SpatialMNIST with 50 points per cloud).

    Args:
      log_likelihood: ``(N,)`` nats per cloud (clouds of shape ``(N, 50, 2)``).
      num_points: points per cloud (50 for SpatialMNIST).

    Raises:
      ValueError: ``num_points < 1``, or ``log_likelihood`` not a non-empty ``(N,)`` array.

    Source: Nielsen et al. 2020, Appendix I.2 (PPLL on SpatialMNIST, Edwards & Storkey 2017).
    """
    if int(num_points) < 1:
        raise ValueError(f"per_point_log_likelihood: num_points must be >= 1, got {num_points}.")
    return _mean(log_likelihood) / int(num_points)
