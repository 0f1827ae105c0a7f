"""``Scale`` and ``Shift``: fixed (untrained) elementwise affine maps."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from survae_jax.functional import elementwise as F
from survae_jax.transforms.bijections.elementwise import ElementwiseBijection


def _fixed(value, who: str):
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"{who}: expected finite values, got {np.asarray(arr)}.")
    return arr


class Scale(ElementwiseBijection):
    """``z = scale * x``, ``x = z / scale``, ``V = sum over the event of log|scale|``; ``scale``
    (not trained): nonzero, finite, broadcasting to the event shape (``(C,)`` for NHWC images).
    Source: the reference SurVAE code's ``ScalarAffineBijection``."""

    functional = (F.scale_forward, F.scale_inverse)

    def __init__(self, scale):
        self.scale = _fixed(scale, "Scale")
        if np.any(np.asarray(self.scale) == 0):
            raise ValueError(f"Scale: a zero scale is not invertible, got {np.asarray(self.scale)}.")

    def functional_args(self):
        return {**super().functional_args(), "scale": self.scale}


class Shift(ElementwiseBijection):
    """``z = x + shift``, ``x = z - shift``, ``V = 0``; ``shift`` finite, fixed, broadcasting to the event.
    Source: the reference SurVAE code's ``ScalarAffineBijection``."""

    functional = (F.shift_forward, F.shift_inverse)

    def __init__(self, shift):
        self.shift = _fixed(shift, "Shift")

    def functional_args(self):
        return {**super().functional_args(), "shift": self.shift}
