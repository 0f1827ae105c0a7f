"""``ElementwiseParams``: split a net's last axis into per-element parameters."""

from __future__ import annotations

import jax
from flax import nnx

Array = jax.Array


def elementwise_params(h: Array, num_params: int, *, who: str = "ElementwiseParams") -> Array:
    """Reshape ``(..., D * P)`` to ``(..., D, P)``, e.g. ``(B, D * P) -> (B, D, P)``.

    Interleaved: element ``d`` owns entries ``d * P, ..., d * P + P - 1``.

    Raises:
      ValueError: a rank-0 ``h`` or a last axis that is not a multiple of ``num_params``,
        naming ``who`` and the shape.

    Source: the reference SurVAE code's ``ElementwiseParams`` (Nielsen et al., 2020).
    """
    if h.ndim < 1 or h.shape[-1] % num_params:
        raise ValueError(
            f"{who}: expected a last axis that is a multiple of num_params={num_params}, "
            f"got shape {tuple(h.shape)}."
        )
    return h.reshape(*h.shape[:-1], h.shape[-1] // num_params, num_params)


class ElementwiseParams(nnx.Module):
    """Split the last axis of a net's output into ``num_params`` parameters per element.

    ``(..., D * P) -> (..., D, P)``, interleaved: ``out[..., d, p] = h[..., d * P + p]``. Put
    after a net (``nnx.Sequential(MLP(1, 2, rngs=rngs), ElementwiseParams(2))``) to make the
    per-element parameters explicit; the couplings accept either layout.

    Args:
      num_params: P, the number of parameters per element (2 for affine: scale, shift).

    Raises:
      ValueError: ``num_params < 1`` (at construction); a last axis that is not a multiple of
        ``num_params``.

    Source: the reference SurVAE code's ``ElementwiseParams`` (Nielsen et al., 2020).
    """

    def __init__(self, num_params: int):
        if int(num_params) < 1:
            raise ValueError(f"ElementwiseParams: num_params must be >= 1, got {num_params}.")
        self.num_params = int(num_params)

    def __call__(self, h: Array) -> Array:
        """Return ``h`` reshaped from ``(..., D * P)`` to ``(..., D, P)``."""
        return elementwise_params(h, self.num_params)
