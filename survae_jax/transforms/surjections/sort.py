"""The sort surjection both ways (Tables 6 and 7; Appendix F); maths in :mod:`survae_jax.functional.sort`."""

from __future__ import annotations

from survae_jax.functional.sort import (generative_sort_forward, generative_sort_inverse, sort_forward, sort_inverse,
                                        sort_surjection)
from survae_jax.transforms.base import InferenceSurjection, generative_dual


class SortSurjection(InferenceSurjection):
    """Inference sort ``z = sort x`` (Table 7; Appendix F.2, Eqs. 38-42).

    - forward: ``I = argsort x`` (lexicographic on points), ``z = x_I``;
    - inverse: ``I ~`` uniform over the ``N!`` orders, ``x = z_{I^-1}``; ``z`` must be sorted;
    - ``V = -log N!`` per sorted slice, exact.

    Args:
      axis: the axis whose slices are sorted (not 0); ``1``, the points of ``(B, N, C)``.
      by: the coordinate of the last axis that orders the points (unused when ``axis`` is last).

    Shapes: ``x, z: (B, N, C)`` points or ``(B, D)`` vectors.
    """

    def __init__(self, axis: int = 1, by: int = 0):
        self.axis, self.by = int(axis), int(by)
        sort_surjection(**self.functional_args())  # validates axis

    functional = (sort_forward, sort_inverse)

    def functional_args(self):
        return {"axis": self.axis, "by": self.by, "name": self.name}


GenerativeSortSurjection = generative_dual(
    SortSurjection, "GenerativeSortSurjection", (generative_sort_forward, generative_sort_inverse),
    """Generative sort ``x = sort z`` (Table 6; Appendix F.1, Eqs. 33-37).

    - forward: ``I ~`` uniform over the ``N!`` orders, ``z = x_{I^-1}``; ``x`` must be sorted;
    - inverse: ``x = sort z``; ``inverse(forward(x)) == x`` exactly for sorted ``x``;
    - ``V = +log N!`` per slice, a bound term, tight when ``p_Z`` is exchangeable.

    Args and shapes: as :class:`SortSurjection`.
    """)
