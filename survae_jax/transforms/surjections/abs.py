"""The abs surjection ``z = |x|`` both ways (Tables 6 and 7; Appendix D); maths in :mod:`survae_jax.functional.abs`."""

from __future__ import annotations

from typing import Sequence

from survae_jax.distributions.base import Distribution
from survae_jax.functional.abs import (abs_forward, abs_inverse, abs_surjection, generative_abs_forward,
                                       generative_abs_inverse)
from survae_jax.transforms.base import InferenceSurjection, generative_dual


class AbsSurjection(InferenceSurjection):
    """Inference abs ``z = |x|`` (Table 7; Appendix D.2, Eqs. 18-22).

    - forward: ``z = |x|``, sign bits ``b = 1[x >= 0]`` (``sign(0) = +1``);
    - inverse: ``b ~ p(b|z)``, ``x = (2b - 1) z`` (Eq. 18);
    - ``V = log p(b|z)`` (Eq. 22): ``-n log 2`` for ``n`` abs'd entries with the default fair
      coin, which makes the density symmetric under sign flips; else
      ``classifier.log_prob(b, context=z)`` (e.g. ``ConditionalBernoulli(net)``).

    Shapes: ``x, z: (B, ..., D)``; sign bits ``(B, ..., F)``: ``x[..., features]`` gets the abs
    (``F = len(features)``; every entry, ``F = D``, for ``features=None``).
    """

    def __init__(self, classifier: Distribution | None = None, *, features: Sequence[int] | None = None):
        if classifier is not None and not isinstance(classifier, Distribution):
            raise TypeError(
                f"{type(self).__name__}: classifier must be a conditional Distribution "
                f"(e.g. ConditionalBernoulli(net)) or None, got {type(classifier).__name__}."
            )
        self.classifier = classifier
        self.features = None if features is None else tuple(int(i) for i in features)
        abs_surjection(self.features, name=type(self).__name__)  # validates features

    functional = (abs_forward, abs_inverse)

    def functional_args(self):
        return {"fibre": self.classifier, "features": self.features, "name": self.name}


GenerativeAbsSurjection = generative_dual(
    AbsSurjection, "GenerativeAbsSurjection", (generative_abs_forward, generative_abs_inverse),
    """Generative abs ``x = |z|`` (Table 6; Appendix D.1, Eqs. 13-17), the dual of :class:`AbsSurjection`.

    - forward: ``b ~ q(b|x)``, ``z = (2b - 1) x`` (Eq. 14); ``x >= 0`` on the abs'd entries;
    - inverse: ``x = |z|`` (Eq. 13);
    - ``V = -log q(b|x)`` (Eq. 17): ``n log 2`` with fair coins, so ``log_prob`` is an ELBO of
      ``log sum_b p_Z((2b - 1) x)``, tight when ``q(b|x)`` is the posterior over signs.

    Args: as :class:`AbsSurjection`; the classifier's context is ``x``.
    """)
