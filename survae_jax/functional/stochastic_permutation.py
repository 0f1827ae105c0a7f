"""A fresh uniform permutation per example along one axis, both ways (Appendix G, Eqs. 43-47).

forward: ``I ~ Unif(S_N)``, ``z = x_I``; inverse: a fresh ``I``, ``x = z_I``; ``V = 0``: both
conditionals are the same uniform mixture of the ``N!`` permutations, so ``p(x|z) / q(z|x) = 1``.
``log p(z) + V`` is a one-sample bound, tight when ``p(z)`` is exchangeable along ``axis``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.functional.checks import event_axis
from survae_jax.functional.surjection import require_key

Array = jax.Array


def _permute(x: Array, key, axis: int, name: str, where: str) -> Array:
    key = require_key(key, f"{name}.{where}")
    if x.ndim < 2:
        raise ValueError(f"{name}: expected a tensor of rank >= 2 (batch first), got shape {tuple(x.shape)}.")
    xm = jnp.moveaxis(x, event_axis(x, axis, name), 1)
    keys = jax.random.split(key, x.shape[0])
    out = jax.vmap(lambda k, row: row[jax.random.permutation(k, row.shape[0])])(keys, xm)
    return jnp.moveaxis(out, 1, axis)


def stochastic_permutation_forward(x: Array, *, key=None, context=None, axis: int = 1,
                                   name: str = "StochasticPermutation") -> tuple[Array, Array]:
    """``(z, 0)``: ``x`` permuted along ``axis``, independently per example."""
    z = _permute(x, key, axis, name, "forward")
    return z, jnp.zeros((x.shape[0],), x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)


def stochastic_permutation_inverse(z: Array, *, key=None, context=None, axis: int = 1,
                                   name: str = "StochasticPermutation") -> Array:
    """``z`` permuted along ``axis`` by a fresh permutation per example."""
    return _permute(z, key, axis, name, "inverse")
