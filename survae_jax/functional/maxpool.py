"""2x2 max-pooling of NHWC images (Appendix I.3 "MaxPoolFlow"): the max surjection of
:mod:`survae_jax.functional.max` with ``K = 4``, uniform ``p(k|z) = 1/4`` and ``HN(1)`` gaps on
every non-overlapping 2x2 window of every channel. Window order: (0,0), (0,1), (1,0), (1,1).
"""

from __future__ import annotations

import jax

from survae_jax.functional.max import max_surjection
from survae_jax.functional.surjection import Surjective, generative_pair, inference_pair

Array = jax.Array


def to_windows(x: Array) -> Array:
    """``(B, H, W, C) -> (B, H/2, W/2, C, 4)``."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)


def from_windows(x: Array) -> Array:
    """``(B, h, w, C, 4) -> (B, 2h, 2w, C)``, the inverse of :func:`to_windows`."""
    b, h, w, c, _ = x.shape
    return x.reshape(b, h, w, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c)


def max_pool_surjection(name: str = "MaxPoolSurjection2d") -> Surjective:
    """``(B, H, W, C)`` with even ``H``, ``W`` -> ``(B, H/2, W/2, C)``; fibre ``(k, e)`` per window."""
    op = max_surjection(4, axis=-1, name=name)

    def check(t: Array, even: bool) -> None:
        if t.ndim != 4:
            raise ValueError(f"{name}: expected a tensor of rank 4 (B, H, W, C), got shape {tuple(t.shape)}.")
        if even and (t.shape[1] % 2 or t.shape[2] % 2):
            raise ValueError(f"{name}: expected (B, H, W, C) with even H and W, got {tuple(t.shape)}.")

    def split(x):
        check(x, True)
        return op.split(to_windows(x))

    def merge(z, s):
        check(z, False)
        return from_windows(op.merge(z, s))

    def check_latent(z):
        check(z, False)
        op.check_latent(z)

    return Surjective(name, split, merge, op.fibre, check_latent=check_latent)


max_pool_forward, max_pool_inverse = inference_pair(max_pool_surjection)
generative_max_pool_forward, generative_max_pool_inverse = generative_pair(max_pool_surjection)
