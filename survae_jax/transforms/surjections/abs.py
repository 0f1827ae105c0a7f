"""The absolute-value surjection in both directions: ``AbsSurjection`` and ``GenerativeAbsSurjection``.

Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 and Table 7 (row "Abs") and
Appendix D (D.1 generative direction, Eqs. 13-17; D.2 inference direction, Eqs. 18-22).

Sign convention (ties at zero): the sign bit is ``b = 1`` ("positive") when ``x >= 0`` and
``b = 0`` when ``x < 0``, i.e. ``sign(0) = +1``. The set ``{x = 0}`` has measure zero, so this
choice changes no density; it only makes ``forward`` a well-defined function with no NaN.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import Distribution
from survae_jax.transforms.base import Array, GenerativeSurjection, InferenceSurjection

_LOG2 = math.log(2.0)


# ----------------------------------------------------------------- parameter-free maths
def _sign_bits(x: Array) -> Array:
    """Sign bits ``(..., F)`` as ``int32``: 1 where ``x >= 0`` (``sign(0) = +1``), 0 where ``x < 0``."""
    return (x >= 0).astype(jnp.int32)


def _apply_sign(bits: Array, v: Array) -> Array:
    """``s * v`` with ``s = +1`` where ``bits == 1`` and ``s = -1`` where ``bits == 0``."""
    return jnp.where(bits == 1, v, -v)


def _take(x: Array, features: tuple[int, ...] | None) -> Array:
    """The elements that get the abs: all of ``x``, or ``x[..., features]``."""
    return x if features is None else x[..., jnp.asarray(features)]


def _put(x: Array, part: Array, features: tuple[int, ...] | None) -> Array:
    """``x`` with ``x[..., features]`` replaced by ``part`` (or ``part`` itself when all)."""
    return part if features is None else x.at[..., jnp.asarray(features)].set(part)


class _AbsBase:
    """Shared argument handling of the two abs layers (not a Transform on its own)."""

    def _init(self, classifier, features):
        if classifier is not None and not isinstance(classifier, Distribution):
            raise TypeError(
                f"{type(self).__name__}: classifier must be a conditional Distribution "
                f"(e.g. ConditionalBernoulli(net)) or None, got {type(classifier).__name__}."
            )
        if features is not None:
            feats = tuple(int(i) for i in features)
            if not feats or len(set(feats)) != len(feats):
                raise ValueError(
                    f"{type(self).__name__}: features must be a non-empty tuple of distinct "
                    f"indices on the last axis, got {features}."
                )
            features = feats
        self.classifier = classifier
        self.features = features

    def _check(self, x: Array, what: str) -> None:
        self._check_input(x, min_ndim=2, what=what)
        if self.features is not None:
            d = x.shape[-1]
            bad = [i for i in self.features if not -d <= i < d]
            if bad:
                raise ValueError(
                    f"{self.name}: features {self.features} out of range for a last axis of "
                    f"length {d}; expected {what} of shape (B, ..., D) with D > {max(bad)}, got "
                    f"{tuple(x.shape)}."
                )
            # Normalise negative indices so that two features never name the same element.
            if len({i % d for i in self.features}) != len(self.features):
                raise ValueError(
                    f"{self.name}: features {self.features} name the same element twice for a "
                    f"last axis of length {d} (input shape {tuple(x.shape)})."
                )

    def _log_p_bits(self, bits: Array, context: Array, dtype) -> Array:
        """``log p(b | context)`` ``(B,)`` nats: ``-n log 2`` by default, else the classifier's."""
        if self.classifier is None:
            n = math.prod(bits.shape[1:])
            return jnp.full((bits.shape[0],), -n * _LOG2, dtype)
        lp = self.classifier.log_prob(bits, context=context)
        return lp.astype(jnp.result_type(lp.dtype, dtype))  # promote, never downcast

    def _draw_bits(self, key: Array, shape, context: Array) -> Array:
        """Sign bits of ``shape`` ``(B, ..., F)``: fair coins by default, else the classifier's."""
        if self.classifier is None:
            return jax.random.bernoulli(key, 0.5, shape).astype(jnp.int32)
        bits = self.classifier.sample(key, context=context)
        if tuple(bits.shape) != tuple(shape):
            raise ValueError(
                f"{self.name}: the classifier must give sign bits of shape {tuple(shape)} "
                f"(the abs'd elements), got {tuple(bits.shape)}."
            )
        return bits.astype(jnp.int32)


class AbsSurjection(_AbsBase, InferenceSurjection):
    """Inference absolute-value surjection ``z = |x|`` (Table 7, "Abs"; Appendix D.2).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``s = sign(x)`` (``sign(0) = +1``), ``z = |x|`` on the chosen elements, the others
      copied (Eq. 19); deterministic.
    - inverse: ``s ~ p(s|z)``, ``x = s * z`` (Eq. 18); needs ``key``. ``z`` must be ``>= 0`` on
      the abs'd elements (it is, when it comes from ``forward``).
    - V = ``log p(s|z)`` (Eq. 22), exact. Default ``p(s|z) = 1/2`` per element, so
      ``V = -n log 2`` with ``n`` the number of abs'd elements per example; with a classifier,
      ``V = classifier.log_prob(b, context=z)`` where ``b = (s + 1) / 2`` are the sign bits
      (1 = positive).

    With the default ``p(s|z) = 1/2`` the model density is symmetric under sign flips of the
    chosen elements (the exact symmetry of Appendix D.2).

    Args:
      classifier: ``None`` (fair coin) or a conditional distribution over the sign bits, e.g.
        ``ConditionalBernoulli(net)`` with ``net: z (B, ..., D) -> logits (B, ..., F)``.
      features: indices on the last axis that get the abs (``None``: every element). E.g.
        ``features=(0,)`` on ``(B, 2)`` points takes the abs of the first coordinate only.

    Shapes: ``x, z: (B, ..., D)``; sign bits ``(B, ..., F)`` with ``F = len(features)`` (or ``D``).
    V: ``(B,)`` nats.

    Raises:
      ValueError: input of rank < 2 or not floating; ``features`` out of range; ``inverse``
        without ``key``; a classifier whose samples are not ``(B, ..., F)``.
      TypeError: a classifier that is not a ``Distribution``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 7 (row "Abs") and Appendix D.2,
    Eqs. 18-22.
    """

    def __init__(self, classifier: Distribution | None = None, *, features: Sequence[int] | None = None):
        self._init(classifier, features)

    def forward(self, x, *, key=None, context=None):
        self._check(x, "x")
        part = _take(x, self.features)
        z = _put(x, jnp.abs(part), self.features)
        return z, self._log_p_bits(_sign_bits(part), z, x.dtype)

    def inverse(self, z, *, key=None, context=None):
        key = self._require_key(key, "inverse")
        self._check(z, "z")
        part = _take(z, self.features)
        bits = self._draw_bits(key, part.shape, z)
        return _put(z, _apply_sign(bits, part), self.features)


class GenerativeAbsSurjection(_AbsBase, GenerativeSurjection):
    """Generative absolute-value surjection ``x = |z|`` (Table 6, "Abs"; Appendix D.1).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``s ~ q(s|x)``, ``z = s * x`` on the chosen elements (Eq. 14); needs ``key``.
      The other elements are copied.
      ``x`` must be ``>= 0`` there (the data of a generative abs are absolute values).
    - inverse: ``x = |z|`` on the chosen elements (Eq. 13); deterministic.
    - V = ``-log q(s|x)`` (Eq. 17), a one-sample bound term: the flow's ``log_prob`` is an ELBO
      of ``log p(x) = log sum_s p_Z(s x)``. Default ``q(s|x) = 1/2``, so ``V = n log 2``; with a
      classifier, ``V = -classifier.log_prob(b, context=x)`` with sign bits ``b`` (1 = positive).
      The bound is tight when ``q(s|x) = p_Z(s x) / sum_s' p_Z(s' x)``.

    Args:
      classifier: ``None`` (fair coin) or a conditional distribution over the sign bits with
        context ``x``, e.g. ``ConditionalBernoulli(net)``, ``net: (B, ..., D) -> (B, ..., F)``.
      features: indices on the last axis that get the abs (``None``: every element).

    Shapes: ``x, z: (B, ..., D)``; V ``(B,)`` nats.

    Raises:
      ValueError: as :class:`AbsSurjection`, and ``forward`` without ``key``.
      TypeError: a classifier that is not a ``Distribution``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 (row "Abs") and Appendix D.1,
    Eqs. 13-17.
    """

    def __init__(self, classifier: Distribution | None = None, *, features: Sequence[int] | None = None):
        self._init(classifier, features)

    def forward(self, x, *, key=None, context=None):
        key = self._require_key(key, "forward")
        self._check(x, "x")
        part = _take(x, self.features)
        bits = self._draw_bits(key, part.shape, x)
        z = _put(x, _apply_sign(bits, part), self.features)
        return z, -self._log_p_bits(bits, x, x.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z, "z")
        return _put(z, jnp.abs(_take(z, self.features)), self.features)
