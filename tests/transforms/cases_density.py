"""Registry cases that check a surjection's V by quadrature (the ``density`` property).

``check_transform`` checks the maps of a surjection by itself, but its likelihood contribution
only through ``density=(base, lo, hi, expected)``: the flow ``Flow(base, [layer])`` over 2-D
data must integrate to the base's mass on the layer's image. One case per exact surjection of
Table 7 that maps 2-D data to 1-D or 2-D latents; ``expected`` says why.
"""

from __future__ import annotations

import jax

from survae_jax.distributions import StandardNormal
from survae_jax.testing import TransformCase
from survae_jax.transforms.surjections import AbsSurjection, MaxSurjection, Slice, SortSurjection

_BOX = ([-7.0, -7.0], [7.0, 7.0])


def _normal(shape):
    return lambda k: jax.random.normal(k, shape)


CASES = [
    # z = |x| lives on the positive quadrant, where a standard normal has mass 1/4.
    TransformCase(
        "AbsSurjection-2d-density",
        lambda k: AbsSurjection(),
        _normal((4, 2)),
        density=(StandardNormal((2,)), *_BOX, 0.25),
    ),
    # z = max(x1, x2) covers R; p(k|z) = 1/2 and the half-normal below the max each sum to 1.
    TransformCase(
        "MaxSurjection-K2-density",
        lambda k: MaxSurjection(2, keepdims=True),
        _normal((4, 2)),
        density=(StandardNormal((1,)), *_BOX, 1.0),
    ),
    # z = sort(x) lives on {z1 <= z2}, half of a standard normal's mass.
    TransformCase(
        "SortSurjection-D2-density",
        lambda k: SortSurjection(),
        _normal((4, 2)),
        density=(StandardNormal((2,)), *_BOX, 0.5),
    ),
    # z = x1 covers R and p(x2|z) is a standard normal: the flow is a proper density.
    TransformCase(
        "Slice-2d-density",
        lambda k: Slice(1, size=2),
        _normal((4, 2)),
        density=(StandardNormal((1,)), *_BOX, 1.0),
    ),
]
