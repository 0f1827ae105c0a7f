"""2x2 max-pooling both ways (Appendix I.3; Table 6/7 max per window); maths in :mod:`survae_jax.functional.maxpool`."""

from __future__ import annotations

from survae_jax.functional.maxpool import (generative_max_pool_forward, generative_max_pool_inverse, max_pool_forward,
                                           max_pool_inverse)
from survae_jax.transforms.base import InferenceSurjection, generative_dual


class MaxPoolSurjection2d(InferenceSurjection):
    """Inference 2x2 max-pooling of NHWC images: a max surjection with ``K = 4`` per window.

    - forward: ``z[b, i, j, c] = max x[b, 2i:2i+2, 2j:2j+2, c]`` (first position on ties);
    - inverse: per window a position ``k ~ 1/4`` gets ``z``, the 3 others ``z - e``, ``e ~ HN(1)``;
    - ``V = sum_windows [-log 4 + sum_{j != k} (log(2/pi)/2 - (z - x_j)^2 / 2)]``, exact.

    No parameters (Appendix I.3's "simplest possible choice"). Shapes: ``x: (B, H, W, C)`` with
    even ``H``, ``W``; ``z: (B, H/2, W/2, C)``.
    """

    functional = (max_pool_forward, max_pool_inverse)

    def functional_args(self):
        return {"name": self.name}


GenerativeMaxPoolSurjection2d = generative_dual(
    MaxPoolSurjection2d, "GenerativeMaxPoolSurjection2d", (generative_max_pool_forward, generative_max_pool_inverse),
    """Generative 2x2 max-pooling (Table 6 "Max" per window): max-unpooling ``x -> z``.

    - forward: ``(B, H, W, C) -> (B, 2H, 2W, C)``: per window ``k ~ 1/4`` gets ``x``, the 3 others
      ``x - e``, ``e ~ HN(1)``;
    - inverse: 2x2 max-pooling; ``inverse(forward(x)) == x`` exactly;
    - ``V = -log q = sum_windows [log 4 - sum_{j != k} (log(2/pi)/2 - (x - z_j)^2 / 2)]``, a bound term.
    """)
