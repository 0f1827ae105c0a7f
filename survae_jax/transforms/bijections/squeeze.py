"""``Squeeze2d``: trade spatial size for channels, NHWC (RealNVP's squeeze)."""

from __future__ import annotations

from survae_jax.functional.linear import squeeze2d_forward, squeeze2d_inverse
from survae_jax.transforms.base import Bijection


class Squeeze2d(Bijection):
    """``(B, H, W, C) -> (B, H/f, W/f, C f^2)``, ``z[b, h, w, c f^2 + i f + j] = x[b, f h + i, f w + j, c]``
    (channel-major, the reference code's default), ``f = factor >= 2``; inverse: the reverse reshape;
    ``V = 0``. Source: RealNVP (Dinh et al., 2017), Section 3.6; Appendix I.3.
    """

    functional = (squeeze2d_forward, squeeze2d_inverse)

    def __init__(self, factor: int = 2):
        if int(factor) < 2:
            raise ValueError(f"Squeeze2d: factor must be an int >= 2, got {factor}.")
        self.factor = int(factor)

    def functional_args(self):
        return {"factor": self.factor, "name": self.name}
