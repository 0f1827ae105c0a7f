"""The ReLU surjection both ways (Tables 6 and 7); maths in :mod:`survae_jax.functional.relu`."""

from __future__ import annotations

from typing import Callable

import jax

from survae_jax.functional.relu import generative_relu_forward, generative_relu_inverse, relu_forward, relu_inverse
from survae_jax.transforms.base import InferenceSurjection, generative_dual


class ReLUSurjection(InferenceSurjection):
    """Inference ReLU ``z = max(x, 0)`` elementwise (Table 7).

    - forward: ``z = max(x, 0)``;
    - inverse: ``x = z`` where ``z != 0``, ``x = -sigma |eps|``, ``eps ~ N(0, 1)``, where ``z = 0``;
    - ``V = sum_{i: z_i = 0} log HN(-x_i; sigma_i)``, exact; ``sigma = 1`` or ``exp(scale_net(z))``.

    Trap: ``z`` has a point mass at 0; the base downstream must give ``P(z_i = 0)``. A negative
    ``z`` passed to ``inverse`` comes back unchanged. ``scale_net``: ``z -> log sigma``, ``z``'s shape.
    Shapes: ``x, z: (B, ...)``.
    """

    def __init__(self, scale_net: Callable[[jax.Array], jax.Array] | None = None):
        self.scale_net = scale_net

    functional = (relu_forward, relu_inverse)

    def functional_args(self):
        return {"scale_net": self.scale_net, "name": self.name}


GenerativeReLUSurjection = generative_dual(
    ReLUSurjection, "GenerativeReLUSurjection", (generative_relu_forward, generative_relu_inverse),
    """Generative ReLU: the data are ``x = max(z, 0)`` (Table 6).

    - forward: ``z = x`` where ``x > 0``, ``z = -sigma |eps|`` where ``x = 0``;
    - inverse: ``x = max(z, 0)``; ``inverse(forward(x)) == x`` exactly for ``x >= 0``;
    - ``V = -sum_{i: x_i = 0} log HN(-z_i; sigma_i)``, a bound term; ``sigma`` from ``scale_net(x)``.

    Args and shapes: as :class:`ReLUSurjection`; ``x >= 0`` is not checked.
    """)
