"""Elementwise nonlinear bijections: ``Sigmoid``, ``Logit``, ``Softplus``, ``SoftplusInverse``, ``Tanh``.

Each is ``z = f(x)`` applied to every entry, with ``V = sum over the event of log|f'(x)|``
(nats, shape ``(B,)``), the log-derivative written in a form that does not lose precision
where ``f`` saturates. Inputs are ``(B, ...)`` floating tensors of any event shape.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import Array, Bijection, sum_except_batch



def _logit(p: Array) -> Array:
    return jnp.log(p) - jnp.log1p(-p)


def _softplus_inv(y: Array) -> Array:
    """``log(exp(y) - 1) = y + log(1 - exp(-y))``, exact for large ``y``."""
    return y + jnp.log(-jnp.expm1(-y))


class _Elementwise(Bijection):
    """Shared forward/inverse of an elementwise bijection; subclasses give f, f^-1, log|f'|."""

    def _f(self, x: Array) -> Array:
        raise NotImplementedError

    def _f_inv(self, z: Array) -> Array:
        raise NotImplementedError

    def _log_df(self, x: Array) -> Array:
        raise NotImplementedError

    def forward(self, x, *, key=None, context=None):
        self._check_input(x, min_ndim=1)
        return self._f(x), sum_except_batch(self._log_df(x))

    def inverse(self, z, *, key=None, context=None):
        self._check_input(z, min_ndim=1)
        return self._f_inv(z)


class Sigmoid(_Elementwise):
    """Logistic sigmoid, R -> (0, 1).

    Forward (X -> Z, data to latent): ``z = sigmoid(x) = 1 / (1 + e^-x)``.
    Inverse (Z -> X): ``x = logit(z) = log z - log(1 - z)``.

    V (nats, returned by ``forward``) ``= sum log|dz/dx| = sum log sigmoid'(x)
    = -sum (softplus(x) + softplus(-x))``, finite for every finite ``x`` (about ``-|x|`` for
    large ``|x|``); in terms of the latent, ``V = sum [log z + log(1 - z)]``. The inverse
    direction's log-Jacobian is ``log|dx/dz| = -sum [log z + log(1 - z)] = -V``.

    Note the direction: in a flow (layers data side first) ``Sigmoid`` maps real data into
    ``(0, 1)``. A flow whose samples must lie in ``(0, 1)`` (a dequantization encoder) needs
    :class:`Logit` instead, whose inverse (the sampling direction) is the sigmoid.

    Args: none (parameter-free).

    Shapes: ``x`` and ``z`` ``(B, ...)`` (any event shape, ``(B,)`` included), same shape and
    dtype; V ``(B,)`` nats, summed over the event.

    Saturation: in float32 ``sigmoid(x)`` rounds to exactly 1 for ``x`` above about 17 (and
    underflows to 0 below about -88, where XLA flushes subnormals), so the round trip is lost
    there (the inverse gives ``+-inf``) although V stays finite. Inverse at the edges:
    ``z = 0 -> -inf``, ``z = 1 -> +inf`` (a log of zero, no NaN); ``z`` outside ``[0, 1]``
    gives NaN (a log of a negative number).

    Raises:
      ValueError: ``forward`` or ``inverse`` given a rank-0 or non-floating tensor (naming the
        layer and the shape/dtype). Values outside the domain are not checked (they may be
        traced): they give the ``inf``/NaN listed above.

    Source: the reference SurVAE code's ``Sigmoid``; Appendix A, Eq. 5.
    """

    def _f(self, x):
        return jax.nn.sigmoid(x)

    def _f_inv(self, z):
        return _logit(z)

    def _log_df(self, x):
        return -jax.nn.softplus(x) - jax.nn.softplus(-x)


class Logit(_Elementwise):
    """Logit, (0, 1) -> R, with an optional squeeze ``y = eps + (1 - 2 eps) x`` away from 0 and 1.

    Forward (X -> Z, data to latent): ``y = eps + (1 - 2 eps) x``, ``z = log y - log(1 - y)``.
    Inverse (Z -> X): ``x = (sigmoid(z) - eps) / (1 - 2 eps)``.
    V (nats, returned by ``forward``) ``= sum log|dz/dx| = sum [log(1 - 2 eps) - log y -
    log(1 - y)]``; in terms of the latent (``y = sigmoid(z)``),
    ``V = sum [log(1 - 2 eps) + softplus(z) + softplus(-z)]``. The inverse direction's
    log-Jacobian is ``log|dx/dz| = -V``.

    Use: it maps data in ``(0, 1)`` to the real line, so its inverse, the sampling direction,
    is a sigmoid. A flow whose samples must lie in ``(0, 1)``, e.g. the encoder of
    ``VariationalDequantization``, is ``ConditionalFlow(ConditionalNormal(net), [Logit()])``.

    The edges (a log of zero). With ``eps = 0`` (default): ``x = 0`` gives ``z = -inf`` and
    ``x = 1`` gives ``z = +inf``, both with ``V = +inf``: the density of a point on the
    boundary is infinite/undefined, and the layer says so instead of clipping silently. With
    ``0 < eps < 1/2`` the map is an affine squeeze followed by the logit (RealNVP's
    preprocessing, not a clip), so ``x = 0, 1`` give the finite ``z = -+logit(1 - eps)`` and V
    is finite on all of ``[0, 1]``. Values outside ``[0, 1]`` (for ``eps = 0``) give NaN (a log
    of a negative number).

    Args:
      eps: the squeeze, ``0 <= eps < 1/2`` (RealNVP used 0.05 for images).

    Shapes: ``x`` and ``z`` ``(B, ...)`` (any event shape, ``(B,)`` included), same shape and
    dtype; V ``(B,)`` nats, summed over the event.

    Raises:
      ValueError: ``eps`` outside ``[0, 1/2)``; ``forward`` or ``inverse`` given a rank-0 or
        non-floating tensor. Values outside ``[0, 1]`` are not checked (they may be traced):
        they give NaN as above.

    Source: RealNVP (Dinh et al., 2017), Section 4.1; the reference SurVAE code's ``Logit``.
    """

    def __init__(self, eps: float = 0.0):
        if not 0.0 <= float(eps) < 0.5:
            raise ValueError(f"Logit: eps must be in [0, 0.5), got {eps}.")
        self.eps = float(eps)

    def _squeeze(self, x):
        return x if self.eps == 0.0 else self.eps + (1.0 - 2.0 * self.eps) * x

    def _f(self, x):
        return _logit(self._squeeze(x))

    def _f_inv(self, z):
        p = jax.nn.sigmoid(z)
        return p if self.eps == 0.0 else (p - self.eps) / (1.0 - 2.0 * self.eps)

    def _log_df(self, x):
        y = self._squeeze(x)
        return math.log1p(-2.0 * self.eps) - jnp.log(y) - jnp.log1p(-y)


class Softplus(_Elementwise):
    """Softplus, R -> (0, inf).

    Forward (X -> Z, data to latent): ``z = softplus(x) = log(1 + e^x)``.
    Inverse (Z -> X): ``x = log(e^z - 1) = z + log(1 - e^{-z})``.
    V (nats, returned by ``forward``) ``= sum log|dz/dx| = sum log sigmoid(x)
    = -sum softplus(-x)``, finite for all finite ``x``; in terms of the latent,
    ``V = sum log(1 - e^{-z})``. The inverse direction's log-Jacobian is
    ``log|dx/dz| = -sum log(1 - e^{-z}) = -V``.

    Saturation: for very negative ``x`` (below about -88 in float32, -104 where subnormals are
    kept) ``z`` underflows to 0 and
    the inverse gives ``-inf``; V stays finite (about ``x``). Inverse of ``z <= 0`` is outside the
    range: ``z = 0 -> -inf``, ``z < 0 -> NaN``.

    Args: none (parameter-free).

    Shapes: ``x`` and ``z`` ``(B, ...)`` (any event shape, ``(B,)`` included), same shape and
    dtype; V ``(B,)`` nats, summed over the event.

    Raises:
      ValueError: ``forward`` or ``inverse`` given a rank-0 or non-floating tensor (naming the
        layer and the shape/dtype). Values outside the domain are not checked (they may be
        traced): they give the ``inf``/NaN listed above.

    Source: the reference SurVAE code's ``Softplus``.
    """

    def _f(self, x):
        return jax.nn.softplus(x)

    def _f_inv(self, z):
        return _softplus_inv(z)

    def _log_df(self, x):
        return -jax.nn.softplus(-x)


class SoftplusInverse(_Elementwise):
    """Inverse softplus, (0, inf) -> R: maps positive data to the real line.

    Forward (X -> Z, data to latent): ``z = log(e^x - 1) = x + log(1 - e^{-x})``.
    Inverse (Z -> X): ``x = softplus(z) = log(1 + e^z)``.
    V (nats, returned by ``forward``) ``= sum log|dz/dx| = -sum log(1 - e^{-x})``
    (``dz/dx = 1 / (1 - e^{-x})``); in terms of the latent (``1 - e^{-x} = sigmoid(z)``),
    ``V = -sum log sigmoid(z) = sum softplus(-z)``. The inverse direction's log-Jacobian is
    ``log|dx/dz| = sum log sigmoid(z) = -V``.

    Edges: ``x = 0`` gives ``z = -inf`` and ``V = +inf`` (a log of zero); ``x < 0`` is outside
    the domain and gives NaN.

    Args: none (parameter-free).

    Shapes: ``x`` and ``z`` ``(B, ...)`` (any event shape, ``(B,)`` included), same shape and
    dtype; V ``(B,)`` nats, summed over the event.

    Raises:
      ValueError: ``forward`` or ``inverse`` given a rank-0 or non-floating tensor (naming the
        layer and the shape/dtype). Values outside the domain are not checked (they may be
        traced): they give the ``inf``/NaN listed above.

    Source: the reference SurVAE code's ``SoftplusInverse``.
    """

    def _f(self, x):
        return _softplus_inv(x)

    def _f_inv(self, z):
        return jax.nn.softplus(z)

    def _log_df(self, x):
        return -jnp.log(-jnp.expm1(-x))


class Tanh(_Elementwise):
    """Hyperbolic tangent, R -> (-1, 1), with a log-derivative that stays finite at saturation.

    Forward (X -> Z, data to latent): ``z = tanh(x)``. Inverse (Z -> X): ``x = atanh(z)``.
    V (nats, returned by ``forward``) ``= sum log|dz/dx| = sum log(1 - tanh(x)^2)
    = sum 2 (log 2 - x - softplus(-2 x))``; in terms of the latent, ``V = sum log(1 - z^2)``;
    the inverse direction's log-Jacobian is ``log|dx/dz| = -sum log(1 - z^2) = -V``. The
    naive form is ``log(0) = -inf`` once ``tanh(x)`` rounds to +-1 (``|x|`` above about 9 in float32); the
    rewritten form is exact and finite for every finite ``x`` (about ``2 log 2 - 2|x|``).

    Saturation: where ``tanh(x)`` rounds to +-1 the inverse gives ``+-inf`` (the round trip is
    lost, V is not); ``|z| > 1`` gives NaN.

    Args: none (parameter-free).

    Shapes: ``x`` and ``z`` ``(B, ...)`` (any event shape, ``(B,)`` included), same shape and
    dtype; V ``(B,)`` nats, summed over the event.

    Raises:
      ValueError: ``forward`` or ``inverse`` given a rank-0 or non-floating tensor (naming the
        layer and the shape/dtype). Values outside the domain are not checked (they may be
        traced): they give the ``inf``/NaN listed above.

    Source: distrax ``Tanh`` (the same identity); Appendix A, Eq. 5.
    """

    def _f(self, x):
        return jnp.tanh(x)

    def _f_inv(self, z):
        return jnp.arctanh(z)

    def _log_df(self, x):
        return 2.0 * (math.log(2.0) - x - jax.nn.softplus(-2.0 * x))
