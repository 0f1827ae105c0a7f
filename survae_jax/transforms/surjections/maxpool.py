"""2x2 max pooling of NHWC images as an inference surjection: ``MaxPoolSurjection2d``.

Source: Nielsen et al. (2020), "SurVAE Flows", appendix Appendix I.3 ("MaxPoolFlow"), the image
case of the max surjection of Table 7 and Appendix E.2 (Eqs. 28-32) applied to each 2x2 window.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import Array, InferenceSurjection, sum_except_batch
from survae_jax.transforms.surjections.max import _below_log_prob, _fill_below

_LOG4 = math.log(4.0)


# ----------------------------------------------------------------- parameter-free maths
def _to_windows(x: Array) -> Array:
    """``(B, H, W, C) -> (B, H/2, W/2, C, 4)``; window order (row, col) = (0,0), (0,1), (1,0), (1,1)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)


def _from_windows(x: Array) -> Array:
    """Inverse of :func:`_to_windows`: ``(B, h, w, C, 4) -> (B, 2h, 2w, C)``."""
    b, h, w, c, _ = x.shape
    x = x.reshape(b, h, w, c, 2, 2)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c)


class MaxPoolSurjection2d(InferenceSurjection):
    """Inference 2x2 max-pooling surjection on NHWC images (Appendix I.3; Table 7 "Max").

    Every non-overlapping 2x2 window of every channel is one max surjection with ``K = 4``.

    Directions (``forward`` = inference X -> Z):

    - forward: ``z[b, i, j, c] = max`` of the window ``x[b, 2i:2i+2, 2j:2j+2, c]``;
      deterministic. On ties the first position in row-major window order wins.
    - inverse: for each window, a position ``k`` uniform over the 4 (``p(k|z) = 1/4``) gets the
      pooled value, the 3 others get ``z - e`` with ``e ~ HalfNormal(1)`` (standard half-normal);
      needs ``key``. Pooling the result returns ``z`` exactly.
    - V = ``sum over windows [log(1/4) + sum_{j != k} log HN(z - x_j)]`` (Eq. 32), exact, with
      ``log HN(e) = 0.5 log(2/pi) - e^2 / 2``.

    No learned parts ("the simplest possible choice" of Appendix I.3).

    Args: none (``p(k|z) = 1/4`` and the half-normal's scale 1 are fixed).

    Shapes: ``x: (B, H, W, C)`` with even ``H`` and ``W``; ``z: (B, H/2, W/2, C)``; V: ``(B,)`` nats.

    Raises:
      ValueError: input not of rank 4, odd ``H`` or ``W``, not floating; ``inverse`` without ``key``.

    Source: Nielsen et al. (2020), "SurVAE Flows", Appendix I.3 ("MaxPoolFlow"), with the max
    surjection of Table 7 (row "Max") and Appendix E.2, Eqs. 28-32, on each 2x2 window.
    """

    def __init__(self):
        pass

    def _check(self, x: Array, what: str, even: bool) -> None:
        self._check_input(x, ndim=4, what=what)
        if even and (x.shape[1] % 2 or x.shape[2] % 2):
            raise ValueError(
                f"{self.name}: expected {what} of shape (B, H, W, C) with even H and W, got "
                f"{tuple(x.shape)}."
            )

    def forward(self, x, *, key=None, context=None):
        self._check(x, "x", even=True)
        win = _to_windows(x)
        m = jnp.max(win, axis=-1, keepdims=True)
        k = jnp.argmax(win, axis=-1)[..., None]
        below = sum_except_batch(_below_log_prob(win, m, k, -1, 1.0))
        n = math.prod(m.shape[1:])
        return m[..., 0], below - n * _LOG4

    def inverse(self, z, *, key=None, context=None):
        key = self._require_key(key, "inverse")
        self._check(z, "z", even=False)
        k_key, e_key = jax.random.split(key)
        k = jax.random.randint(k_key, (*z.shape, 1), 0, 4, jnp.int32)
        return _from_windows(_fill_below(e_key, z[..., None], k, 4, -1, 1.0))
