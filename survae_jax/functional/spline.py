"""Monotone rational-quadratic spline with linear tails: an elementwise family (Neural Spline Flows)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from survae_jax.functional.elementwise import ElementwiseFamily
from survae_jax.functional.implicit import implicit_inverse

Array = jax.Array


def check_theta(x: Array, theta: Array, num_params: int, name: str) -> Array:
    """``theta`` broadcast to ``x.shape + (num_params,)``, or a ``ValueError`` naming ``name``."""
    shape = tuple(jnp.shape(theta))
    try:
        ok = bool(shape) and shape[-1] == num_params and jnp.broadcast_shapes(shape[:-1], x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected theta of shape {tuple(x.shape) + (num_params,)} (input shape + "
                         f"(num_params={num_params},)), got {shape}.")
    return jnp.broadcast_to(theta, (*x.shape, num_params))


def _take(a: Array, k: Array) -> Array:
    return jnp.take_along_axis(a, k[..., None], axis=-1)[..., 0]


def _knots(u: Array, min_size: float, bound: float) -> Array:
    """``K + 1`` increasing knots from ``-bound`` to ``bound``, bin sizes ``>= 2 bound min_size``."""
    k = u.shape[-1]
    c = jnp.cumsum(min_size + (1.0 - min_size * k) * jax.nn.softmax(u, axis=-1), axis=-1)
    edge = jnp.full(u.shape[:-1] + (1,), bound, u.dtype)
    # the last knot is set to exactly +bound: the rounded cumsum may miss 1, and the tail must join
    return jnp.concatenate([-edge, -bound + 2.0 * bound * c[..., :-1], edge], axis=-1)


def _bin_forward(x, xk, w, yk, h, d0, d1):
    """``(y, log dy/dx)`` of one bin, ``xi = (x - xk) / w`` (Durkan et al. 2019, Eqs. 4-5).

    The denominator is written ``s (xi^2 + (1 - xi)^2) + (d0 + d1) xi (1 - xi)``: a sum of
    non-negative terms, ``>= s / 2``, so never zero or negative by cancellation."""
    s = h / w
    xi = (x - xk) / w
    t = xi * (1.0 - xi)
    den = s * (xi * xi + (1.0 - xi) * (1.0 - xi)) + (d0 + d1) * t
    y = yk + h * (s * xi * xi + d0 * t) / den
    log_dy = 2.0 * jnp.log(s) + jnp.log(d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) * (1.0 - xi)) - 2.0 * jnp.log(den)
    return y, log_dy


def _bin_solve(y, xk, w, yk, h, d0, d1):
    """``x`` in the bin with ``_bin_forward(x) = y``: the root in ``[0, 1]`` of ``a xi^2 + b xi + c``,
    ``a = h (s - d0) + dy m``, ``b = h d0 - dy m``, ``c = -s dy``, ``dy = y - yk``,
    ``m = d0 + d1 - 2 s``; ``xi = 2c / (-b - sqrt(b^2 - 4ac))`` for ``b >= 0`` and
    ``(-b + sqrt(b^2 - 4ac)) / 2a`` for ``b < 0`` (then ``a > h s > 0``): neither form subtracts
    nearly equal numbers. The coefficients are divided by their largest magnitude first (no
    overflow of ``b^2``); the discriminant is clamped at 0 and ``xi`` to ``[0, 1]`` (round-off only)."""
    s = h / w
    dy = y - yk
    m = d0 + d1 - 2.0 * s
    a, b, c = h * (s - d0) + dy * m, h * d0 - dy * m, -s * dy
    norm = jnp.maximum(jnp.maximum(jnp.abs(a), jnp.abs(b)), jnp.abs(c))  # > 0: a + b = h s > 0
    a, b, c = a / norm, b / norm, c / norm
    r = jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0))
    pos = b >= 0.0
    xi = jnp.where(pos, 2.0 * c / jnp.where(pos, -b - r, -1.0), (r - b) / jnp.where(pos, 1.0, 2.0 * a))
    return xk + jnp.clip(xi, 0.0, 1.0) * w


_bin_inverse = implicit_inverse(lambda x, *p: _bin_forward(x, *p)[0], lambda x, *p: _bin_forward(x, *p)[1],
                                _bin_solve)


@dataclasses.dataclass(frozen=True)
class RationalQuadraticSpline(ElementwiseFamily):
    """Monotone rational-quadratic spline on ``[-B, B]``, the identity outside (linear tails).

    ``theta = (u_w, u_h, u_d)``, ``K + K + (K - 1)`` numbers per element (``num_params = 3K - 1``),
    ``B = tail_bound``, ``K = num_bins``:

    - knots: widths ``w = 2B (m_w + (1 - K m_w) softmax(u_w))``, ``x_0 = -B``, ``x_k = x_0 + w_1 + ...``,
      ``x_K = B``; heights and ``y_k`` the same from ``u_h``; interior derivatives
      ``d_k = m_d + softplus(u_d + log(e^(1 - m_d) - 1))`` (``theta = 0``: equal bins and unit
      derivatives, the identity); ``d_0 = d_K = 1``, so the spline joins the tails with slope 1;
    - forward, ``x`` in bin ``k``, ``xi = (x - x_k) / w_k``, ``s_k = h_k / w_k``:
      ``z = y_k + h_k (s_k xi^2 + d_k xi (1 - xi)) / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi))``;
    - ``log dz/dx = 2 log s_k + log(d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2)
      - 2 log(s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi))``;
    - inverse: ``xi`` the root in ``[0, 1]`` of a quadratic (``_bin_solve``: ``2c / (-b - sqrt(b^2 - 4ac))``
      and its companion form), gradients by the implicit function theorem;
    - ``|x| >= B``: ``z = x``, ``log dz/dx = 0``.

    The trap: ``where(inside, spline(x), x)`` alone gives NaN gradients, because the spline of a
    tail input (far outside its bins) is still evaluated and differentiated. Here the spline runs on
    ``where(inside, x, 0)`` and the result is selected after, so tail entries get exactly zero
    gradient w.r.t. ``theta`` and any ``x`` (1e4 B, inf) passes through untouched. Bins are found by
    counting knots ``<= x`` (never out of range); the quadratic's discriminant is clamped at 0; no
    formula divides by a difference that can cancel. ``m_w, m_h, m_d``: ``min_bin_width``,
    ``min_bin_height``, ``min_derivative`` (``K m_w < 1``).

    Source: Durkan et al., "Neural Spline Flows" (2019), Eqs. 4-8 and Appendix A; Gregory &
    Delbourgo (1982) for the spline.
    """

    num_bins: int = 8
    tail_bound: float = 3.0
    min_bin_width: float = 1e-3
    min_bin_height: float = 1e-3
    min_derivative: float = 1e-3

    def __post_init__(self):
        k = self.num_bins
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"RationalQuadraticSpline: num_bins must be an int >= 1, got {k!r}.")
        if not (isinstance(self.tail_bound, (int, float)) and 0 < self.tail_bound < math.inf):
            raise ValueError(f"RationalQuadraticSpline: tail_bound must be a finite number > 0, got {self.tail_bound!r}.")
        for what in ("min_bin_width", "min_bin_height"):
            v = getattr(self, what)
            if not 0.0 < v * k < 1.0:
                raise ValueError(f"RationalQuadraticSpline: {what} * num_bins must be in (0, 1), got {v} * {k}.")
        if not 0.0 < self.min_derivative < 1.0:
            raise ValueError(f"RationalQuadraticSpline: min_derivative must be in (0, 1), got {self.min_derivative}.")

    @property
    def num_params(self) -> int:
        return 3 * self.num_bins - 1

    def _params(self, v: Array, theta: Array, inverse: bool):
        """The bin of every entry of ``v`` and its ``(x_k, w_k, y_k, h_k, d_k, d_{k+1})``."""
        theta = check_theta(v, theta, self.num_params, "RationalQuadraticSpline")
        k, b = self.num_bins, self.tail_bound
        xs = _knots(theta[..., :k], self.min_bin_width, b)
        ys = _knots(theta[..., k:2 * k], self.min_bin_height, b)
        shift = math.log(math.expm1(1.0 - self.min_derivative))
        one = jnp.ones(v.shape + (1,), v.dtype)
        d = jnp.concatenate([one, self.min_derivative + jax.nn.softplus(theta[..., 2 * k:] + shift), one], axis=-1)
        knots = ys if inverse else xs
        i = jnp.sum(v[..., None] >= knots[..., 1:-1], axis=-1)  # in 0 .. K-1 whatever v is
        xk, yk = _take(xs, i), _take(ys, i)
        return xk, _take(xs, i + 1) - xk, yk, _take(ys, i + 1) - yk, _take(d, i), _take(d, i + 1)

    def forward(self, x, theta):
        x = x.astype(jnp.result_type(x, theta))
        inside = jnp.abs(x) < self.tail_bound
        x_in = jnp.where(inside, x, 0.0)
        z, log_dz = _bin_forward(x_in, *self._params(x_in, theta, inverse=False))
        return jnp.where(inside, z, x), jnp.where(inside, log_dz, 0.0)

    def inverse(self, z, theta):
        z = z.astype(jnp.result_type(z, theta))
        inside = jnp.abs(z) < self.tail_bound
        z_in = jnp.where(inside, z, 0.0)
        return jnp.where(inside, _bin_inverse(z_in, *self._params(z_in, theta, inverse=True)), z)
