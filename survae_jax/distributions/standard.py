"""Base distributions: standard normal, standard uniform and a learned diagonal normal."""

from __future__ import annotations

from typing import Sequence

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions.base import Array, Distribution, sum_except_batch


def _float(dtype):
    """``dtype``, or JAX's default float type (float64 under ``jax_enable_x64``) for ``None``."""
    return jnp.result_type(float) if dtype is None else dtype


class _Fixed(Distribution):
    """A parameter-free product distribution over ``(B, *event_shape)``, built from distrax.

    Subclasses name the distrax family (``_family(zero, one)``) and the matching
    ``jax.random`` sampler (``_draw``).
    """

    _family = None
    _draw = None

    def __init__(self, event_shape: Sequence[int], dtype=None):
        self.event_shape = tuple(int(s) for s in event_shape)
        self.dtype = dtype

    def log_prob(self, x, *, context=None, key=None):
        self._check_event(x, self.event_shape)
        zero = jnp.zeros((), x.dtype)
        return sum_except_batch(type(self)._family(zero, zero + 1).log_prob(x))

    def sample(self, key, num_samples=None, *, context=None):
        n = self._num_samples(num_samples, context)
        return type(self)._draw(key, (n, *self.event_shape), _float(self.dtype))


class StandardNormal(_Fixed):
    """Standard normal ``N(0, I)`` over ``(B, *event_shape)``; log-density in nats.

    ``log p(x) = -0.5 * sum(x**2) - 0.5 * D * log(2 pi)`` with ``D = prod(event_shape)``.

    Args:
      event_shape: e.g. ``(2,)`` for 2-D points, ``(H, W, C)`` for images.
      dtype: dtype of samples; ``None`` (default) follows JAX's default float: float32, or
        float64 under ``jax_enable_x64``, decided when sampling.

    Raises:
      ValueError: ``log_prob`` of a tensor whose shape is not ``(B, *event_shape)``.

    Source: the base distribution of Appendix H.4, Listings 1 and 2 (``Normal((2,))``); the
    log-density is distrax ``Normal``'s.
    """

    _family = distrax.Normal
    _draw = jax.random.normal


class StandardUniform(_Fixed):
    """Standard uniform ``U(0, 1)`` on the unit cube ``[0, 1]^D``; log-density in nats.

    ``log p(x) = 0`` inside the cube and ``-inf`` outside it: a point outside the support has
    zero density, and ``-inf`` is that fact, not an error (the flow's log-likelihood of such a
    point is ``-inf``).

    Args:
      event_shape: the event shape, e.g. ``(2,)``.
      dtype: dtype of samples; ``None`` follows JAX's default float (float64 under x64).

    Raises:
      ValueError: ``log_prob`` of a tensor whose shape is not ``(B, *event_shape)``.

    Source: the uniform base of the anti-symmetric AbsFlow, Appendix I.1; distrax ``Uniform``.
    """

    _family = distrax.Uniform
    _draw = jax.random.uniform


class DiagonalNormal(Distribution):
    """Normal with learned mean and per-element log-scale, ``N(mu, diag(exp(2 log_sigma)))``.

    Parameters ``loc`` and ``log_scale`` have shape ``event_shape`` and start at 0 (a standard
    normal). Log-density in nats, summed over the event.

    Args:
      event_shape: the event shape.
      dtype: parameter dtype.

    Raises:
      ValueError: ``log_prob`` of a tensor whose shape is not ``(B, *event_shape)``.

    Source: a learned Gaussian base as in RealNVP (Dinh et al., 2017) and Glow (Kingma &
    Dhariwal, 2018); the log-density is distrax ``Normal``'s.
    """

    def __init__(self, event_shape: Sequence[int], dtype=jnp.float32):
        self.event_shape = tuple(int(s) for s in event_shape)
        self.loc = nnx.Param(jnp.zeros(self.event_shape, dtype))
        self.log_scale = nnx.Param(jnp.zeros(self.event_shape, dtype))

    def _dist(self, dtype):
        return distrax.Normal(self.loc[...].astype(dtype), jnp.exp(self.log_scale[...]).astype(dtype))

    def log_prob(self, x, *, context=None, key=None):
        self._check_event(x, self.event_shape)
        return sum_except_batch(self._dist(x.dtype).log_prob(x))

    def sample(self, key, num_samples=None, *, context=None):
        n = self._num_samples(num_samples, context)
        eps = jax.random.normal(key, (n, *self.event_shape), self.loc[...].dtype)
        return self.loc[...] + jnp.exp(self.log_scale[...]) * eps
