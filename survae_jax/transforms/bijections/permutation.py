"""Fixed permutations of one axis: ``Reverse`` and ``Permute`` (a random permutation from a key)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.transforms.base import Bijection


class Permute(Bijection):
    """Permute one axis by a fixed permutation: ``z = x[..., perm]`` along ``axis``; V = 0.

    Forward (X -> Z): ``z = take(x, perm, axis)``. Inverse (Z -> X): ``x = take(z, perm^-1, axis)``.
    A permutation matrix has ``|det| = 1``, so the likelihood contribution is 0 nats.

    Args:
      permutation: a permutation of ``range(n)`` (sequence of ints), or ``None`` to draw one
        from ``key``.
      axis: the axis to permute, counted with the batch axis (``-1``: features/channels; ``1``:
        the point axis of a point cloud ``(B, N, 2)``). Must not be the batch axis 0.
      size: the length ``n`` of that axis when drawing from ``key``.
      key: a PRNG key for a random permutation (drawn once, at construction).

    Raises:
      ValueError: not a permutation, a missing size/key, axis 0 (at construction); an input of
        rank < 2 or non-floating, or whose ``axis`` has a length other than ``n``.

    Shapes: ``x`` and ``z`` ``(B, ..., n, ...)`` with ``n`` on ``axis``, e.g. ``(B, D)`` or point
    clouds ``(B, N, 2)`` with ``axis=1``; V ``(B,)`` zeros (nats).

    Source: RealNVP (Dinh et al., 2017) alternating masks; Glow (Kingma & Dhariwal, 2018).
    """

    def __init__(self, permutation=None, *, axis: int = -1, size: int | None = None, key=None):
        if permutation is None:
            if size is None or key is None:
                raise ValueError("Permute: give a permutation, or both size= and key= to draw one.")
            permutation = np.asarray(jax.random.permutation(key, int(size)))
        perm = np.asarray(permutation, dtype=np.int64)
        if perm.ndim != 1 or sorted(perm.tolist()) != list(range(perm.size)):
            raise ValueError(f"Permute: expected a permutation of range(n), got {perm.tolist()}.")
        if axis == 0:
            raise ValueError("Permute: axis 0 is the batch axis; permute an event axis.")
        self.axis = int(axis)
        # Kept as Python tuples: static, hashable, and never trained.
        self.permutation = tuple(int(i) for i in perm)
        self.inverse_permutation = tuple(int(i) for i in np.argsort(perm))

    def _check(self, x):
        self._check_input(x, min_ndim=2)
        n = len(self.permutation)
        if x.shape[self.axis] != n:
            raise ValueError(
                f"{self.name}: expected axis {self.axis} of length {n}, got input of shape {tuple(x.shape)}."
            )

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        z = jnp.take(x, jnp.asarray(self.permutation), axis=self.axis)
        return z, jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return jnp.take(z, jnp.asarray(self.inverse_permutation), axis=self.axis)


class Reverse(Permute):
    """Reverse the order of one axis, ``z = flip(x, axis)``; V = 0 nats. Its own inverse.

    Args:
      size: the length of the axis.
      axis: the axis to reverse (``-1`` by default; ``1`` for the points of a point cloud).

    Forward (X -> Z) and inverse (Z -> X): ``flip`` along ``axis``.

    Shapes: ``x`` and ``z`` ``(B, ..., size, ...)`` with ``size`` on ``axis``, e.g. ``(B, D)`` or
    ``(B, N, 2)`` with ``axis=1``; V ``(B,)`` zeros (nats).

    Raises:
      ValueError: ``axis=0`` (at construction); an input of rank < 2 or non-floating, or whose
        ``axis`` has a length other than ``size``.

    Source: Appendix H.4, Listing 1 (``Reverse()`` between couplings); RealNVP (Dinh et al., 2017).
    """

    def __init__(self, size: int, *, axis: int = -1):
        super().__init__(list(range(int(size)))[::-1], axis=axis)
