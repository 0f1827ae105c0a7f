"""``Squeeze2d``: trade spatial size for channels, NHWC (RealNVP's squeeze)."""

from __future__ import annotations

import jax.numpy as jnp

from survae_jax.transforms.base import Array, Bijection


def squeeze2d(x: Array, f: int) -> Array:
    """Space-to-channels reshape, the forward (X -> Z) map of :class:`Squeeze2d`.

    Shapes: ``(B, H, W, C) -> (B, H/f, W/f, C f^2)``; output channel ``c f^2 + i f + j`` holds
    ``x[b, f h + i, f w + j, c]``. A permutation of the entries (log|det| = 0 nats).

    Raises:
      ValueError: ``x`` not of rank 4; TypeError: ``H`` or ``W`` not divisible by ``f`` (from
        the reshape). No other checks: :class:`Squeeze2d` validates first, naming the layer.

    Source: RealNVP (Dinh et al., 2017), Section 3.6.
    """
    b, h, w, c = x.shape
    t = x.reshape(b, h // f, f, w // f, f, c).transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(b, h // f, w // f, c * f * f)


def unsqueeze2d(z: Array, f: int) -> Array:
    """Inverse of :func:`squeeze2d`, the inverse (Z -> X) map of :class:`Squeeze2d`.

    Shapes: ``(B, H, W, C f^2) -> (B, H f, W f, C)``.

    Raises:
      ValueError: ``z`` not of rank 4; TypeError: channels not divisible by ``f^2`` (from the
        reshape). :class:`Squeeze2d` validates first, naming the layer.

    Source: RealNVP (Dinh et al., 2017), Section 3.6.
    """
    b, h, w, c = z.shape
    t = z.reshape(b, h, w, c // (f * f), f, f).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(b, h * f, w * f, c // (f * f))


class Squeeze2d(Bijection):
    """Squeeze NHWC images: each ``f x f`` spatial patch becomes ``f^2`` channels; V = 0 nats.

    Forward (X -> Z): ``(B, H, W, C) -> (B, H/f, W/f, C f^2)`` with
    ``z[b, h, w, c f^2 + i f + j] = x[b, f h + i, f w + j, c]`` (channel-major, the order of the
    reference code's default squeeze). Inverse (Z -> X): the reverse reshape. A permutation of
    the entries, so ``|det J| = 1``.

    Args:
      factor: ``f >= 2``.

    Raises:
      ValueError: input not of rank 4 (NHWC), not floating, or ``H``, ``W`` not divisible by ``f``
        (forward) / channels not divisible by ``f^2`` (inverse).

    Source: RealNVP (Dinh et al., 2017), Section 3.6; Appendix I.3 (initial squeezing layer).
    """

    def __init__(self, factor: int = 2):
        if int(factor) < 2:
            raise ValueError(f"Squeeze2d: factor must be an int >= 2, got {factor}.")
        self.factor = int(factor)

    def forward(self, x, *, key=None, context=None):
        f = self.factor
        self._check_input(x, ndim=4)
        if x.shape[1] % f or x.shape[2] % f:
            raise ValueError(
                f"{self.name}: expected input (B, H, W, C) with H and W divisible by {f}, got {tuple(x.shape)}."
            )
        return squeeze2d(x, f), jnp.zeros((x.shape[0],), x.dtype)

    def inverse(self, z, *, key=None, context=None):
        f = self.factor
        self._check_input(z, ndim=4)
        if z.shape[3] % (f * f):
            raise ValueError(
                f"{self.name}: expected latent (B, H, W, C) with C divisible by {f * f}, got {tuple(z.shape)}."
            )
        return unsqueeze2d(z, f)
