"""``Conv1x1``: the invertible 1x1 convolution of Glow, dense or LU-parametrised."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.functional.linear import conv1x1_forward, conv1x1_inverse, conv1x1_lu_init, conv1x1_lu_weight
from survae_jax.transforms.base import Bijection, Fixed


class Conv1x1(Bijection):
    """``z[b, ..., i] = sum_j W[i, j] x[b, ..., j]`` on the last axis, ``x = W^{-1} z`` per position,
    ``V = (positions) log|det W|`` (``H * W`` for ``(B, H, W, C)``; also ``(B, C)``, ``(B, N, C)``).

    ``W`` starts at a random rotation. Dense (``lu=False``): ``W`` is the parameter,
    ``log|det W|`` by ``slogdet`` (O(C^3)). LU (``lu=True``): ``W = P L (U + diag(sign exp(log_s)))``
    (:func:`~survae_jax.functional.conv1x1_lu_weight`), ``log|det W| = sum(log_s)``, with ``P`` and
    ``sign`` fixed (saved ``Fixed`` state) from the LU decomposition of the initial rotation (drawn from ``rngs``).

    Source: Glow (Kingma & Dhariwal, 2018), Section 3.2; Appendix I.3.
    """

    functional = (conv1x1_forward, conv1x1_inverse)

    def __init__(self, num_channels: int, *, lu: bool = False, rngs: nnx.Rngs):
        c = int(num_channels)
        self.num_channels, self.lu = c, bool(lu)
        q, _ = jnp.linalg.qr(jax.random.normal(rngs.params(), (c, c), jnp.float32))
        if not self.lu:
            self.weight = nnx.Param(q)
            return
        lower, upper, log_s, perm, sign = conv1x1_lu_init(q)
        self.permutation, self.sign = Fixed(jnp.asarray(perm, jnp.int32)), Fixed(jnp.asarray(sign, jnp.float32))
        self.lower = nnx.Param(jnp.asarray(lower, jnp.float32))
        self.upper = nnx.Param(jnp.asarray(upper, jnp.float32))
        self.log_s = nnx.Param(jnp.asarray(log_s, jnp.float32))

    def functional_args(self):
        if not self.lu:
            return {"weight": self.weight[...], "name": self.name}
        w, log_det = conv1x1_lu_weight(self.lower[...], self.upper[...], self.log_s[...],
                                          self.permutation[...], self.sign[...])
        return {"weight": w, "log_det": log_det, "name": self.name}
