"""The sort surjection ``z = sort x`` (Tables 6 and 7, row "Sort"; Appendix F).

The slices along ``axis`` are reordered: the points of ``(B, N, C)`` (``axis=1``) by their
coordinate ``by``, or, when ``axis`` is the last axis, the values themselves (``by`` unused).
``split(x) = (x_I, J)`` with ``I`` the sorting order and ``J = I^-1``; ``merge(z, J) = z_J``.
Default fibre (Eq. 42): ``J`` uniform over the ``N!`` orders, ``log p(J|z) = -log N!`` per slice.
Ties: points are ordered lexicographically (coordinate ``by``, then the others in index order),
so ``forward`` depends only on the multiset of points and ``forward(inverse(z)) == z`` exactly;
``-0.0 == 0.0``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair

Array = jax.Array


def _layout(name: str, x: Array, axis: int, by: int) -> tuple[int, int | None]:
    """``(axis >= 0, by or None)`` for ``x``, or ``ValueError`` naming ``name``."""
    shape = tuple(x.shape)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected a tensor of rank >= 2 (batch first), got shape {shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}.")
    if not -x.ndim < axis < x.ndim:
        raise ValueError(
            f"{name}: axis {axis} does not fit a tensor of shape {shape} "
            "(expected (B, N, C) points with axis=1, or (B, D) vectors)."
        )
    if axis % x.ndim == x.ndim - 1:
        return x.ndim - 1, None
    if not -shape[-1] <= by < shape[-1]:
        raise ValueError(
            f"{name}: by={by} is not a coordinate of the last axis; expected (B, ..., N, C) "
            f"with C > {by}, got {shape}."
        )
    return axis % x.ndim, by % shape[-1]


def _permute(x: Array, idx: Array, by: int | None, axis: int) -> Array:
    """``x`` reordered along ``axis`` by ``idx`` (all coordinates of a point together)."""
    return jnp.take_along_axis(x, idx if by is None else idx[..., None], axis=axis)


class UniformOrders(Fibre):
    """``J`` uniform over the ``N!`` orders of every slice: ``log p(J|z) = -(slices) log N!``."""

    def __init__(self, axis, by, name):
        self.axis, self.by, self.name = axis, by, name

    def log_prob(self, j, *, context, key=None):
        axis, _ = _layout(self.name, context, self.axis, self.by)
        slices = math.prod(j.shape[1:]) // j.shape[axis]
        log_n = gammaln(jnp.asarray(j.shape[axis] + 1, context.dtype))
        return jnp.full((j.shape[0],), -slices * log_n, context.dtype)

    def sample(self, key, *, context):
        axis, by = _layout(self.name, context, self.axis, self.by)
        shape = context.shape if by is None else context.shape[:-1]
        iota = jax.lax.broadcasted_iota(jnp.int32, shape, axis)
        return jax.random.permutation(key, iota, axis=axis, independent=True)


def sort_surjection(axis: int = 1, by: int = 0, name: str = "SortSurjection") -> Surjective:
    """Sorting the slices of ``(B, N, C)`` points or ``(B, D)`` vectors along ``axis``."""
    if axis == 0:
        raise ValueError(f"{name}: axis 0 is the batch axis; sort an event axis.")

    def split(x):
        ax, b = _layout(name, x, axis, by)
        if b is None:
            order = jnp.argsort(x, axis=ax, stable=True)
        else:  # lexicographic: coordinate b first (jnp.lexsort sorts by its last key first)
            keys = [b] + [i for i in range(x.shape[-1]) if i != b]
            order = jnp.lexsort([x[..., i] for i in reversed(keys)], axis=ax)
        return _permute(x, order, b, ax), jnp.argsort(order, axis=ax)

    def merge(z, j):
        ax, b = _layout(name, z, axis, by)
        return _permute(z, j, b, ax)

    return Surjective(name, split, merge, UniformOrders(axis, by, name), None, lambda z: _layout(name, z, axis, by),
                      image_check=True)


sort_forward, sort_inverse = inference_pair(sort_surjection)
generative_sort_forward, generative_sort_inverse = generative_pair(sort_surjection)
