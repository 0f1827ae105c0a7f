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


def bits_per_dim(log_likelihood, num_dims: int) -> float:
    """Negative mean log-likelihood in bits per dimension, ``-mean(log p(x)) / (D log 2)``.

    Args:
      log_likelihood: ``(N,)`` nats.
      num_dims: ``D``, the number of dimensions of one example (e.g. ``H * W * C``).

    Lower is better. For 8-bit images the log-likelihood must be that of the discrete data
    (e.g. of the dequantized model on the ``[0, 256)`` scale), as in the image experiments.

    Raises:
      ValueError: ``num_dims < 1``, or ``log_likelihood`` not a non-empty ``(N,)`` array.

    Source: the bits/dim convention of image density models (e.g. Dinh et al. 2017, Real NVP),
    used by the image experiments of Nielsen et al. 2020.
    """
    if int(num_dims) < 1:
        raise ValueError(f"bits_per_dim: num_dims must be >= 1, got {num_dims}.")
    return nats(log_likelihood) / (int(num_dims) * math.log(2.0))


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
