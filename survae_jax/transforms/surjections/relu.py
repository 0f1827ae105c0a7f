"""ReLU surjections in both directions: ``ReLUSurjection`` (Table 7), ``GenerativeReLUSurjection`` (Table 6).

The fibre of ``0`` under ``max(., 0)`` is the negative half-line, so the conditional that fills
it is a distribution on ``(-inf, 0)``. The parameter-free default is a **half-normal**:
``x = -|e|``, ``e ~ N(0, 1)``, density ``2 N(x; 0, 1)`` for ``x < 0``. It is the standard normal
restricted to the fibre and renormalised (a plain ``N(0, 1)`` would put half its mass outside
the fibre, and Appendix B needs all of it inside), the same choice as the "max minus half-normal
noise" of max-pooling (Appendix I.3). A learned alternative keeps the half-normal form with a
per-element scale ``sigma = exp(scale_net(context))``: only the elements on the fibre of ``0``
have a density, so the conditional must be evaluated element by element under a mask, which an
arbitrary summed-over-the-event distribution cannot do.

Direction: ``forward`` is data -> latent (X -> Z).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import GenerativeSurjection, InferenceSurjection, sum_except_batch

Array = jax.Array

_LOG_2_MINUS_HALF_LOG_2PI = math.log(2.0) - 0.5 * math.log(2.0 * math.pi)


def _half_normal_log_prob(m: Array, log_scale: Array) -> Array:
    """Per-element ``log HalfNormal(m; sigma)`` for ``m >= 0``, ``sigma = exp(log_scale)``, nats.

    ``log 2 - log sigma - 0.5 log(2 pi) - 0.5 (m / sigma)^2``.
    """
    return (
        jnp.asarray(_LOG_2_MINUS_HALF_LOG_2PI, m.dtype)
        - log_scale
        - 0.5 * jnp.square(m * jnp.exp(-log_scale))
    )


def _masked_sum(values: Array, mask: Array) -> Array:
    """``sum(values)`` over the event axes where ``mask``; ``(B, ...)`` -> ``(B,)``."""
    v = jnp.where(mask, values, jnp.zeros((), values.dtype))
    return sum_except_batch(v)


class _ReLUBase:
    """Shared parts: the half-normal's log-scale, default 0, or ``scale_net(context)``."""

    def _log_scale(self, context: Array) -> Array:
        if self.scale_net is None:
            return jnp.zeros((), context.dtype)
        try:
            out = self.scale_net(context)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{self.name}: scale_net refused a tensor of shape {tuple(context.shape)}: {e}"
            ) from e
        if out.shape != context.shape:
            raise ValueError(
                f"{self.name}: scale_net must return log-scales of shape {tuple(context.shape)}, "
                f"got {tuple(out.shape)}."
            )
        return out


class ReLUSurjection(_ReLUBase, InferenceSurjection):
    """Inference ReLU surjection (Table 7, "ReLU"): ``z = max(x, 0)`` elementwise.

    Forward (X -> Z, deterministic): ``z = max(x, 0)``.

    Inverse (Z -> X, stochastic): where ``z = 0``, ``x ~ p(x)`` on ``(-inf, 0)``; elsewhere
    ``x = z``. Default ``p(x) = 2 N(x; 0, 1)`` for ``x < 0`` (the half-normal ``x = -|e|``).

    Likelihood contribution (Table 7): ``V = sum_i I(z_i = 0) log p(x_i)`` in nats, shape
    ``(B,)``, exact (Appendix B). At ``x_i = 0`` exactly, ``z_i = 0`` and the term is
    ``log p(0) = log 2 - 0.5 log(2 pi)`` (the density's limit): finite, never NaN.

    Note that ``z`` then has a point mass at ``0``: the base downstream must give
    ``P(z_i = 0)`` (a mixed distribution) for ``log p(z) + V`` to be a likelihood.

    Args:
      scale_net: optional learned conditional ``p(x|z)``: a callable ``z -> log sigma`` of
        shape ``(B, ...)`` like ``z``; ``None`` for the parameter-free ``sigma = 1``.

    Shapes: ``x`` and ``z`` ``(B, ...)``, ``V`` ``(B,)``.

    Raises:
      ValueError: a non-floating or rank-0/1 input, ``inverse`` without ``key``, or a
        ``scale_net`` output whose shape differs from ``z``'s.

    Values: ``inverse`` expects ``z >= 0`` (the image of ``max(x, 0)``); values are not checked
    under ``jit``, and a negative ``z`` is passed through unchanged.

    Source: Nielsen et al. (2020), Table 7.
    """

    def __init__(self, scale_net: Callable[[Array], Array] | None = None):
        self.scale_net = scale_net

    def forward(self, x, *, key=None, context=None):
        """``z = max(x, 0)``; ``V = sum I(z=0) log p(x)`` ``(B,)`` nats."""
        self._check_input(x, min_ndim=2)
        z = jnp.maximum(x, jnp.zeros((), x.dtype))
        on_fibre = z == 0
        neg = jnp.where(on_fibre, -x, jnp.zeros((), x.dtype))
        return z, _masked_sum(_half_normal_log_prob(neg, self._log_scale(z)), on_fibre)

    def inverse(self, z, *, key=None, context=None):
        """``x = z`` where ``z != 0``, ``x = -sigma |e|`` with ``e ~ N(0, 1)`` where ``z = 0``."""
        key = self._require_key(key, "inverse")
        self._check_input(z, min_ndim=2, what="latent")
        m = jnp.exp(self._log_scale(z)) * jnp.abs(jax.random.normal(key, z.shape, z.dtype))
        return jnp.where(z == 0, -m, z)


class GenerativeReLUSurjection(_ReLUBase, GenerativeSurjection):
    """Generative ReLU surjection (Table 6, "ReLU"): the data are ``x = max(z, 0)``.

    Forward (X -> Z, stochastic): where ``x = 0``, ``z ~ q(z|x)`` on ``(-inf, 0)``; elsewhere
    ``z = x``. Default ``q(z) = 2 N(z; 0, 1)`` for ``z < 0`` (``z = -|e|``, ``e ~ N(0, 1)``).

    Inverse (Z -> X, deterministic): ``x = max(z, 0)``.

    Likelihood contribution (Table 6): ``V = -sum_i I(x_i = 0) log q(z_i)`` in nats, shape
    ``(B,)``, a one-sample bound term (equality when ``q`` is the base's conditional on the
    negative half-line). Elements with ``x_i > 0`` contribute 0.

    The data ``x`` have a point mass at 0: ``log p(x)`` bounds ``log`` of the probability
    ``P(x_i = 0)`` times the density of the positive entries.

    Args:
      scale_net: optional learned ``q(z|x)``: a callable ``x -> log sigma`` of shape like ``x``;
        ``None`` for the parameter-free ``sigma = 1``.

    Shapes: ``x`` and ``z`` ``(B, ...)``, ``V`` ``(B,)``.

    Raises:
      ValueError: a non-floating or rank-0/1 input, ``forward`` without ``key``, or a
        ``scale_net`` output of the wrong shape.

    Values: ``forward`` expects ``x >= 0``; values are not checked under ``jit``.

    Source: Nielsen et al. (2020), Table 6.
    """

    def __init__(self, scale_net: Callable[[Array], Array] | None = None):
        self.scale_net = scale_net

    def forward(self, x, *, key=None, context=None):
        """``z = x`` where ``x > 0``, ``z = -sigma |e|`` where ``x = 0``; ``V = -sum I(x=0) log q(z)``."""
        key = self._require_key(key, "forward")
        self._check_input(x, min_ndim=2)
        log_scale = self._log_scale(x)
        m = jnp.exp(log_scale) * jnp.abs(jax.random.normal(key, x.shape, x.dtype))
        at_zero = x == 0
        z = jnp.where(at_zero, -m, x)
        return z, -_masked_sum(_half_normal_log_prob(m, log_scale), at_zero)

    def inverse(self, z, *, key=None, context=None):
        """``x = max(z, 0)``."""
        self._check_input(z, min_ndim=2, what="latent")
        return jnp.maximum(z, jnp.zeros((), z.dtype))
