"""Distributions against closed forms and scipy.stats; sample shapes; errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from survae_jax.distributions import (
    ConditionalBernoulli,
    ConditionalCategorical,
    ConditionalNormal,
    DiagonalNormal,
    StandardNormal,
    StandardUniform,
)

KEY = jax.random.key(0)


def test_standard_normal_closed_form_vectors_and_images():
    x = jax.random.normal(KEY, (5, 3))
    want = -0.5 * np.sum(np.asarray(x) ** 2, axis=1) - 1.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(StandardNormal((3,)).log_prob(x), want, rtol=1e-6)
    img = jax.random.normal(KEY, (2, 4, 4, 3))
    d = StandardNormal((4, 4, 3))
    want = -0.5 * np.sum(np.asarray(img).reshape(2, -1) ** 2, axis=1) - 24 * math.log(2 * math.pi)
    np.testing.assert_allclose(d.log_prob(img), want, rtol=1e-6)
    assert d.sample(KEY, 7).shape == (7, 4, 4, 3)
    x, lp = d.sample_and_log_prob(KEY, 2)
    np.testing.assert_allclose(lp, d.log_prob(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda d, x: d.log_prob(x))(d, img), d.log_prob(img), rtol=1e-6)


def test_standard_normal_errors():
    d = StandardNormal((3,))
    with pytest.raises(ValueError, match=r"StandardNormal.*\(B, 3\).*\(5, 4\)"):
        d.log_prob(jnp.zeros((5, 4)))
    with pytest.raises(ValueError, match="StandardNormal"):
        d.log_prob(jnp.zeros((3,)))  # no batch axis
    with pytest.raises(ValueError, match="num_samples"):
        d.sample(KEY)


def test_standard_uniform_inside_zero_outside_minus_inf():
    """Documented: log p = 0 inside the unit cube and -inf (zero density, not an error) outside."""
    d = StandardUniform((2,))
    inside = jnp.array([[0.1, 0.9], [0.5, 0.5]])
    outside = jnp.array([[1.5, 0.5], [0.5, -0.1]])
    np.testing.assert_array_equal(d.log_prob(inside), [0.0, 0.0])
    np.testing.assert_array_equal(d.log_prob(outside), [-np.inf, -np.inf])
    s = d.sample(KEY, 1000)
    assert s.shape == (1000, 2) and float(s.min()) >= 0.0 and float(s.max()) < 1.0
    with pytest.raises(ValueError, match="StandardUniform"):
        d.log_prob(jnp.zeros((2, 3)))


def test_diagonal_normal_against_scipy_and_grads():
    d = DiagonalNormal((3,))
    d.loc[...] = jnp.array([0.5, -1.0, 2.0])
    d.log_scale[...] = jnp.array([0.0, 0.7, -0.4])
    x = jax.random.normal(KEY, (4, 3))
    scale = np.exp([0.0, 0.7, -0.4])
    want = stats.norm.logpdf(np.asarray(x), loc=[0.5, -1.0, 2.0], scale=scale).sum(axis=1)
    np.testing.assert_allclose(d.log_prob(x), want, rtol=1e-5)
    s = np.asarray(d.sample(KEY, 20000))
    assert s.shape == (20000, 3)
    np.testing.assert_allclose(s.mean(0), [0.5, -1.0, 2.0], atol=0.05)
    np.testing.assert_allclose(s.std(0), scale, rtol=0.03)
    g = nnx.grad(lambda d: jnp.sum(d.log_prob(x)))(d)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))
    # d/d loc of sum log N(x; loc, s) = sum (x - loc) / s^2
    np.testing.assert_allclose(g.loc[...], ((np.asarray(x) - [0.5, -1.0, 2.0]) / scale**2).sum(0), rtol=1e-4)


def test_float64_under_x64():
    with jax.enable_x64(True):
        x = jnp.ones((2, 3), jnp.float64) * 0.3
        assert StandardNormal((3,)).log_prob(x).dtype == jnp.float64
        assert StandardUniform((3,)).log_prob(x).dtype == jnp.float64
        d = DiagonalNormal((3,), dtype=jnp.float64)
        assert d.log_prob(x).dtype == jnp.float64 and d.sample(KEY, 2).dtype == jnp.float64
        assert StandardNormal((3,), dtype=jnp.float64).sample(KEY, 2).dtype == jnp.float64


class Linear(nnx.Module):
    """A tiny context net ``(B, C) -> (B, out)``."""

    def __init__(self, c, out, *, key):
        self.w = nnx.Param(jax.random.normal(key, (c, out)))

    def __call__(self, c):
        return c @ self.w[...]


CTX = jax.random.normal(jax.random.key(1), (4, 2))


def test_conditional_normal_against_scipy():
    d = ConditionalNormal(Linear(2, 6, key=KEY))  # D = 3: mean and log-scale
    mean, log_scale = (np.asarray(a) for a in np.split(np.asarray(CTX @ d.net.w[...]), 2, axis=1))
    x = jax.random.normal(jax.random.key(2), (4, 3))
    want = stats.norm.logpdf(np.asarray(x), loc=mean, scale=np.exp(log_scale)).sum(1)
    np.testing.assert_allclose(d.log_prob(x, context=CTX), want, rtol=1e-5)
    s = d.sample(KEY, context=CTX)
    assert s.shape == (4, 3)
    s2, lp = d.sample_and_log_prob(KEY, context=CTX)
    np.testing.assert_allclose(lp, d.log_prob(s2, context=CTX), rtol=1e-5)
    with pytest.raises(ValueError, match="ConditionalNormal.*context"):
        d.log_prob(x)
    np.testing.assert_allclose(d.mean(context=CTX), mean, rtol=1e-5)
    np.testing.assert_allclose(d.mode(context=CTX), mean, rtol=1e-5)
    s3, lp3 = d.sample_and_log_prob(KEY, 3, context=CTX)  # sample axis first: (n, B, D)
    assert s3.shape == (3, 4, 3) and lp3.shape == (3, 4)
    want3 = stats.norm.logpdf(np.asarray(s3), loc=mean, scale=np.exp(log_scale)).sum(-1)
    np.testing.assert_allclose(lp3, want3, rtol=1e-5)
    assert d.sample(KEY, 3, context=CTX).shape == (3, 4, 3)
    many = np.asarray(d.sample(KEY, 20000, context=CTX))  # the draws follow N(mean, scale^2)
    np.testing.assert_allclose(many.mean(0), mean, atol=0.05 * np.exp(log_scale).max() + 1e-3)
    np.testing.assert_allclose(many.std(0), np.exp(log_scale), rtol=0.03)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="ConditionalNormal.sample: num_samples must be None"):
            d.sample(KEY, bad, context=CTX)
    with pytest.raises(ValueError, match="ConditionalNormal.*expected x of shape"):
        d.log_prob(x[:, :2], context=CTX)
    with pytest.raises(ValueError, match="2 \\* D"):
        ConditionalNormal(Linear(2, 5, key=KEY)).log_prob(x, context=CTX)


def test_conditional_bernoulli_closed_form():
    d = ConditionalBernoulli(Linear(2, 3, key=KEY))
    logits = np.asarray(CTX @ d.net.w[...])
    x = jnp.array([[0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1]])
    p = 1 / (1 + np.exp(-logits))
    want = np.sum(np.where(np.asarray(x) == 1, np.log(p), np.log1p(-p)), axis=1)
    np.testing.assert_allclose(d.log_prob(x, context=CTX), want, rtol=1e-5)
    s = d.sample(KEY, context=CTX)
    assert s.shape == (4, 3) and set(np.unique(np.asarray(s)).tolist()) <= {0, 1}
    np.testing.assert_allclose(d.mean(context=CTX), p, rtol=1e-5)
    np.testing.assert_array_equal(d.mode(context=CTX), (logits > 0).astype(np.int32))
    s5, lp5 = d.sample_and_log_prob(KEY, 5, context=CTX)
    assert s5.shape == (5, 4, 3) and lp5.shape == (5, 4)
    want5 = np.sum(np.where(np.asarray(s5) == 1, np.log(p), np.log1p(-p)), axis=-1)
    np.testing.assert_allclose(lp5, want5, rtol=1e-5)
    freq = np.asarray(d.sample(KEY, 20000, context=CTX)).mean(0)
    np.testing.assert_allclose(freq, p, atol=0.02)
    with pytest.raises(ValueError, match="ConditionalBernoulli"):
        d.log_prob(x[:, :2], context=CTX)
    with pytest.raises(ValueError, match="ConditionalBernoulli.*context"):
        d.sample(KEY, 4)


def test_conditional_categorical_closed_form():
    net = Linear(2, 10, key=KEY)
    d = ConditionalCategorical(lambda c: net(c).reshape(c.shape[0], 2, 5))  # event (2,), K = 5
    logits = np.asarray(CTX @ net.w[...]).reshape(4, 2, 5)
    x = jnp.array([[0, 4], [2, 2], [1, 3], [4, 0]])
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = np.take_along_axis(log_softmax, np.asarray(x)[..., None], axis=-1)[..., 0].sum(1)
    np.testing.assert_allclose(d.log_prob(x, context=CTX), want, rtol=1e-5)
    s = np.asarray(d.sample(KEY, context=CTX))
    assert s.shape == (4, 2) and s.min() >= 0 and s.max() <= 4
    probs = np.exp(log_softmax)
    np.testing.assert_array_equal(d.mode(context=CTX), logits.argmax(-1))
    np.testing.assert_allclose(d.mean(context=CTX), (probs * np.arange(5)).sum(-1), rtol=1e-5)
    s6, lp6 = d.sample_and_log_prob(KEY, 6, context=CTX)
    assert s6.shape == (6, 4, 2) and lp6.shape == (6, 4)
    want6 = np.take_along_axis(log_softmax[None], np.asarray(s6)[..., None], axis=-1)[..., 0].sum(-1)
    np.testing.assert_allclose(lp6, want6, rtol=1e-5)
    with pytest.raises(ValueError, match="ConditionalCategorical.*expected x of shape"):
        d.log_prob(x[:, :1], context=CTX)


def test_unconditional_distributions_take_context_and_ignore_its_values():
    """One context convention: with context and no num_samples, one draw per context row."""
    from survae_jax.flow import Flow

    ctx = jnp.full((5, 7), 3.0)
    for d in (StandardNormal((3,)), StandardUniform((3,)), DiagonalNormal((3,)), Flow(StandardNormal((3,)), [])):
        s = d.sample(KEY, context=ctx)
        assert s.shape == (5, 3), type(d).__name__
        np.testing.assert_array_equal(s, d.sample(KEY, 5))  # the values of context change nothing
        np.testing.assert_array_equal(d.log_prob(s, context=ctx), d.log_prob(s))
        s2, lp = d.sample_and_log_prob(KEY, context=ctx)
        assert s2.shape == (5, 3) and lp.shape == (5,)
        with pytest.raises(ValueError, match=r"num_samples=4 but context has batch size 5"):
            d.sample(KEY, 4, context=ctx)
