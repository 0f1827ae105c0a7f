"""The max surjection ``z = max_k x_k`` over one axis (Tables 6 and 7, row "Max"; Appendix E).

``split(x) = (z, (k, e))``: the first argmax ``k`` and the gaps ``e = z - x >= 0`` (``e_k = 0``);
``merge(z, (k, e)) = z - e``, so ``max(merge(z, s)) == z`` exactly in floating point.
Default fibre (Eqs. 28 and 32): ``p(k|z) = 1/K`` (or a classifier's), the other gaps half-normal:
``log p(k, e|z) = log p(k|z) + sum_{j != k} [log(2/pi)/2 - log sigma - e_j^2 / (2 sigma^2)]``.
Ties: ``k`` is the first index of the maximum; the other tied values sit at gap 0, where the
half-normal density is finite, so V stays finite.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import sum_except_batch
from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair

Array = jax.Array

_LOG_HALF_NORMAL_0 = 0.5 * math.log(2.0 / math.pi)


def half_normal_log_prob(e: Array, log_scale) -> Array:
    """Elementwise ``log HN(e; sigma) = log(2/pi)/2 - log sigma - e^2 / (2 sigma^2)``, ``e >= 0``."""
    return _LOG_HALF_NORMAL_0 - log_scale - 0.5 * jnp.square(e * jnp.exp(-log_scale))


def half_normal_sample(key: Array, shape, dtype, log_scale) -> Array:
    """``sigma |eps|``, ``eps ~ N(0, 1)``: half-normal draws of ``shape``."""
    return jnp.exp(log_scale) * jnp.abs(jax.random.normal(key, tuple(shape), dtype))


def _at(k: Array, shape, axis: int) -> Array:
    """Mask of ``shape``: True at index ``k`` (``shape`` without ``axis``) along ``axis``."""
    return jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis) == jnp.expand_dims(k, axis)


class MaxFibre(Fibre):
    """``p(k, e|z)``: ``k`` uniform or ``classifier(context=z)``, ``e_j ~ HN(scale)`` for ``j != k``."""

    def __init__(self, size, classifier, axis, keepdims, scale, name):
        self.size, self.classifier, self.axis, self.keepdims, self.name = size, classifier, axis, keepdims, name
        self.log_scale = math.log(scale)
        self.exact = bool(getattr(classifier, "exact", True))

    def log_prob(self, s, *, context, key=None):
        k, e = s
        if self.classifier is None:
            log_p_k = jnp.full((k.shape[0],), -math.prod(k.shape[1:]) * math.log(self.size), context.dtype)
        else:
            log_p_k = self.classifier.log_prob(k, context=context)
        lp = half_normal_log_prob(e, self.log_scale)
        return log_p_k + sum_except_batch(jnp.where(_at(k, e.shape, self.axis % e.ndim), 0.0, lp))

    def sample(self, key, *, context):
        full = list(context.shape if self.keepdims else jnp.expand_dims(context, self.axis).shape)
        axis = self.axis % len(full)
        full[axis] = self.size
        k_shape = full[:axis] + full[axis + 1 :]
        k_key, e_key = jax.random.split(key)
        if self.classifier is None:
            k = jax.random.randint(k_key, k_shape, 0, self.size, jnp.int32)
        else:
            k = self.classifier.sample(k_key, context=context)
            if tuple(k.shape) != tuple(k_shape):
                raise ValueError(
                    f"{self.name}: the classifier must give indices of shape {tuple(k_shape)}, got {tuple(k.shape)}."
                )
            k = k.astype(jnp.int32)
        e = half_normal_sample(e_key, full, context.dtype, self.log_scale)
        return k, jnp.where(_at(k, full, axis), jnp.zeros((), e.dtype), e)


def max_surjection(
    size: int,
    classifier=None,
    axis: int = -1,
    keepdims: bool = False,
    scale: float = 1.0,
    name: str = "MaxSurjection",
) -> Surjective:
    """The max over ``axis`` of ``(B, ..., K, ...)`` tensors; the max keeps ``axis`` (length 1) or drops it."""
    if size < 1:
        raise ValueError(f"{name}: size (the number K of values maxed over) must be >= 1, got {size}.")
    if axis == 0:
        raise ValueError(f"{name}: axis 0 is the batch axis; take the max over an event axis.")
    if not scale > 0:
        raise ValueError(f"{name}: scale of the half-normal must be > 0, got {scale}.")

    def check(t: Array, full: bool) -> None:
        shape, reduced_rank = tuple(t.shape), not (full or keepdims)
        if t.ndim < 2 - reduced_rank:
            raise ValueError(f"{name}: expected a tensor of rank >= {2 - reduced_rank} (batch first), "
                             f"got shape {shape}.")
        if not jnp.issubdtype(t.dtype, jnp.floating):
            raise ValueError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}.")
        if reduced_rank:
            if not -(t.ndim + 1) < axis < t.ndim + 1:
                raise ValueError(f"{name}: axis {axis} does not fit the max of shape {shape} (keepdims=False).")
        elif not -t.ndim < axis < t.ndim or shape[axis] != (size if full else 1):
            what = f"{size} values" if full else "the max with length 1"
            raise ValueError(f"{name}: expected {what} on axis {axis} (batch first), got shape {shape}.")

    def split(x):
        check(x, True)
        z = jnp.max(x, axis=axis, keepdims=True)
        k = jnp.argmax(x, axis=axis).astype(jnp.int32)
        return (z if keepdims else jnp.squeeze(z, axis)), (k, z - x)

    def merge(z, s):
        check(z, False)
        return (z if keepdims else jnp.expand_dims(z, axis)) - s[1]

    fibre = MaxFibre(size, classifier, axis, keepdims, scale, name)
    return Surjective(name, split, merge, fibre, check_latent=lambda z: check(z, False))


max_forward, max_inverse = inference_pair(max_surjection)
generative_max_forward, generative_max_inverse = generative_pair(max_surjection)
