"""``ElementwiseParams``: split a net's last axis into per-element parameters."""

from __future__ import annotations

import jax
from flax import nnx

from survae_jax.functional.elementwise import elementwise_params

Array = jax.Array


class ElementwiseParams(nnx.Module):
    """``(..., D * P) -> (..., D, P)`` with ``out[..., d, p] = h[..., d * P + p]``: the reference
    code's *sequential* layout, the one couplings read from a flat output
    (:func:`~survae_jax.functional.elementwise_params`). E.g.
    ``nnx.Sequential(MLP(1, 2, rngs=rngs), ElementwiseParams(2))``.

    Args:
      num_params: ``P`` (2 for affine: scale, shift).

    Source: the reference SurVAE code's ``ElementwiseParams`` (``mode="sequential"``).
    """

    def __init__(self, num_params: int):
        if int(num_params) < 1:
            raise ValueError(f"ElementwiseParams: num_params must be >= 1, got {num_params}.")
        self.num_params = int(num_params)

    def __call__(self, h: Array) -> Array:
        return elementwise_params(h, None, self.num_params, "ElementwiseParams")
