"""``Conv1x1``: the invertible 1x1 convolution of Glow, dense or LU-parametrised."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from flax import nnx

from survae_jax.transforms.base import Array, Bijection


def _mix(x: Array, w: Array) -> Array:
    """Channel mixing ``y[..., i] = sum_j w[i, j] x[..., j]``."""
    return jnp.einsum("ij,...j->...i", w, x)


class Conv1x1(Bijection):
    """Invertible 1x1 convolution: the same ``C x C`` matrix ``W`` mixes the channels everywhere.

    Forward (X -> Z): ``z[b, ..., i] = sum_j W[i, j] x[b, ..., j]`` on the last axis (NHWC
    images ``(B, H, W, C)``; also ``(B, C)`` vectors and ``(B, N, C)`` point clouds).
    V = ``(number of positions) * log|det W|`` nats (``H * W`` positions for images).
    Inverse (Z -> X): ``x = W^{-1} z`` per position.

    Parametrisations:

    - dense (``lu=False``): ``W`` is a free parameter, initialised to a random rotation
      (orthogonal, ``det = +-1``); ``log|det W|`` from ``slogdet`` (O(C^3) per call).
    - LU (``lu=True``): ``W = P L (U + diag(sign * exp(log_s)))`` with ``P`` a fixed permutation,
      ``L`` unit lower triangular, ``U`` strictly upper triangular and ``sign`` fixed, all taken
      from the LU decomposition of the same random rotation; ``log|det W| = sum(log_s)``
      (O(C)). ``P`` and ``sign`` are static (never trained).

    Args:
      num_channels: ``C``, the length of the last axis.
      lu: use the LU parametrisation.
      rngs: ``nnx.Rngs`` for the initial rotation.

    Raises:
      ValueError: rank < 2, a non-floating input, or a last axis other than ``num_channels``.

    Source: Glow (Kingma & Dhariwal, 2018), Section 3.2; Appendix I.3 (one per flow step).
    """

    def __init__(self, num_channels: int, *, lu: bool = False, rngs: nnx.Rngs):
        c = int(num_channels)
        self.num_channels = c
        self.lu = bool(lu)
        q, _ = jnp.linalg.qr(jax.random.normal(rngs.params(), (c, c), jnp.float32))
        if not self.lu:
            self.weight = nnx.Param(q)
            return
        p, l, u = (np.asarray(a, np.float64) for a in jax.scipy.linalg.lu(np.asarray(q, np.float64)))
        s = np.diag(u)
        self.permutation = tuple(int(i) for i in np.argmax(p, axis=1))  # (P @ M)[i] = M[perm[i]]
        self.sign = tuple(float(v) for v in np.sign(s))
        self.lower = nnx.Param(jnp.asarray(np.tril(l, -1), jnp.float32))
        self.upper = nnx.Param(jnp.asarray(np.triu(u, 1), jnp.float32))
        self.log_s = nnx.Param(jnp.asarray(np.log(np.abs(s)), jnp.float32))

    def _weight_and_logdet(self, dtype) -> tuple[Array, Array]:
        """Return ``(W, log|det W|)`` in ``dtype``."""
        if not self.lu:
            w = self.weight[...].astype(dtype)
            return w, jnp.linalg.slogdet(w)[1]
        c = self.num_channels
        eye = jnp.eye(c, dtype=dtype)
        lower = jnp.tril(self.lower[...].astype(dtype), -1) + eye
        log_s = self.log_s[...].astype(dtype)
        upper = jnp.triu(self.upper[...].astype(dtype), 1) + jnp.diag(jnp.asarray(self.sign, dtype) * jnp.exp(log_s))
        w = (lower @ upper)[jnp.asarray(self.permutation)]
        return w, jnp.sum(log_s)

    def _check(self, x: Array) -> None:
        self._check_input(x, min_ndim=2)
        if x.shape[-1] != self.num_channels:
            raise ValueError(
                f"{self.name}: expected input of shape (B, ..., {self.num_channels}) (channels last), "
                f"got {tuple(x.shape)}."
            )

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        w, log_det = self._weight_and_logdet(x.dtype)
        positions = math.prod(x.shape[1:-1])
        return _mix(x, w), jnp.broadcast_to(positions * log_det, (x.shape[0],))

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        w, _ = self._weight_and_logdet(z.dtype)
        return _mix(z, jnp.linalg.inv(w))
