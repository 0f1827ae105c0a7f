"""The sort surjection in both directions: ``SortSurjection`` and ``GenerativeSortSurjection``.

Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 and Table 7 (row "Sort") and
Appendix F (F.1 generative direction, Eqs. 33-37; F.2 inference direction, Eqs. 38-42).

What is sorted. The slices of the input along ``axis`` are reordered:

- point clouds ``(B, N, C)`` with ``axis=1``: the ``N`` points are ordered by their coordinate
  ``by`` (``x[..., by]``);
- when ``axis`` is the last axis (plain vectors ``(B, D)`` with the default ``axis=1``, or
  ``axis=-1``) the values themselves are sorted and ``by`` is not used.

Ties. Points are ordered *lexicographically*: by coordinate ``by`` first, then by the other
coordinates in index order. So ``forward`` depends only on the multiset of points: two inputs
that differ by a permutation of their points give the same ``z`` bit for bit, even when
coordinate ``by`` ties, and the right-inverse ``forward(inverse(z)) == z`` holds exactly (points
that tie on every coordinate are equal, so their order does not matter). ``-0.0`` and ``0.0``
compare equal.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from survae_jax.transforms.base import Array, GenerativeSurjection, InferenceSurjection


# ----------------------------------------------------------------- parameter-free maths
def _sort_index(x: Array, axis: int, by: int | None) -> Array:
    """Indices that sort ``x`` along ``axis``; shape ``x.shape`` (``by is None``) or ``x.shape[:-1]``.

    With ``by``, ordered lexicographically by ``x[..., by]``, then the other coordinates.
    """
    if by is None:
        return jnp.argsort(x, axis=axis, stable=True)
    c = x.shape[-1]
    order = [by % c] + [i for i in range(c) if i != by % c]
    # jnp.lexsort sorts by the *last* key first.
    return jnp.lexsort([x[..., i] for i in reversed(order)], axis=axis)


def _permute(x: Array, idx: Array, axis: int, by: int | None) -> Array:
    """``x`` reordered along ``axis`` by ``idx`` (the same order for all coordinates of a point)."""
    if by is not None:
        idx = idx[..., None]
    return jnp.take_along_axis(x, idx, axis=axis)


def _random_index(key: Array, shape, axis: int) -> Array:
    """A uniformly random permutation of ``range(shape[axis])`` for every other index of ``shape``."""
    iota = jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis)
    return jax.random.permutation(key, iota, axis=axis, independent=True)


class _SortBase:
    """Shared argument handling of the two sort layers (not a Transform on its own)."""

    def _init(self, axis, by):
        if int(axis) == 0:
            raise ValueError(f"{type(self).__name__}: axis 0 is the batch axis; sort an event axis.")
        self.axis = int(axis)
        self.by = int(by)

    def _layout(self, x: Array, what: str) -> tuple[int, int | None, int]:
        """Check ``x``; return ``(axis, by or None, N)`` with a non-negative axis."""
        self._check_input(x, min_ndim=2, what=what)
        nd = x.ndim
        if not -nd < self.axis < nd:
            raise ValueError(
                f"{self.name}: axis {self.axis} does not fit {what} of shape {tuple(x.shape)} "
                "(expected (B, N, C) points with axis=1, or (B, D) vectors)."
            )
        axis = self.axis % nd
        if axis == nd - 1:
            return axis, None, x.shape[axis]
        c = x.shape[-1]
        if not -c <= self.by < c:
            raise ValueError(
                f"{self.name}: by={self.by} is not a coordinate of the last axis; expected {what} "
                f"of shape (B, ..., N, C) with C > {self.by}, got {tuple(x.shape)}."
            )
        return axis, self.by, x.shape[axis]

    @staticmethod
    def _log_num_orders(x: Array, axis: int, by: int | None) -> Array:
        """``log N!`` times the number of sorted slices per example, shape ``(B,)``."""
        n = x.shape[axis]
        key_shape = x.shape if by is None else x.shape[:-1]
        slices = 1
        for i, s in enumerate(key_shape[1:], start=1):
            if i != axis:
                slices *= s
        val = slices * gammaln(jnp.asarray(n + 1, x.dtype))
        return jnp.full((x.shape[0],), val, x.dtype)


class SortSurjection(_SortBase, InferenceSurjection):
    """Inference sort surjection ``z = sort x`` (Table 7, "Sort"; Appendix F.2).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``I = argsort x`` (lexicographic on points, see the module docstring), ``z = x_I``;
      deterministic.
    - inverse: ``I ~ p(I|z)`` uniform over the ``N!`` orders, ``x = z_{I^-1}`` (Eq. 38); needs
      ``key``. ``z`` must be sorted (it is, when it comes from ``forward``).
    - V = ``log p(I|z) = -log N!`` per sorted slice (Eq. 42), exact, ``log N! = gammaln(N + 1)``.

    Args:
      axis: the axis whose slices are sorted; ``1`` (the points of ``(B, N, C)``) by default.
      by: the coordinate of the last axis that orders the points; unused when ``axis`` is the
        last axis.

    Shapes: ``x, z: (B, N, C)`` (points) or ``(B, D)`` (vectors); V: ``(B,)`` nats.

    Raises:
      ValueError: rank < 2 or non-floating input; ``axis`` 0 or out of range; ``by`` out of range;
        ``inverse`` without ``key``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 7 (row "Sort") and Appendix F.2,
    Eqs. 38-42.
    """

    def __init__(self, axis: int = 1, by: int = 0):
        self._init(axis, by)

    def forward(self, x, *, key=None, context=None):
        axis, by, _ = self._layout(x, "x")
        z = _permute(x, _sort_index(x, axis, by), axis, by)
        return z, -self._log_num_orders(x, axis, by)

    def inverse(self, z, *, key=None, context=None):
        key = self._require_key(key, "inverse")
        axis, by, _ = self._layout(z, "z")
        shape = z.shape if by is None else z.shape[:-1]
        return _permute(z, _random_index(key, shape, axis), axis, by)


class GenerativeSortSurjection(_SortBase, GenerativeSurjection):
    """Generative sort surjection ``x = sort z`` (Table 6, "Sort"; Appendix F.1).

    Directions (``forward`` = inference X -> Z, the table's "Inverse" column):

    - forward: ``I ~ q(I|x)`` uniform over the ``N!`` orders, ``z = x_{I^-1}`` (Eq. 34); needs
      ``key``. ``x`` must be sorted (the data of a generative sort are sorted).
    - inverse: ``x = sort z`` (Eq. 33), lexicographic on points; deterministic, and
      ``inverse(forward(x)) == x`` exactly for sorted ``x``.
    - V = ``-log q(I|x) = +log N!`` per sorted slice (Eq. 37), a one-sample bound term (tight
      when ``p_Z`` is exchangeable).

    Args: as :class:`SortSurjection`.

    Shapes: ``x, z: (B, N, C)`` or ``(B, D)``; V: ``(B,)`` nats.

    Raises:
      ValueError: as :class:`SortSurjection`, and ``forward`` without ``key``.

    Source: Nielsen et al. (2020), "SurVAE Flows", appendix Table 6 (row "Sort") and Appendix F.1,
    Eqs. 33-37.
    """

    def __init__(self, axis: int = 1, by: int = 0):
        self._init(axis, by)

    def forward(self, x, *, key=None, context=None):
        key = self._require_key(key, "forward")
        axis, by, _ = self._layout(x, "x")
        shape = x.shape if by is None else x.shape[:-1]
        z = _permute(x, _random_index(key, shape, axis), axis, by)
        return z, self._log_num_orders(x, axis, by)

    def inverse(self, z, *, key=None, context=None):
        axis, by, _ = self._layout(z, "z")
        return _permute(z, _sort_index(z, axis, by), axis, by)
