"""The max surjection both ways (Tables 6 and 7; Appendix E); maths in :mod:`survae_jax.functional.max`."""

from __future__ import annotations

from survae_jax.distributions.base import Distribution
from survae_jax.functional.max import (generative_max_forward, generative_max_inverse, max_forward, max_inverse,
                                       max_surjection)
from survae_jax.transforms.base import InferenceSurjection, generative_dual


class MaxSurjection(InferenceSurjection):
    """Inference max ``z = max_k x_k`` over ``axis`` (Table 7; Appendix E.2, Eqs. 28-32).

    - forward: ``k = argmax x`` (first index on ties), ``z = x_k``;
    - inverse: ``k ~ p(k|z)``, ``x_k = z``, ``x_j = z - e_j``, ``e_j ~ HN(scale)`` for ``j != k``;
      ``max(inverse(z)) == z`` exactly;
    - ``V = log p(k|z) + sum_{j != k} [log(2/pi)/2 - log scale - (z - x_j)^2 / (2 scale^2)]``,
      ``p(k|z) = 1/K`` or ``classifier.log_prob(k, context=z)`` (e.g. ``ConditionalCategorical(net)``).

    Shapes: ``x: (B, ..., K, ...)`` with ``K = size`` on ``axis``; ``z``: the same with ``axis`` of
    length 1 (``keepdims``) or dropped.
    """

    def __init__(self, size: int, classifier: Distribution | None = None, *, axis: int = -1,
                 keepdims: bool = False, scale: float = 1.0):
        if classifier is not None and not isinstance(classifier, Distribution):
            raise TypeError(
                f"{type(self).__name__}: classifier must be a conditional Distribution (e.g. "
                f"ConditionalCategorical(net)) or None, got {type(classifier).__name__}."
            )
        self.size, self.classifier, self.axis = int(size), classifier, int(axis)
        self.keepdims, self.scale = bool(keepdims), float(scale)
        max_surjection(**self.functional_args())  # validates size, axis, scale

    functional = (max_forward, max_inverse)

    def functional_args(self):
        return {"size": self.size, "classifier": self.classifier, "axis": self.axis,
                "keepdims": self.keepdims, "scale": self.scale, "name": self.name}

    @property
    def exact(self) -> bool:
        return bool(getattr(self.classifier, "exact", True))


GenerativeMaxSurjection = generative_dual(
    MaxSurjection, "GenerativeMaxSurjection", (generative_max_forward, generative_max_inverse),
    """Generative max ``x = max_k z_k`` over ``axis`` (Table 6; Appendix E.1, Eqs. 23-27).

    - forward: ``k ~ q(k|x)``, ``z_k = x``, ``z_j = x - e_j``, ``e_j ~ HN(scale)`` for ``j != k``;
    - inverse: ``x = max z``; ``inverse(forward(x)) == x`` exactly;
    - ``V = -log q(k|x) - sum_{j != k} log HN(x - z_j; scale)``, a one-sample bound term.

    Args: as :class:`MaxSurjection`; the classifier's context is ``x``. Shapes: ``x`` is the max
    (``axis`` of length 1 or dropped), ``z: (B, ..., K, ...)``.
    """)
