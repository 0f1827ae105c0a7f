"""The maximum-value surjection in both directions: ``MaxSurjection`` and ``GenerativeMaxSurjection``.

Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 and Table 7 (row "Max") and
Appendix E (E.1 generative direction, Eqs. 23-27; E.2 inference direction, Eqs. 28-32).

Ties: the argmax ``k`` is the *first* index of the maximum (``jnp.argmax``). The other tied
elements then sit at distance 0 below the maximum, where the half-normal density is finite
(``log(2 / pi) / 2 - log sigma``), so V stays finite and nothing is NaN.

The private helpers are shared with :mod:`survae_jax.transforms.surjections.maxpool`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import Distribution
from survae_jax.transforms.base import Array, GenerativeSurjection, InferenceSurjection, sum_except_batch


# ----------------------------------------------------------------- parameter-free maths
def _half_normal_log_prob(e: Array, scale: float) -> Array:
    """Elementwise log-density of a half-normal ``HN(scale)`` at ``e >= 0``, nats.

    ``log p(e) = log 2 + log N(e; 0, scale^2) = 0.5 log(2/pi) - log(scale) - e^2 / (2 scale^2)``.
    """
    return 0.5 * math.log(2.0 / math.pi) - math.log(scale) - 0.5 * jnp.square(e / scale)


def _below_log_prob(x: Array, z: Array, k: Array, axis: int, scale: float) -> Array:
    """``sum_{j != k} log HN(z - x_j)`` over ``axis`` (kept reduced), per max element.

    Args:
      x: the K values along ``axis``; z: their max, with ``axis`` kept (length 1);
      k: the argmax, with ``axis`` kept (length 1).
    """
    idx = jax.lax.broadcasted_iota(jnp.int32, x.shape, axis % x.ndim)
    lp = _half_normal_log_prob(z - x, scale)
    return jnp.sum(jnp.where(idx == k, jnp.zeros_like(lp), lp), axis=axis)


def _fill_below(key: Array, z: Array, k: Array, size: int, axis: int, scale: float) -> Array:
    """``x`` with ``x_k = z`` and ``x_j = z - scale * |eps_j|``, ``eps ~ N(0, 1)``, along ``axis``.

    ``z`` and ``k`` carry ``axis`` with length 1; the result has length ``size`` there. Since
    ``|eps| >= 0``, ``max(x) == z`` exactly in floating point (the right-inverse condition).
    """
    shape = list(z.shape)
    shape[axis] = size
    eps = jnp.abs(jax.random.normal(key, tuple(shape), z.dtype)) * jnp.asarray(scale, z.dtype)
    idx = jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis % len(shape))
    return jnp.where(idx == k, z, z - eps)



class _MaxBase:
    """Shared argument handling of the two max layers (not a Transform on its own)."""

    def _init(self, size, classifier, axis, keepdims, scale):
        name = type(self).__name__
        if int(size) < 1:
            raise ValueError(f"{name}: size (the number K of values maxed over) must be >= 1, got {size}.")
        if int(axis) == 0:
            raise ValueError(f"{name}: axis 0 is the batch axis; take the max over an event axis.")
        if not float(scale) > 0:
            raise ValueError(f"{name}: scale of the half-normal must be > 0, got {scale}.")
        if classifier is not None and not isinstance(classifier, Distribution):
            raise TypeError(
                f"{name}: classifier must be a conditional Distribution (e.g. "
                f"ConditionalCategorical(net)) or None, got {type(classifier).__name__}."
            )
        self.size = int(size)
        self.classifier = classifier
        self.axis = int(axis)
        self.keepdims = bool(keepdims)
        self.scale = float(scale)

    def _check_full(self, x: Array, what: str) -> None:
        """``x`` must hold ``size`` values along ``axis``."""
        self._check_input(x, min_ndim=2, what=what)
        if not -x.ndim < self.axis < x.ndim or x.shape[self.axis] != self.size:
            raise ValueError(
                f"{self.name}: expected {what} with {self.size} values on axis {self.axis} "
                f"(batch first), got shape {tuple(x.shape)}."
            )

    def _check_reduced(self, z: Array, what: str) -> None:
        """``z`` is the max: axis kept with length 1 (``keepdims``) or dropped."""
        self._check_input(z, min_ndim=2 if self.keepdims else 1, what=what)
        if self.keepdims:
            if not -z.ndim < self.axis < z.ndim or z.shape[self.axis] != 1:
                raise ValueError(
                    f"{self.name}: expected {what} with length 1 on axis {self.axis} "
                    f"(keepdims=True), got shape {tuple(z.shape)}."
                )
        elif not -(z.ndim + 1) < self.axis < z.ndim + 1:
            raise ValueError(
                f"{self.name}: axis {self.axis} does not fit {what} of shape {tuple(z.shape)} "
                "(keepdims=False: the axis is dropped from the max)."
            )

    def _expand(self, z: Array) -> Array:
        return z if self.keepdims else jnp.expand_dims(z, self.axis)

    def _reduce(self, m: Array) -> Array:
        return m if self.keepdims else jnp.squeeze(m, self.axis)

    def _log_p_k(self, k: Array, context: Array, dtype) -> Array:
        """``log p(k | context)`` ``(B,)``: ``-n log K`` by default, else the classifier's."""
        if self.classifier is None:
            n = math.prod(k.shape[1:])
            return jnp.full((k.shape[0],), -n * math.log(self.size), dtype)
        lp = self.classifier.log_prob(k, context=context)
        return lp.astype(jnp.result_type(lp.dtype, dtype))  # promote, never downcast

    def _draw_k(self, key: Array, shape, context: Array) -> Array:
        """Argmax indices ``(B, ...)`` (the axis dropped): uniform, or from the classifier."""
        if self.classifier is None:
            return jax.random.randint(key, shape, 0, self.size, jnp.int32)
        k = self.classifier.sample(key, context=context)
        if tuple(k.shape) != tuple(shape):
            raise ValueError(
                f"{self.name}: the classifier must give indices of shape {tuple(shape)}, got "
                f"{tuple(k.shape)}."
            )
        return k.astype(jnp.int32)

    def _reduce_and_log_prob(self, x: Array) -> tuple[Array, Array, Array]:
        """Max ``m`` (axis kept), first argmax ``k`` (axis dropped), ``log p(x_-k|m, k)`` ``(B,)``."""
        m = jnp.max(x, axis=self.axis, keepdims=True)
        k = jnp.argmax(x, axis=self.axis)
        below = _below_log_prob(x, m, jnp.expand_dims(k, self.axis), self.axis, self.scale)
        return m, k, sum_except_batch(below)

    def _fill(self, key: Array, m: Array, context: Array) -> tuple[Array, Array, Array]:
        """Draw ``k`` and the values below the max; return ``(x, k, log p(k) + log p(x_-k))``."""
        k_key, e_key = jax.random.split(key)
        k_shape = m.shape[: self.axis % m.ndim] + m.shape[self.axis % m.ndim + 1 :]
        k = self._draw_k(k_key, k_shape, context)
        x = _fill_below(e_key, m, jnp.expand_dims(k, self.axis), self.size, self.axis, self.scale)
        below = _below_log_prob(x, m, jnp.expand_dims(k, self.axis), self.axis, self.scale)
        return x, k, self._log_p_k(k, context, m.dtype) + sum_except_batch(below)


class MaxSurjection(_MaxBase, InferenceSurjection):
    """Inference max surjection ``z = max_k x_k`` over one axis (Table 7, "Max"; Appendix E.2).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``k = argmax x`` (first index on ties), ``z = max x = x_k`` (Eq. 29);
      deterministic.
    - inverse: ``k ~ p(k|z)``, ``x_k = z``, ``x_j = z - e_j`` with ``e_j ~ HalfNormal(scale)``
      for ``j != k`` (Eq. 28); needs ``key``. ``max(inverse(z)) == z`` exactly.
    - V = ``log p(k|z) + log p(x_-k|z, k)`` (Eq. 32), exact, with
      ``log p(x_-k|z, k) = sum_{j != k} [0.5 log(2/pi) - log scale - (z - x_j)^2 / (2 scale^2)]``.
      Default ``p(k|z) = 1/K``; with a classifier, ``log p(k|z) = classifier.log_prob(k, context=z)``.

    Args:
      size: ``K``, the number of values along ``axis`` (needed to sample in ``inverse``).
      classifier: ``None`` (uniform ``1/K``) or a conditional distribution over indices with
        context ``z``, e.g. ``ConditionalCategorical(net)`` with logits ``(B, ..., K)``.
      axis: the axis maxed over (not 0, the batch axis); ``-1`` by default.
      keepdims: keep ``axis`` in ``z`` with length 1 (so ``(B, K) -> (B, 1)``), else drop it
        (``(B, K) -> (B,)``).
      scale: the half-normal's scale ``sigma`` (fixed); 1 gives the standard half-normal.

    Shapes: ``x: (B, ..., K, ...)`` with ``K`` on ``axis``; ``z`` the same with ``axis`` of
    length 1 or dropped; ``k``: ``z``'s shape without ``axis``; V: ``(B,)`` nats.

    Raises:
      ValueError: ``x`` whose ``axis`` is not of length ``size``; ``z`` whose shape does not fit
        ``keepdims``; ``inverse`` without ``key``; bad ``size``, ``axis`` or ``scale``.
      TypeError: a classifier that is not a ``Distribution``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 7 (row "Max") and Appendix E.2,
    Eqs. 28-32.
    """

    def __init__(
        self,
        size: int,
        classifier: Distribution | None = None,
        *,
        axis: int = -1,
        keepdims: bool = False,
        scale: float = 1.0,
    ):
        self._init(size, classifier, axis, keepdims, scale)

    def forward(self, x, *, key=None, context=None):
        self._check_full(x, "x")
        m, k, below = self._reduce_and_log_prob(x)
        z = self._reduce(m)
        return z, self._log_p_k(k, z, x.dtype) + below

    def inverse(self, z, *, key=None, context=None):
        key = self._require_key(key, "inverse")
        self._check_reduced(z, "z")
        x, _, _ = self._fill(key, self._expand(z), z)
        return x


class GenerativeMaxSurjection(_MaxBase, GenerativeSurjection):
    """Generative max surjection ``x = max_k z_k`` over one axis (Table 6, "Max"; Appendix E.1).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``k ~ q(k|x)``, ``z_k = x``, ``z_j = x - e_j`` with ``e_j ~ HalfNormal(scale)``
      for ``j != k`` (Eq. 24); needs ``key``.
    - inverse: ``x = max z`` over ``axis`` (Eq. 23); deterministic; ``inverse(forward(x)) == x``
      exactly.
    - V = ``-log q(k|x) - log q(z_-k|x, k)`` (Eq. 27), a one-sample bound term, with the
      half-normal log-density of :class:`MaxSurjection`. Default ``q(k|x) = 1/K``; with a
      classifier, ``log q(k|x) = classifier.log_prob(k, context=x)``.

    Args: as :class:`MaxSurjection` (``keepdims`` says whether ``x`` carries ``axis`` with
    length 1 or lacks it; ``classifier`` takes context ``x``).

    Shapes: ``x``: ``(B, ...)`` (the maxima); ``z``: ``(B, ..., K, ...)`` with ``K`` on ``axis``;
    V: ``(B,)`` nats.

    Raises:
      ValueError: as :class:`MaxSurjection`, and ``forward`` without ``key``.
      TypeError: a classifier that is not a ``Distribution``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 (row "Max") and Appendix E.1,
    Eqs. 23-27.
    """

    def __init__(
        self,
        size: int,
        classifier: Distribution | None = None,
        *,
        axis: int = -1,
        keepdims: bool = False,
        scale: float = 1.0,
    ):
        self._init(size, classifier, axis, keepdims, scale)

    def forward(self, x, *, key=None, context=None):
        key = self._require_key(key, "forward")
        self._check_reduced(x, "x")
        z, _, log_q = self._fill(key, self._expand(x), x)
        return z, -log_q

    def inverse(self, z, *, key=None, context=None):
        self._check_full(z, "z")
        return self._reduce(jnp.max(z, axis=self.axis, keepdims=True))
