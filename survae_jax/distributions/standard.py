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
    """A parameter-free product distribution: the distrax ``_family`` and its ``jax.random`` ``_draw``."""

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
    """``N(0, I)`` over ``(B, *event_shape)``: ``log p(x) = -sum(x^2) / 2 - D log(2 pi) / 2``.

    Args:
      event_shape: e.g. ``(2,)`` or ``(H, W, C)``.
      dtype: of samples; ``None``: JAX's default float (float64 under x64), decided when sampling.

    Source: the base of Appendix H.4, Listings 1 and 2; distrax ``Normal``.
    """

    _family = distrax.Normal
    _draw = jax.random.normal


class StandardUniform(_Fixed):
    """``U[0, 1]^D``: ``log p(x) = 0`` inside the cube, ``-inf`` outside (zero density, not an error).

    Args: as :class:`StandardNormal`.

    Source: the base of the anti-symmetric AbsFlow, Appendix I.1; distrax ``Uniform``.
    """

    _family = distrax.Uniform
    _draw = jax.random.uniform


class DiagonalNormal(Distribution):
    """``N(loc, diag(exp(2 log_scale)))`` with learned ``loc`` and ``log_scale`` of shape
    ``event_shape``, both starting at 0.

    Source: the learned Gaussian base of RealNVP (Dinh et al., 2017) and Glow (Kingma & Dhariwal, 2018).
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
