"""Logistic-mixture CDF followed by the logit and an affine map: an elementwise family (Flow++)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from survae_jax.functional.elementwise import SCALE_FNS, ElementwiseFamily
from survae_jax.functional.implicit import implicit_inverse
from survae_jax.functional.spline import check_theta

Array = jax.Array

#: Log-scales of the components are ``LOG_SCALE_BOUND * tanh(raw / LOG_SCALE_BOUND)``, in (-7, 7).
LOG_SCALE_BOUND = 7.0


def _logit_cdf(x, log_pi, mu, log_s):
    """``logit F(x)``, ``F = sum_k pi_k sigmoid(u_k)``, ``u_k = (x - mu_k) / s_k``, as
    ``log F - log(1 - F)``, both by logsumexp (``1 - F = sum_k pi_k sigmoid(-u_k)``): no ``1 - F``
    cancels, so the value is finite for any finite ``x``."""
    u = (x[..., None] - mu) * jnp.exp(-log_s)
    return (jax.nn.logsumexp(log_pi + jax.nn.log_sigmoid(u), axis=-1)
            - jax.nn.logsumexp(log_pi + jax.nn.log_sigmoid(-u), axis=-1))


def _log_dlogit_cdf(x, log_pi, mu, log_s):
    """``log d logit F / dx = log(F'/F + F'/(1 - F))``, ``F' = sum_k pi_k sigmoid(u_k) sigmoid(-u_k) / s_k``.

    ``F'/F = sum_k w_k sigmoid(-u_k) / s_k`` with ``w = softmax(log pi + log sigmoid(u))`` (and
    ``F'/(1 - F)`` the same with ``u -> -u``): weighted means of numbers ``<= 1 / s_k``, so neither
    overflows nor cancels far in the tails, where ``F`` or ``1 - F`` underflows."""
    u = (x[..., None] - mu) * jnp.exp(-log_s)
    lp, lm = jax.nn.log_sigmoid(u), jax.nn.log_sigmoid(-u)
    a = jax.nn.logsumexp(jax.nn.log_softmax(log_pi + lp, axis=-1) + lm - log_s, axis=-1)
    b = jax.nn.logsumexp(jax.nn.log_softmax(log_pi + lm, axis=-1) + lp - log_s, axis=-1)
    return jnp.logaddexp(a, b)


def _bisect(y, log_pi, mu, log_s):
    """The ``x`` with ``logit F(x) = y`` by bisection on ``[min_k (mu_k + s_k y), max_k (mu_k + s_k y)]``:
    ``logit F(x)`` lies between ``min_k u_k`` and ``max_k u_k``, so the root is inside. 64 steps in
    float32, 128 in float64 (enough to reach neighbouring floats from any bracket the bounded
    scales allow)."""
    ends = mu + jnp.exp(log_s) * y[..., None]
    lo, hi = jnp.min(ends, axis=-1), jnp.max(ends, axis=-1)

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * lo + 0.5 * hi
        below = _logit_cdf(mid, log_pi, mu, log_s) < y
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    steps = 64 if jnp.finfo(y.dtype).bits <= 32 else 128
    lo, hi = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return 0.5 * lo + 0.5 * hi


_inverse_logit_cdf = implicit_inverse(_logit_cdf, _log_dlogit_cdf, _bisect)


@dataclasses.dataclass(frozen=True)
class LogisticMixtureCDF(ElementwiseFamily):
    """Flow++'s elementwise map: a logistic-mixture CDF, the logit, then an affine map (R -> R).

    ``theta = (l_1..l_K, mu_1..mu_K, r_1..r_K, a, b)`` per element, ``num_params = 3K + 2``,
    ``K = num_components``; ``pi = softmax(l)``, ``s_k = exp(7 tanh(r_k / 7))`` (log-scales in
    (-7, 7), smooth; Flow++ clamps them at -7), ``scale(a)`` of ``scale_fn`` (as in
    :class:`~survae_jax.functional.Affine`, default ``"tanh_exp"``):

    - forward: ``z = scale(a) logit(F(x)) + b``, ``F(x) = sum_k pi_k sigmoid((x - mu_k) / s_k)``;
    - ``log dz/dx = log scale(a) + log F'(x) - log F(x) - log(1 - F(x))``, all in log space
      (logsumexp; ``_log_dlogit_cdf``); at ``x = +-inf`` its limit ``log scale(a) - max_k log s_k``;
    - inverse: ``y = (z - b) / scale(a)``, ``x`` the root of ``logit F(x) = y`` by bisection in a
      bracket that provably holds it (``_bisect``), a fixed number of steps inside ``jit``.

    ``theta = 0`` is the identity (one logistic at 0 of scale 1, ``logit(sigmoid(x)) = x``). The
    trap: differentiating through bisection gives a zero gradient (comparisons have none); here
    the inverse's gradient is the implicit function theorem's, ``dx/dtheta = -(dz/dtheta) / (dz/dx)``
    (:func:`~survae_jax.functional.implicit.implicit_inverse`). The affine map is kept, as Flow++
    does, so that one layer can also rescale and shift.

    Source: Ho et al., "Flow++" (2019), Section 3.1, Eq. 8.
    """

    num_components: int = 4
    scale_fn: str = "tanh_exp"

    def __post_init__(self):
        k = self.num_components
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"LogisticMixtureCDF: num_components must be an int >= 1, got {k!r}.")
        if self.scale_fn not in SCALE_FNS:
            raise ValueError(f"LogisticMixtureCDF: scale_fn must be one of {sorted(SCALE_FNS)}, got {self.scale_fn!r}.")

    @property
    def num_params(self) -> int:
        return 3 * self.num_components + 2

    def _params(self, v, theta):
        theta = check_theta(v, theta, self.num_params, "LogisticMixtureCDF")
        k = self.num_components
        log_pi = jax.nn.log_softmax(theta[..., :k], axis=-1)
        log_s = LOG_SCALE_BOUND * jnp.tanh(theta[..., 2 * k:3 * k] / LOG_SCALE_BOUND)
        return (log_pi, theta[..., k:2 * k], log_s), theta[..., -2], theta[..., -1]

    def forward(self, x, theta):
        x = x.astype(jnp.result_type(x, theta))
        mix, a, b = self._params(x, theta)
        scale, log_scale = SCALE_FNS[self.scale_fn]
        # At x = +-inf the derivative's limit is 1 / max_k s_k (the widest component's tail
        # dominates both F' and 1 - F, or F); the formula itself gives 0 / 0 there.
        inf = jnp.isinf(x)
        ld = jnp.where(inf, -jnp.max(mix[2], axis=-1), _log_dlogit_cdf(jnp.where(inf, 0.0, x), *mix))
        return scale(a) * _logit_cdf(x, *mix) + b, log_scale(a) + ld

    def inverse(self, z, theta):
        z = z.astype(jnp.result_type(z, theta))
        mix, a, b = self._params(z, theta)
        return _inverse_logit_cdf((z - b) / SCALE_FNS[self.scale_fn][0](a), *mix)
