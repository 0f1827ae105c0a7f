"""Every exact layer of the registry, as a one-layer flow, through ``to_distrax`` and ``to_numpyro``.

For each case: the layer's own input (inside its domain) gives the same log-density through
distrax, numpyro and ``Flow.log_prob`` in float64 (1e-6), for a batch and for a value with a
``(2, 3)`` sample shape; samples have shape ``sample_shape + event_shape``; for bijections,
``sample_and_log_prob`` (V summed on the sampling path) agrees with ``log_prob`` of the draws.
Inexact flows: distrax says so and needs a key, numpyro refuses them. Conditional flows: context.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "transforms"))
from cases_bijections import CASES as BIJECTIONS  # noqa: E402
from cases_inference import CASES as INFERENCE  # noqa: E402
from flax import nnx  # noqa: E402

import survae_jax as sj  # noqa: E402
from survae_jax.distributions import ConditionalNormal, StandardNormal  # noqa: E402
from survae_jax.interop import to_distrax, to_numpyro  # noqa: E402
from survae_jax.testing import to_float64  # noqa: E402
from survae_jax.testing.case import bind  # noqa: E402
from survae_jax.transforms import Augment, Reverse, Shift  # noqa: E402

SHAPES = [(), (5,), (2, 3)]


# the exact kinds of the registry (tests/transforms/registry.py): bijections and inference surjections
EXACT = [pytest.param(c, id=c.name) for c in [*BIJECTIONS, *INFERENCE]]


def test_every_exact_kind_is_covered():
    names = {c.values[0].name.split("-")[0] for c in EXACT}
    for layer in ("AffineCoupling", "Conv1x1", "Squeeze2d", "Logit", "Tanh", "AbsSurjection", "MaxSurjection",
                  "MaxPoolSurjection2d", "SortSurjection", "Slice", "ReLUSurjection", "RoundingSurjection"):
        assert layer in names
    assert len(EXACT) >= 45


# a standard normal is not the law of these layers' latents: their draws are checked for shape only
_SURJECTIONS = {"AbsSurjection", "MaxSurjection", "MaxPoolSurjection2d", "SortSurjection", "Slice", "ReLUSurjection",
                "RoundingSurjection"}


def _run_both(flow, x6, c1, key):
    """One compiled program per case: the log-densities of ``x6`` (6 rows, as a ``(2, 3)`` sample
    shape for distrax and a ``(6,)`` one for numpyro) and draws of sample shape ``(2, 3)``."""
    dd, nd = to_distrax(flow, context=c1), to_numpyro(flow, context=c1)
    c6 = None if c1 is None else jnp.broadcast_to(c1, (6, *c1.shape))
    want = flow.log_prob(x6, context=c6)
    got_d = dd.log_prob(x6.reshape(2, 3, *x6.shape[1:]))
    got_n = nd.log_prob(x6)
    xs_d = dd.sample(seed=key, sample_shape=(2, 3))
    xs_n = nd.sample(key, (2, 3))
    xs, lp = dd.sample_and_log_prob(seed=key, sample_shape=(2, 3))
    return want, got_d, got_n, xs_d, xs_n, xs, lp, dd.log_prob(xs)


def _fast_jit(fn, *args):
    """``jax.jit(fn)(*args)`` compiled without XLA's backend optimisations: a third of the compile
    time of these one-off programs, the same values to rounding."""
    compiled = jax.jit(fn).trace(*args).lower().compile(compiler_options={"xla_backend_optimization_level": 0})
    return compiled(*args)


@pytest.mark.parametrize("case", EXACT)
def test_exact_layer_agrees_and_samples(case):
    b = bind(case)
    assert b.transform.exact
    with jax.enable_x64(True):
        layer, x = to_float64(b.transform), to_float64(b.x)
        c1 = None if b.context is None else to_float64(b.context)[0]  # one example's context
        x6 = x[jnp.arange(6) % x.shape[0]]
        c6 = None if c1 is None else jnp.broadcast_to(c1, (6, *c1.shape))
        z = jax.eval_shape(lambda t, x: t.forward(x, key=b.key, context=c6)[0], layer, x6)
        flow = sj.Flow(StandardNormal(z.shape[1:]), [layer])
        dd, nd = to_distrax(flow, context=c1), to_numpyro(flow, context=c1)
        event = tuple(x.shape[1:])
        assert dd.exact and dd.inexact == () and dd.event_shape == nd.event_shape == event
        key = jax.random.key(3)
        want, got_d, got_n, xs_d, xs_n, xs, lp, lp_again = _fast_jit(_run_both, flow, x6, c1, key)
        assert want.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(want)))
        np.testing.assert_allclose(got_d, want.reshape(2, 3), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got_n, want, rtol=1e-6, atol=1e-9)
        assert xs_d.shape == xs_n.shape == xs.shape == (2, 3, *event) and lp.shape == (2, 3)
        for shape in [(), (5,)]:  # traced, not run: the same program at another sample count
            for s in (jax.eval_shape(lambda: dd.sample(seed=key, sample_shape=shape)),
                      jax.eval_shape(lambda: nd.sample(key, shape)),
                      jax.eval_shape(lambda: dd.sample_and_log_prob(seed=key, sample_shape=shape))[0]):
                assert s.shape == shape + event
        if case.name.split("-")[0] in _SURJECTIONS:
            return
        # V summed on the sampling path equals V of the data side
        ok = np.asarray(jnp.isfinite(xs).reshape(6, -1).all(-1) & jnp.isfinite(lp.reshape(-1)))
        assert ok.any()  # Sigmoid/Softplus/Tanh latents leave their range for some normal draws
        np.testing.assert_allclose(np.asarray(lp).reshape(-1)[ok], np.asarray(lp_again).reshape(-1)[ok],
                                   rtol=1e-6, atol=1e-9)


def test_inexact_flow_says_so_and_uses_the_key():
    # z = (x, u) with u ~ q = N(0, 1), then u + 1: ELBO = log N(x) + log N(u + 1) - log N(u) = log N(x) - u - 1/2
    flow = sj.Flow(StandardNormal((3,)), [Augment(StandardNormal((1,)), 2), Shift(jnp.array([0.0, 0.0, 1.0]))])
    x = jax.random.normal(jax.random.key(0), (4, 2))
    k1, k2 = jax.random.key(1), jax.random.key(2)
    d = to_distrax(flow)
    assert not d.exact and d.inexact == ("transforms[0] (Augment)",)
    assert "one-sample ELBO" in " ".join(type(d).__doc__.replace("*", "").split())
    with pytest.raises(ValueError, match=r"not exact \(transforms\[0\] \(Augment\).*needs a key"):
        d.log_prob(x)
    np.testing.assert_array_equal(d.log_prob(x, key=k1), flow.log_prob(x, key=k1))
    dk = to_distrax(flow, key=k2)
    np.testing.assert_array_equal(dk.log_prob(x), flow.log_prob(x, key=k2))  # the construction key, every call
    np.testing.assert_array_equal(dk.log_prob(x, key=k1), flow.log_prob(x, key=k1))
    assert not np.allclose(dk.log_prob(x), dk.log_prob(x, key=k1))
    # a bound below log p(x) = log N(x; 0, I), by 1/2 on average
    exact = jax.scipy.stats.norm.logpdf(x).sum(-1)
    elbos = jax.jit(jax.vmap(lambda k: d.log_prob(x, key=k)))(jax.random.split(k1, 400))
    np.testing.assert_allclose(elbos.mean(0), exact - 0.5, atol=0.2)
    assert float(elbos.std(0).min()) > 0.5
    xs, lp = d.sample_and_log_prob(seed=k1, sample_shape=(2, 3))
    assert xs.shape == (2, 3, 2) and lp.shape == (2, 3)
    with pytest.raises(ValueError, match=r"to_numpyro: .*transforms\[0\] \(Augment\) give only a bound"):
        to_numpyro(flow)


def test_conditional_flow_needs_one_context():
    net = sj.nn.MLP(2, 4, rngs=nnx.Rngs(0))
    flow = sj.ConditionalFlow(ConditionalNormal(net), [Shift(jnp.array([1.0, -1.0]))])
    for make in (to_distrax, to_numpyro):
        with pytest.raises(ValueError, match="is conditional; pass context="):
            make(flow)
    c = jnp.array([0.3, -0.7])
    x = jax.random.normal(jax.random.key(0), (2, 3, 2))
    want = flow.log_prob(x.reshape(6, 2), context=jnp.broadcast_to(c, (6, 2))).reshape(2, 3)
    for d in (to_distrax(flow, context=c), to_numpyro(flow, context=c)):
        np.testing.assert_allclose(d.log_prob(x), want, rtol=1e-6)
    assert to_distrax(flow, context=c).sample(seed=0, sample_shape=(5,)).shape == (5, 2)
    assert to_numpyro(flow, context=c).sample(jax.random.key(0), (2, 3)).shape == (2, 3, 2)


def test_bad_values_and_bad_flows_are_refused():
    flow = sj.Flow(StandardNormal((2,)), [Reverse(2)])
    d = to_distrax(flow)
    with pytest.raises(ValueError, match=r"DistraxFlow\(Flow\).log_prob: expected a value of shape "
                                          r"sample_shape \+ \(2,\)"):
        d.log_prob(jnp.zeros((4, 3)))
    with pytest.raises(TypeError, match="to_distrax: expected a survae_jax Flow"):
        to_distrax(object())
    with pytest.raises(TypeError, match="to_numpyro: expected a survae_jax Flow"):
        to_numpyro(lambda x: x)


def test_distrax_and_jit_compose():
    """The distribution is a pytree: jit over it, and distrax builds on it (Transformed, mixtures)."""
    import distrax

    flow = sj.Flow(StandardNormal((2,)), [Shift(jnp.array([1.0, 2.0]))])
    d = to_distrax(flow)
    x = jnp.array([[0.5, 1.0], [2.0, 3.0]])
    want = jax.scipy.stats.norm.logpdf(x + jnp.array([1.0, 2.0])).sum(-1)  # Shift: z = x + shift
    np.testing.assert_allclose(jax.jit(lambda d, x: d.log_prob(x))(d, x), want, rtol=1e-6)
    scaled = distrax.Transformed(d, distrax.Block(distrax.ScalarAffine(0.0, 2.0), 1))
    np.testing.assert_allclose(scaled.log_prob(2 * x), want - 2 * np.log(2.0), rtol=1e-6)
    mix = distrax.MixtureOfTwo(0.25, d, distrax.MultivariateNormalDiag(jnp.zeros(2)))
    other = jax.scipy.stats.norm.logpdf(x).sum(-1)
    # distrax's MixtureOfTwo(prob_a, a, b): weight prob_a on a
    np.testing.assert_allclose(mix.log_prob(x), jnp.logaddexp(np.log(0.25) + want, np.log(0.75) + other), rtol=1e-6)
    assert d.dtype == jnp.float32
