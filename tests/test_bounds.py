"""Bounds against closed forms (issue 3, "Done when"): ELBO <= log p(x), IWBO rises with K, IWBO(1000) ~ log p(x).

Four models whose exact ``log p(x)`` is known in closed form, each with one non-exact layer
(``Flow.exact`` is False, so ``Flow.log_prob`` / ``Flow.elbo`` is a one-sample ELBO):

- ``abs``: ``GenerativeAbsSurjection`` (Table 6) over an asymmetric base ``N(0.8, 0.9^2)``:
  ``p(x) = N(x; 0.8, 0.9^2) + N(-x; 0.8, 0.9^2)`` for ``x > 0``; ``q(s|x) = 1/2``.
- ``augment``: ``Augment(StandardNormal((1,)), 1)`` (App. H.3) over a correlated 2-D Gaussian
  base with covariance ``[[1.2, 0.6], [0.6, 1.0]]``: ``p(x) = N(x; 0, 1.2)`` (the marginal);
  ``q(z2|x) = N(0, 1)`` while the true ``p(z2|x) = N(0.5 x, 0.7)``.
- ``dequantization``: ``UniformDequantization`` (App. H.2) over ``N(0, 1)``:
  ``P(x = k) = Phi(k + 1) - Phi(k)`` (the discretised Gaussian).
- ``vae``: a linear-Gaussian ``VAE`` layer (App. H.1), ``p(z) = N(0, 1)``,
  ``p(x|z) = N(1.5 z + 0.3, 0.8^2)``, so ``p(x) = N(0.3, 1.5^2 + 0.8^2)``; the encoder is a fixed,
  deliberately imperfect ``q(z|x) = N(0.45 x - 0.1, 0.55^2)`` (the true posterior is
  ``N(0.519 (x - 0.3), 0.471^2)``), both built with ``ConditionalNormal`` and a fixed
  ``nnx.Linear(1, 2)``.

The encoders are deliberately imperfect (var of the importance weights ~1-3), so that the IWBO
climbs visibly from K = 100 to K = 1000 (seen: +0.006 to +0.011 nats, 3.6 to 5.6 standard
errors) while IWBO(1000) stays within ~0.001 nats of log p(x) on average (seen: -0.0003 to
-0.0011). Everything runs in float64; the keys are fixed, so the numbers are reproducible.
About 10-15 s per model on the 2-core CPU, hence ``slow``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.scipy.stats import norm

from survae_jax.distributions import (
    ConditionalBernoulli,
    ConditionalNormal,
    DiagonalNormal,
    Distribution,
    StandardNormal,
)
from survae_jax.flow import Flow
from survae_jax.transforms.stochastic.vae import VAE
from survae_jax.transforms.surjections.abs import GenerativeAbsSurjection
from survae_jax.transforms.surjections.dequantization import UniformDequantization
from survae_jax.transforms.surjections.slicing import Augment

KS = (1, 10, 100, 1000)
#: examples x repetitions per K: about 2e6 log-weights for K = 100 and K = 1000.
REPS = {1: 500, 10: 500, 100: 600, 1000: 100}
NUM_ELBO = 2000  # one-sample ELBOs per example for the "ELBO <= log p(x) in expectation" check


class _CorrelatedNormal(Distribution):
    """Zero-mean 2-D Gaussian with a fixed full covariance (test-local base), closed-form 2x2 maths."""

    def __init__(self, cov):
        (a, b), (b2, c) = cov
        assert b == b2
        det = a * c - b * b
        self.precision = (c / det, -b / det, a / det)  # static Python floats
        self.log_norm = -0.5 * math.log(det) - math.log(2 * math.pi)
        self.chol = (math.sqrt(a), b / math.sqrt(a), math.sqrt(c - b * b / a))

    def log_prob(self, x, *, context=None, key=None):
        self._check_event(x, (2,))
        p00, p01, p11 = self.precision
        x0, x1 = x[:, 0], x[:, 1]
        return -0.5 * (p00 * x0**2 + 2 * p01 * x0 * x1 + p11 * x1**2) + self.log_norm

    def sample(self, key, num_samples=None, *, context=None):
        n = self._num_samples(num_samples, None)
        e = jax.random.normal(key, (n, 2), jnp.float64)
        l00, l10, l11 = self.chol
        return jnp.stack([l00 * e[:, 0], l10 * e[:, 0] + l11 * e[:, 1]], axis=1)


def _fixed_linear(weight, bias, out_features=2):
    """Fixed float64 ``nnx.Linear(1, out)``, kernel ``[[weight, 0...]]``: c -> (mean, log-scale) or a logit."""
    lin = nnx.Linear(1, out_features, rngs=nnx.Rngs(0), param_dtype=jnp.float64, dtype=jnp.float64)
    lin.kernel[...] = jnp.array([[weight] + [0.0] * (out_features - 1)], jnp.float64)
    lin.bias[...] = jnp.array(bias, jnp.float64)
    return lin


def _diagonal_normal(loc, scale):
    base = DiagonalNormal((1,), dtype=jnp.float64)
    base.loc[...] = jnp.array([loc], jnp.float64)
    base.log_scale[...] = jnp.log(jnp.array([scale], jnp.float64))
    return base


def _abs_model():
    # q(s = +1 | x) = 0.25 from a fixed classifier (constant logit), while the posterior
    # favours +1 (0.8 to 1): the weights are spread enough for the IWBO to climb visibly.
    classifier = ConditionalBernoulli(
        _fixed_linear(0.0, [math.log(0.25 / 0.75)], out_features=1)
    )
    x = jnp.linspace(0.3, 3.0, 16)[:, None]
    log_px = jnp.logaddexp(norm.logpdf(x, 0.8, 0.9), norm.logpdf(-x, 0.8, 0.9))[:, 0]
    return Flow(_diagonal_normal(0.8, 0.9), [GenerativeAbsSurjection(classifier)]), x, log_px


def _augment_model():
    base = _CorrelatedNormal([[1.0, 0.8], [0.8, 1.0]])
    x = jnp.linspace(-2.0, 2.0, 16)[:, None]
    log_px = norm.logpdf(x[:, 0], 0.0, 1.0)
    return Flow(base, [Augment(StandardNormal((1,), dtype=jnp.float64), 1)]), x, log_px


def _dequantization_model():
    k = jnp.tile(jnp.array([-3, -2, 1, 2]), 4)[:, None].astype(jnp.int32)
    kf = k[:, 0].astype(jnp.float64)
    log_px = jnp.log(norm.cdf((kf + 1.0) / 0.5) - norm.cdf(kf / 0.5))
    return Flow(_diagonal_normal(0.0, 0.5), [UniformDequantization()]), k, log_px


def _vae_model():
    decoder = ConditionalNormal(_fixed_linear(1.5, [0.3, math.log(0.8)]))
    encoder = ConditionalNormal(_fixed_linear(0.2, [0.3, math.log(0.7)]))
    x = jnp.linspace(-2.5, 3.0, 16)[:, None]
    log_px = norm.logpdf(x[:, 0], 0.3, math.sqrt(1.5**2 + 0.8**2))
    return Flow(StandardNormal((1,), dtype=jnp.float64), [VAE(decoder, encoder)]), x, log_px


MODELS = {
    "abs": _abs_model,
    "augment": _augment_model,
    "dequantization": _dequantization_model,
    "vae": _vae_model,
}


@jax.jit
def _elbos(flow, x, keys):
    return jax.lax.map(lambda k: flow.elbo(x, key=k), keys, batch_size=500)  # (M, B)


def _iwbos(flow, x, keys, num_samples):
    run = jax.jit(
        lambda f, x, keys: jax.lax.map(
            lambda k: f.iwbo(x, key=k, num_samples=num_samples, chunk_size=min(num_samples, 100)),
            keys,
            batch_size=max(1, 1000 // num_samples),
        )
    )
    return run(flow, x, keys)  # (reps, B)


def _compute(name):
    """Per model: exact log p(x), ELBO draws and IWBO(K) draws for K in KS, all float64 numpy."""
    with jax.enable_x64(True):
        flow, x, log_px = MODELS[name]()
        assert not flow.exact
        key = jax.random.key(20260)
        k_elbo, *k_iw = jax.random.split(key, 1 + len(KS))
        elbo = np.asarray(_elbos(flow, x, jax.random.split(k_elbo, NUM_ELBO)))
        iwbo = {K: np.asarray(_iwbos(flow, x, jax.random.split(k, REPS[K]), K)) for K, k in zip(KS, k_iw)}
        assert elbo.dtype == np.float64 and all(v.dtype == np.float64 for v in iwbo.values())
    return np.asarray(log_px), elbo, iwbo


def _check_elbo_below_log_px(name, log_px, elbo):
    """E[ELBO] <= log p(x) per example: the mean of NUM_ELBO draws, up to 3 standard errors;
    and the gap (the KL of q to the posterior) is real on average: the bound is not tight."""
    assert np.all(np.isfinite(elbo)), name
    mean, sem = elbo.mean(0), elbo.std(0) / math.sqrt(elbo.shape[0])
    assert np.all(mean <= log_px + 3 * sem + 1e-12), ("ELBO above log p(x)", name, mean - log_px, sem)
    assert np.mean(log_px - mean) > 5 * np.sqrt(np.mean(sem**2) / len(sem)), ("ELBO tight?", name)


def _check_iwbo_rises(name, log_px, iwbo):
    """The mean IWBO over examples and repetitions rises for K = 1, 10, 100, 1000 (each step by
    more than 2 standard errors of the difference) and stays below the mean log p(x)."""
    means = [float(np.mean(iwbo[K])) for K in KS]
    sems = [float(np.std(iwbo[K].mean(1)) / math.sqrt(iwbo[K].shape[0])) for K in KS]
    for (k0, m0, s0), (k1, m1, s1) in zip(zip(KS, means, sems), zip(KS[1:], means[1:], sems[1:])):
        assert m1 - m0 > 2 * math.hypot(s0, s1), ("IWBO does not rise", name, k0, m0, k1, m1, s0, s1)
    assert means[-1] <= float(np.mean(log_px)) + 3 * sems[-1], ("IWBO above log p", name, means[-1])


def _check_iwbo_1000_close(name, log_px, iwbo):
    """IWBO(1000) is within 0.01 nats of log p(x) on average over examples, and per example not
    above log p(x) by more than 4 standard errors of its mean over the repetitions (~0.02-0.04)."""
    draws = iwbo[1000]  # (reps, B)
    per_example = draws.mean(0)
    sem = draws.std(0) / math.sqrt(draws.shape[0])
    assert np.all(np.isfinite(draws)), name
    assert abs(float(np.mean(per_example - log_px))) < 0.01, ("IWBO(1000) far", name, per_example - log_px)
    assert np.all(per_example <= log_px + np.maximum(0.01, 4 * sem)), ("IWBO(1000) above", name, per_example - log_px, sem)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_bounds_against_closed_form(name):
    """ELBO <= log p(x) for every example, IWBO rises with K, IWBO(1000) ~ log p(x) (one model).

    One test per model (not three sharing a fixture) so that pytest-xdist never computes a
    model's Monte-Carlo draws twice.
    """
    log_px, elbo, iwbo = _compute(name)
    _check_elbo_below_log_px(name, log_px, elbo)
    _check_iwbo_rises(name, log_px, iwbo)
    _check_iwbo_1000_close(name, log_px, iwbo)
