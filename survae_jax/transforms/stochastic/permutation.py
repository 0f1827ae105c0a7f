"""``StochasticPermutation``: a fresh uniformly random permutation per example (Appendix G)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import StochasticTransform

Array = jax.Array


def _random_permute(key: Array, x: Array, axis: int) -> Array:
    """Permute ``x`` ``(B, ...)`` along ``axis`` by an independent uniform permutation per example."""
    xm = jnp.moveaxis(x, axis, 1)
    n = xm.shape[1]
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, x.shape[0]))
    out = jax.vmap(lambda row, p: row[p])(xm, perms)
    return jnp.moveaxis(out, 1, axis)


class StochasticPermutation(StochasticTransform):
    """Shuffle one axis uniformly at random, independently per example, in both directions.

    Forward (X -> Z, stochastic): ``I ~ Unif(S_N)`` (the ``N!`` permutations), ``z = x_I``.

    Inverse (Z -> X, stochastic): a fresh ``I ~ Unif(S_N)``, ``x = z_I``.

    Likelihood contribution (Appendix G, Eqs. 43-47): ``V = 0`` nats, shape ``(B,)``: the
    forward and inverse conditionals are the same uniform mixture of permutations, so the
    ratio ``p(x|z) / q(z|x)`` is 1. The layer makes a flow's density exchangeable along
    ``axis`` (sets of points). ``exact`` is ``False``: ``log p(z) + V`` is a one-sample
    bound, tight when ``p(z)`` is itself exchangeable.

    Args:
      axis: the permuted axis, counted with the batch axis (``1``: the points of a point
        cloud ``(B, N, 2)``). Must not be the batch axis.

    Shapes: ``x`` and ``z`` ``(B, ...)`` alike, ``V`` ``(B,)``.

    Raises:
      ValueError: ``axis`` 0 (at construction), a missing ``key``, an input of rank < 2 or
        without ``axis``.

    Source: Nielsen et al. (2020), Appendix G.
    """

    def __init__(self, axis: int = 1):
        if axis == 0:
            raise ValueError("StochasticPermutation: axis 0 is the batch axis; permute an event axis.")
        self.axis = int(axis)

    def _axis(self, x: Array, what: str) -> int:
        self._check_input(x, min_ndim=2, floating=False, what=what)
        if not -x.ndim <= self.axis < x.ndim or self.axis % x.ndim == 0:
            raise ValueError(
                f"{self.name}: axis {self.axis} is not an event axis of {what} of shape {tuple(x.shape)}."
            )
        return self.axis % x.ndim

    def forward(self, x, *, key=None, context=None):
        """``z = x`` shuffled along ``axis`` per example; ``V = 0`` ``(B,)``."""
        key = self._require_key(key, "forward")
        z = _random_permute(key, x, self._axis(x, "input"))
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        return z, jnp.zeros((x.shape[0],), dtype)

    def inverse(self, z, *, key=None, context=None):
        """``x = z`` shuffled along ``axis`` per example."""
        key = self._require_key(key, "inverse")
        return _random_permute(key, z, self._axis(z, "latent"))
