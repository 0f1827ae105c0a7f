"""Fixed permutations of one axis: ``Permute`` (given, or random at construction) and ``Reverse``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.functional.linear import permute_forward, permute_inverse
from survae_jax.transforms.base import Bijection, Fixed


class Permute(Bijection):
    """``z = take(x, perm, axis)``, ``x = take(z, perm^-1, axis)``, ``V = 0``; ``perm`` given, or
    drawn once at construction from ``rngs`` with ``size``; ``axis`` counted with the batch axis
    (``-1``: features; ``1``: the points of ``(B, N, 2)``). Source: RealNVP (Dinh et al., 2017); Glow.
    """

    functional = (permute_forward, permute_inverse)

    def __init__(self, permutation=None, *, axis: int = -1, size: int | None = None, rngs: nnx.Rngs | None = None):
        if permutation is None:
            if size is None or rngs is None:
                raise ValueError("Permute: give a permutation, or both size= and rngs= to draw one.")
            permutation = np.asarray(jax.random.permutation(rngs.params(), int(size)))
        perm = np.asarray(permutation, dtype=np.int64)
        if perm.ndim != 1 or sorted(perm.tolist()) != list(range(perm.size)):
            raise ValueError(f"Permute: expected a permutation of range(n), got {perm.tolist()}.")
        if axis == 0:
            raise ValueError("Permute: axis 0 is the batch axis; permute an event axis.")
        self.axis = int(axis)
        self.permutation = Fixed(jnp.asarray(perm, jnp.int32))  # saved with the model, never trained

    def functional_args(self):
        return {"permutation": self.permutation[...], "axis": self.axis, "name": self.name}


class Reverse(Permute):
    """``z = flip(x, axis)`` (``size`` its length), its own inverse, ``V = 0``.

    Source: Appendix H.4, Listing 1 (``Reverse()`` between couplings).
    """

    def __init__(self, size: int, *, axis: int = -1):
        super().__init__(list(range(int(size)))[::-1], axis=axis)
