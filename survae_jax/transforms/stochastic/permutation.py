"""``StochasticPermutation``: a fresh uniform permutation per example (Appendix G); the maths is
:mod:`survae_jax.functional.stochastic_permutation`."""

from __future__ import annotations

from survae_jax.functional.stochastic_permutation import stochastic_permutation_forward, stochastic_permutation_inverse
from survae_jax.transforms.base import StochasticTransform


class StochasticPermutation(StochasticTransform):
    """Shuffle ``axis`` uniformly at random, independently per example, both ways; ``V = 0``.

    Makes a flow's density exchangeable along ``axis`` (sets of points); not exact:
    ``log p(z) + V`` is a one-sample bound, tight when ``p(z)`` is exchangeable. Shapes: ``x, z
    (B, ...)``; ``axis=1``: the points of ``(B, N, 2)``.

    Source: Nielsen et al. (2020), Appendix G (Eqs. 43-47).
    """

    def __init__(self, axis: int = 1):
        if axis == 0:
            raise ValueError("StochasticPermutation: axis 0 is the batch axis; permute an event axis.")
        self.axis = int(axis)

    functional = (stochastic_permutation_forward, stochastic_permutation_inverse)

    def functional_args(self):
        return {"axis": self.axis, "name": self.name}
