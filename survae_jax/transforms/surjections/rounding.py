"""Rounding, the inference direction (Table 7, row "Rounding"); its dual is dequantization.
The maths is :mod:`survae_jax.functional.rounding`."""

from __future__ import annotations

from survae_jax.functional.rounding import add_below_next_integer, rounding_forward, rounding_inverse  # noqa: F401
from survae_jax.transforms.base import InferenceSurjection


class RoundingSurjection(InferenceSurjection):
    """Inference rounding (Table 7): ``z = floor(x)`` elementwise (``floor(-0.5) = -1``).

    - forward: ``z = floor(x)``, ``u = x - z`` in ``[0, 1)``;
    - inverse: ``u ~ p(u|z)``, ``x = z + u`` kept below ``z + 1``;
    - ``V = log p(u|z)``, exact; 0 with the default ``p(u|z) = U[0, 1)^D``; a ``decoder`` over
      ``[0, 1)^D`` (context ``z``) is e.g. ``ConditionalFlow(ConditionalNormal(net), [Logit()])``
      (sampling runs the sigmoid; ``Sigmoid()`` there is the wrong way round). ``x, z (B, ...)``.

    Trap: a decoder sample outside ``[0, 1]`` is not corrected (``floor(x) != z`` then); one
    below the float spacing of ``z`` is lost in ``z + u`` (``p(u = 0|z)`` is then evaluated).

    Source: Nielsen et al. (2020), Table 7.
    """

    def __init__(self, decoder=None):
        self.decoder = decoder

    functional = (rounding_forward, rounding_inverse)

    @property
    def exact(self) -> bool:
        return bool(getattr(self.decoder, "exact", True))

    def functional_args(self):
        return {"dist": self.decoder, "name": self.name}
