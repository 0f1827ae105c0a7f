"""AbsSurjection / GenerativeAbsSurjection (Tables 6-7 "Abs", Appendix D): values, zeros,
right/left inverses over 100 keys, quadrature of the flow density, classifier, float64, jit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.distributions import ConditionalBernoulli, Distribution, StandardNormal, StandardUniform
from survae_jax.flow import Flow
from survae_jax.transforms.surjections import AbsSurjection, GenerativeAbsSurjection

LOG2 = math.log(2.0)
KEYS = jax.random.split(jax.random.key(0), 100)


class HalfNormal(Distribution):
    """Test base: the standard half-normal on [0, inf)^D, density 2^D prod phi(z_i)."""

    def __init__(self, d):
        self.d = d

    def log_prob(self, x, *, context=None, key=None):
        lp = LOG2 - 0.5 * x**2 - 0.5 * math.log(2 * math.pi)
        return jnp.sum(jnp.where(x >= 0, lp, -jnp.inf), axis=-1)

    def sample(self, key, num_samples=None, *, context=None):
        return jnp.abs(jax.random.normal(key, (num_samples, self.d)))


class Logits(nnx.Module):
    """A fixed, parameter-free 'classifier net' z (B, 2) -> logits (B, 1) of the sign of x_0."""

    def __call__(self, z):
        return 3.0 * jnp.sin(5.0 * z[..., :1] + 2.0 * z[..., 1:2])


def _right_inverse(t, z):
    """forward(inverse(z, key=k)) for 100 keys, one compile: (100, *z.shape)."""
    return jax.jit(jax.vmap(lambda k: t.forward(t.inverse(z, key=k))[0]))(KEYS)


def _left_inverse(t, x):
    """inverse(forward(x, key=k)) for 100 keys, one compile: (100, *x.shape)."""
    return jax.jit(jax.vmap(lambda k: t.inverse(t.forward(x, key=k)[0])))(KEYS)


def test_forward_values_and_zero_sign_convention():
    t = AbsSurjection()
    x = jnp.array([[-1.5, 0.0, 2.0], [-0.0, -3.0, 0.25]])
    z, v = t.forward(x)
    np.testing.assert_array_equal(z, jnp.abs(x))
    np.testing.assert_allclose(v, [-3 * LOG2] * 2, rtol=1e-7)
    # sign(0) = +1: a classifier with logit a gives log sigmoid(a) for each zero (bit 1).
    c = AbsSurjection(ConditionalBernoulli(lambda z: jnp.full(z.shape, 0.7)))
    _, v = c.forward(jnp.array([[0.0, -0.0, 1.0], [-1.0, 0.0, -2.0]]))
    ls = float(jax.nn.log_sigmoid(0.7))
    lsn = float(jax.nn.log_sigmoid(-0.7))
    np.testing.assert_allclose(v, [3 * ls, ls + 2 * lsn], rtol=1e-6)
    g = jax.grad(lambda x: jnp.sum(c.forward(x)[0]) + jnp.sum(c.forward(x)[1]))(jnp.zeros((2, 3)))
    assert bool(jnp.all(jnp.isfinite(g)))


def test_features_only_touch_chosen_coordinates():
    t = AbsSurjection(features=(0,))
    x = jnp.array([[-1.0, -2.0], [3.0, -4.0]])
    z, v = t.forward(x)
    np.testing.assert_array_equal(z, [[1.0, -2.0], [3.0, -4.0]])
    np.testing.assert_allclose(v, [-LOG2, -LOG2], rtol=1e-7)
    xs = t.inverse(z, key=jax.random.key(3))
    np.testing.assert_array_equal(xs[:, 1], x[:, 1])


@pytest.mark.parametrize("features", [None, (1,), (-1, 0)])
def test_right_inverse_100_keys(features):
    z = jnp.abs(jax.random.normal(jax.random.key(1), (4, 3)))
    z = z.at[0, 0].set(0.0)  # a zero on the fibre's edge
    t = AbsSurjection(features=features)
    out = _right_inverse(t, z)
    assert bool(jnp.all(out == z[None]))
    # The inverse really draws both signs (a fair coin on each abs'd element).
    xs = jax.vmap(lambda k: t.inverse(z, key=k))(KEYS)
    neg = np.mean(np.asarray(xs < 0)[:, 1:])  # rows without the zero
    n_abs = 3 if features is None else len(features)
    assert abs(neg / (n_abs / 3) - 0.5) < 0.08


def test_right_inverse_with_classifier_100_keys():
    t = AbsSurjection(ConditionalBernoulli(Logits()), features=(0,))
    z = jnp.abs(jax.random.normal(jax.random.key(2), (5, 2)))
    out = _right_inverse(t, z)
    assert bool(jnp.all(out == z[None]))


def test_generative_left_inverse_100_keys_and_values():
    x = jnp.abs(jax.random.normal(jax.random.key(4), (4, 3))).at[1, 2].set(0.0)
    g = GenerativeAbsSurjection()
    assert bool(jnp.all(_left_inverse(g, x) == x[None]))
    z, v = g.forward(x, key=jax.random.key(5))
    np.testing.assert_array_equal(jnp.abs(z), x)
    np.testing.assert_allclose(v, [3 * LOG2] * 4, rtol=1e-7)  # V = -log q(s|x) = n log 2
    gc = GenerativeAbsSurjection(ConditionalBernoulli(Logits()), features=(0,))
    x2 = x[:, :2]
    assert bool(jnp.all(_left_inverse(gc, x2) == x2[None]))
    z, v = gc.forward(x2, key=jax.random.key(6))
    bits = (z[:, 0] >= 0).astype(jnp.float32)
    a = Logits()(x2)[:, 0]
    want = -(bits * jax.nn.log_sigmoid(a) + (1 - bits) * jax.nn.log_sigmoid(-a))
    np.testing.assert_allclose(v, want, rtol=1e-6)


def _grid_1d(lo, hi, n):
    """Midpoints of n equal cells of [lo, hi] and the cell width."""
    h = (hi - lo) / n
    return jnp.asarray(lo + h * (np.arange(n) + 0.5), jnp.float32)[:, None], h


def test_quadrature_1d():
    """Abs flows over R. The base lives on the image z = |x| >= 0, so the flow's density
    p(x) = p_Z(|x|) / 2 integrates to the base's mass on [0, inf):
    - standard normal base: 1/2 (half its mass is on z < 0, which no x reaches);
    - half-normal base (full mass on the image): 1, and p(x) is exactly the standard normal;
    - uniform base on [0, 1]: 1 (p(x) = 1/2 on [-1, 1])."""
    x, h = _grid_1d(-10.0, 10.0, 20000)
    lp = jax.jit(lambda f, x: f.log_prob(x))
    total = lambda f: float(np.sum(np.exp(np.asarray(lp(f, x), np.float64))) * h)
    assert abs(total(Flow(StandardNormal((1,)), [AbsSurjection()])) - 0.5) < 1e-3
    half = Flow(HalfNormal(1), [AbsSurjection()])
    assert abs(total(half) - 1.0) < 1e-3
    np.testing.assert_allclose(lp(half, x), StandardNormal((1,)).log_prob(x), atol=1e-5)
    xu, hu = _grid_1d(-1.5, 1.5, 3000)
    pu = np.exp(np.asarray(lp(Flow(StandardUniform((1,)), [AbsSurjection()]), xu), np.float64))
    assert abs(pu.sum() * hu - 1.0) < 1e-3


def test_quadrature_2d_with_classifier():
    """The checkerboard-style layer: abs on x_0 only, sign from a classifier, uniform base on
    [0,1]^2. sum_s p(s|z) = 1, so p(x) = p(s|z) integrates to the base's mass on the image: 1."""
    flow = Flow(StandardUniform((2,)), [AbsSurjection(ConditionalBernoulli(Logits()), features=(0,))])
    n = 400
    g0 = -1.0 + 2.0 * (np.arange(n) + 0.5) / n
    g1 = (np.arange(n // 2) + 0.5) / (n // 2)
    xx = jnp.asarray(np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    p = np.exp(np.asarray(jax.jit(lambda f, x: f.log_prob(x))(flow, xx), np.float64))
    assert abs(p.sum() * (2.0 / n) * (1.0 / (n // 2)) - 1.0) < 1e-3
    assert p.max() < 1.0 and p.min() > 0.0  # not the constant 1/2 of the default: the classifier acts


def test_float64_and_jit():
    with jax.enable_x64(True):
        x = jnp.array([[-1.0, 0.5], [0.0, -2.0]], jnp.float64)
        for t in (AbsSurjection(), AbsSurjection(features=(1,))):
            z, v = jax.jit(lambda t, x: t.forward(x))(t, x)
            assert z.dtype == jnp.float64 and v.dtype == jnp.float64
            assert t.inverse(z, key=jax.random.key(0)).dtype == jnp.float64
        z, v = GenerativeAbsSurjection().forward(jnp.abs(x), key=jax.random.key(0))
        assert z.dtype == jnp.float64 and v.dtype == jnp.float64


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"AbsSurjection.*rank >= 2.*\(3,\)"):
        AbsSurjection().forward(jnp.ones(3))
    with pytest.raises(ValueError, match=r"AbsSurjection.*features \(2,\) out of range.*\(4, 2\)"):
        AbsSurjection(features=(2,)).forward(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="AbsSurjection.inverse is stochastic"):
        AbsSurjection().inverse(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="GenerativeAbsSurjection.forward is stochastic"):
        GenerativeAbsSurjection().forward(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="GenerativeAbsSurjection.*floating"):
        GenerativeAbsSurjection().inverse(jnp.ones((4, 2), jnp.int32))
    with pytest.raises(ValueError, match="distinct"):
        AbsSurjection(features=(0, 0))
    with pytest.raises(ValueError, match="same element twice"):
        AbsSurjection(features=(1, -1)).forward(jnp.ones((4, 2)))
    with pytest.raises(TypeError, match="AbsSurjection: classifier"):
        AbsSurjection(lambda z: z)
