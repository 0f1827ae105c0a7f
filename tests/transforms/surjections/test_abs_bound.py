"""GenerativeAbsSurjection over an asymmetric base is a bound (Table 6 "Abs", Appendix D.1).

Model: z ~ N(mu, sigma^2) in 1-D, x = |z|. Exact: log p(x) = log(N(x) + N(-x)) for x >= 0.
With q(s|x) = 1/2 the ELBO's expectation is 0.5 sum_s [log N(s x) + log 2] <= log p(x)
(Jensen), the IWBO rises with the number of samples towards log p(x), and the classifier
q(s|x) = N(s x) / (N(x) + N(-x)) (the true posterior of the sign) makes every one-sample
ELBO equal to log p(x).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.distributions import ConditionalBernoulli, DiagonalNormal
from survae_jax.flow import Flow
from survae_jax.transforms.surjections import GenerativeAbsSurjection

MU, SIGMA = 0.8, 0.7


def _base():
    base = DiagonalNormal((1,))
    base.loc[...] = jnp.full((1,), MU)
    base.log_scale[...] = jnp.full((1,), math.log(SIGMA))
    return base


def _log_normal(x):
    return -0.5 * ((x - MU) / SIGMA) ** 2 - math.log(SIGMA) - 0.5 * math.log(2 * math.pi)


X = jnp.linspace(0.05, 2.5, 16, dtype=jnp.float32)[:, None]
LOG_P = np.logaddexp(_log_normal(np.asarray(X[:, 0], np.float64)), _log_normal(-np.asarray(X[:, 0], np.float64)))


def test_elbo_is_a_bound_with_the_closed_form_expectation():
    flow = Flow(_base(), [GenerativeAbsSurjection()])
    assert not flow.exact
    keys = jax.random.split(jax.random.key(0), 2000)
    elbos = np.asarray(jax.jit(jax.vmap(lambda k: flow.elbo(X, key=k)))(keys), np.float64)  # (K, B)
    x = np.asarray(X[:, 0], np.float64)
    expected = 0.5 * (_log_normal(x) + _log_normal(-x)) + math.log(2.0)
    assert np.all(expected <= LOG_P + 1e-12)
    assert np.all(expected < LOG_P - 1e-3)  # a strict gap: the base is asymmetric
    # every one-sample value is log N(s x) + log 2, one of the two sign branches
    branch = np.stack([_log_normal(x), _log_normal(-x)]) + math.log(2.0)
    assert np.all(np.min(np.abs(elbos[:, None, :] - branch[None, :, :]), axis=1) < 1e-4)
    # Monte Carlo mean of a fair two-valued draw: within 4 standard errors of its expectation
    tol = 4 * 0.5 * np.abs(branch[0] - branch[1]) / math.sqrt(len(keys)) + 1e-4
    assert np.all(np.abs(elbos.mean(0) - expected) <= tol)
    assert np.all(elbos.mean(0) <= LOG_P + 1e-4)


def test_iwbo_rises_and_reaches_log_p():
    flow = Flow(_base(), [GenerativeAbsSurjection()])
    iw = jax.jit(lambda f, k, n: f.iwbo(X, key=k, num_samples=n, chunk_size=min(n, 250)), static_argnums=2)
    means = [float(np.mean(np.asarray(iw(flow, jax.random.key(1), n)))) for n in (1, 10, 1000)]
    # The IWBO is a bound in expectation; one draw of IWBO(1000) may sit a few 1e-3 above.
    assert means[0] < means[1] < means[2] <= float(LOG_P.mean()) + 0.01
    iw1000 = np.asarray(iw(flow, jax.random.key(2), 1000), np.float64)
    assert abs(float(np.mean(iw1000 - LOG_P))) < 0.01


def test_posterior_classifier_makes_the_elbo_exact():
    def logit(x):  # log q(s=+1|x) - log q(s=-1|x) = log N(x) - log N(-x)
        return _log_normal(x) - _log_normal(-x)

    flow = Flow(_base(), [GenerativeAbsSurjection(ConditionalBernoulli(logit))])
    keys = jax.random.split(jax.random.key(3), 50)
    elbos = jax.jit(jax.vmap(lambda k: flow.elbo(X, key=k)))(keys)
    np.testing.assert_allclose(np.asarray(elbos), np.broadcast_to(LOG_P, elbos.shape), atol=2e-5)
