"""Flow and ConditionalFlow: exact density by quadrature, jit, vmap of sampling, bounds, nesting."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.distributions import ConditionalNormal, StandardNormal
from survae_jax.flow import ConditionalFlow, Flow
from survae_jax.nn import MLP
from survae_jax.testing import check_density_integrates, to_float64
from survae_jax.transforms.base import GenerativeSurjection
from survae_jax.transforms.bijections import ActNorm, AffineCoupling, Reverse, initialize_actnorm
from toy_layers import ContextShift, ElementwiseAffine, GaussianNoise

KEY = jax.random.key(0)


def issue2_flow(seed: int = 0) -> Flow:
    """Two affine couplings with MLPs, ActNorm and Reverse over a standard normal (issue 2).

    ActNorm is initialised on a shifted, stretched Gaussian batch so that it is not the
    identity; the MLPs keep their random (non-zero) last layer so that the couplings act.
    tanh hidden units keep the log-scales bounded, so the density has Gaussian-like tails and
    a finite grid holds its mass (with ReLU units and exp scales the tails can be heavy).
    """
    rngs = nnx.Rngs(seed)
    flow = Flow(
        StandardNormal((2,)),
        [
            AffineCoupling(MLP(1, 2, hidden=(32, 32), activation=jnp.tanh, rngs=rngs)),
            ActNorm(2),
            Reverse(2),
            AffineCoupling(MLP(1, 2, hidden=(32, 32), activation=jnp.tanh, rngs=rngs)),
        ],
    )
    data = jax.random.normal(jax.random.key(seed + 1), (512, 2)) * jnp.array([1.5, 0.7]) + jnp.array([0.5, -1.0])
    return initialize_actnorm(flow, data)


@pytest.fixture(scope="module")
def flow():
    return issue2_flow()


def test_issue2_flow_density_integrates_to_one(flow):
    # The grid must hold the mass: check that samples sit well inside it first.
    samples = np.asarray(flow.sample(KEY, 4000))
    assert np.all(np.abs(samples) < 8.0), np.abs(samples).max()
    value = check_density_integrates(flow, [-12.0, -12.0], [12.0, 12.0], num=400, expected=1.0, atol=1e-3)
    assert abs(value - 1.0) < 1e-3


def test_jit_log_prob_equals_eager(flow):
    x = jax.random.normal(KEY, (16, 2)) * 2.0
    eager = flow.log_prob(x)
    jitted = jax.jit(lambda f, x: f.log_prob(x))(flow, x)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
    assert eager.shape == (16,) and bool(jnp.all(jnp.isfinite(eager)))


def test_vmap_sample_over_keys_gives_different_draws(flow):
    draws = jax.vmap(lambda k: flow.sample(k, 3))(jax.random.split(KEY, 8))
    assert draws.shape == (8, 3, 2)
    flat = np.asarray(draws).reshape(8, -1)
    assert len({tuple(np.round(r, 6)) for r in flat}) == 8
    x, lp = flow.sample_and_log_prob(KEY, 5)
    np.testing.assert_allclose(lp, flow.log_prob(x), rtol=1e-5)


def test_forward_inverse_round_trip_and_bounds_on_exact_flow(flow):
    x = jax.random.normal(KEY, (6, 2))
    z, v = flow.forward(x)
    np.testing.assert_allclose(flow.inverse(z), x, rtol=1e-5, atol=1e-5)
    assert flow.exact and not flow.stochastic_forward
    lp = flow.log_prob(x)
    np.testing.assert_allclose(lp, v + StandardNormal((2,)).log_prob(z), rtol=1e-6)
    np.testing.assert_allclose(flow.elbo(x, key=KEY), lp, rtol=1e-6)
    np.testing.assert_allclose(flow.iwbo(x, key=KEY, num_samples=4, chunk_size=2), lp, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="num_samples"):
        flow.iwbo(x, key=KEY, num_samples=0)
    with pytest.raises(ValueError, match="chunk_size"):
        flow.iwbo(x, key=KEY, num_samples=4, chunk_size=3)


def test_flow_as_base_of_another_flow():
    inner = Flow(StandardNormal((2,)), [ElementwiseAffine(2, key=KEY)])
    outer = Flow(inner, [Reverse(2), ElementwiseAffine(2, key=jax.random.key(5))])
    x = jax.random.normal(KEY, (5, 2))
    y, v = outer.forward(x)
    np.testing.assert_allclose(outer.log_prob(x), v + inner.log_prob(y), rtol=1e-6)
    assert outer.exact and outer.sample(KEY, 7).shape == (7, 2)
    check_density_integrates(outer, [-10.0, -10.0], [10.0, 10.0], num=400)


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="base must be a Distribution"):
        Flow(object(), [])
    with pytest.raises(TypeError, match=r"transforms\[1\]"):
        Flow(StandardNormal((2,)), [Reverse(2), "not a layer"])


def test_conditional_flow_requires_context():
    c = jax.random.normal(KEY, (4, 3))
    x = jax.random.normal(jax.random.key(1), (4, 2))
    shift = ContextShift(2, 3, key=KEY)
    cf = ConditionalFlow(StandardNormal((2,)), [shift])
    for call in (lambda: cf.log_prob(x), lambda: cf.sample(KEY, 4), lambda: cf.forward(x)):
        with pytest.raises(ValueError, match="ConditionalFlow needs context"):
            call()
    # log p(x|c) = log N(x + c A) (a shift has V = 0)
    np.testing.assert_allclose(
        cf.log_prob(x, context=c), StandardNormal((2,)).log_prob(x + c @ shift.a[...]), rtol=1e-6
    )
    assert cf.sample(KEY, context=c).shape == (4, 2)
    np.testing.assert_allclose(
        jax.jit(lambda f, x, c: f.log_prob(x, context=c))(cf, x, c), cf.log_prob(x, context=c), rtol=1e-5
    )


def test_conditional_flow_with_conditional_base_and_context_net():
    c = jax.random.normal(KEY, (4, 3))
    x = jax.random.normal(jax.random.key(1), (4, 2))
    base = ConditionalNormal(MLP(5, 4, hidden=(8,), rngs=nnx.Rngs(0)))
    embed = MLP(3, 5, hidden=(8,), rngs=nnx.Rngs(1))
    cf = ConditionalFlow(base, [Reverse(2)], context_net=embed)
    np.testing.assert_allclose(cf.log_prob(x, context=c), base.log_prob(x[:, ::-1], context=embed(c)), rtol=1e-6)
    assert cf.sample(KEY, context=c).shape == (4, 2)


class AppendNoise(GenerativeSurjection):
    """``(B, D) -> (B, D + 1)``: appends one standard normal draw; ``V = -log N(noise)``."""

    def forward(self, x, *, key=None, context=None):
        self._check_input(x, ndim=2)
        e = jax.random.normal(self._require_key(key, "forward"), (x.shape[0], 1), x.dtype)
        return jnp.concatenate([x, e], -1), 0.5 * e[:, 0] ** 2 + 0.5 * math.log(2 * math.pi)

    def inverse(self, z, *, key=None, context=None):
        return z[:, :-1]


def test_stochastic_flow_needs_key_and_splits_it_per_layer():
    flow = Flow(StandardNormal((3,)), [AppendNoise(), AppendNoise()])
    x = jnp.zeros((4, 1))
    assert not flow.exact and flow.stochastic_forward
    with pytest.raises(ValueError, match="AppendNoise.forward is stochastic"):
        flow.log_prob(x)
    z, _ = flow.forward(x, key=KEY)
    # a key reused across layers would append the same draw twice
    assert not np.allclose(z[:, 1], z[:, 2])
    # with a stochastic layer, iwbo >= elbo on average and both are finite
    lp = flow.log_prob(x, key=KEY)
    iw = flow.iwbo(x, key=KEY, num_samples=16, chunk_size=4)
    assert lp.shape == iw.shape == (4,) and bool(jnp.all(jnp.isfinite(iw)))
    with pytest.raises(ValueError, match="exact"):
        check_density_integrates(Flow(StandardNormal((2,)), [GaussianNoise(2)]), -1.0, 1.0)


def test_float64_end_to_end(flow):
    with jax.enable_x64(True):
        f64 = to_float64(flow)
        x = jax.random.normal(KEY, (4, 2), jnp.float64)
        lp = jax.jit(lambda f, x: f.log_prob(x))(f64, x)
        assert lp.dtype == jnp.float64
        np.testing.assert_allclose(lp, flow.log_prob(x.astype(jnp.float32)), rtol=1e-4, atol=1e-4)
        f64.base = StandardNormal((2,), dtype=jnp.float64)
        assert f64.sample(KEY, 3).dtype == jnp.float64


def test_empty_batch_gives_empty_log_prob(flow):
    """B = 0 is a valid batch: log_prob is an empty (0,) array, not a reshape error."""
    out = flow.log_prob(jnp.zeros((0, 2)))
    assert out.shape == (0,)


def test_sampling_and_iwbo_without_key_raise_value_error(flow):
    with pytest.raises(ValueError, match="Flow.sample .*needs a PRNG key"):
        flow.sample(None, 4)
    with pytest.raises(ValueError, match="Flow.iwbo .*needs a PRNG key"):
        flow.iwbo(jnp.ones((2, 2)), key=None, num_samples=4)
    with pytest.raises(ValueError, match="Flow.sample_and_log_prob .*needs a PRNG key"):
        flow.sample_and_log_prob(None, 4)


def test_numpy_float64_input_is_taken_like_jnp_asarray_without_warnings(flow):
    """With x64 off JAX holds no float64: a NumPy float64 batch is taken as jnp.asarray takes it
    (float32, as everywhere in JAX), once, and no layer asks for float64 again (no warning)."""
    import warnings

    x = np.ones((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        lp = flow.log_prob(x)
    np.testing.assert_allclose(lp, flow.log_prob(jnp.ones((3, 2))), rtol=1e-6)


def test_iwbo_accepts_legacy_uint32_keys():
    """``jax.random.PRNGKey`` keys carry a trailing (2,) axis; chunking must keep it."""
    from survae_jax.transforms.surjections import GenerativeMaxSurjection

    f = Flow(StandardNormal((2,)), [GenerativeMaxSurjection(2, keepdims=True)])
    x = jnp.ones((2, 1))
    legacy = f.iwbo(x, key=jax.random.PRNGKey(0), num_samples=8, chunk_size=4)
    typed = f.iwbo(x, key=jax.random.wrap_key_data(jax.random.PRNGKey(0)), num_samples=8, chunk_size=4)
    np.testing.assert_allclose(legacy, typed, rtol=1e-6)
    assert legacy.shape == (2,) and np.all(np.isfinite(legacy))


@pytest.mark.parametrize("dataset", ["corners", "eight_gaussians"])  # Logit / SoftplusInverse head
def test_points_on_the_edge_of_the_support_get_minus_inf_not_nan(dataset):
    """Issue 11, item 7: a coordinate 0 (AbsFlow) or on the Logit range edge sends +-inf into the
    couplings; the chain gives that row -inf, the other rows their own value and finite gradients."""
    from survae_jax.experiments.toy2d import Toy2DConfig, build_model

    flow = build_model(Toy2DConfig(dataset=dataset, model="absflow", hidden=(8,)))
    x = jnp.array([[0.0, 1.0], [4.0, 1.0], [1.0, -4.0], [1.0, 1.0]])
    inside = flow.log_prob(x[3:])[0]
    for lp in (flow.log_prob(x), jax.jit(lambda f, x: f.log_prob(x))(flow, x)):
        assert not np.isnan(np.asarray(lp)).any()
        assert lp[0] == -np.inf and np.isfinite(float(lp[3]))
        np.testing.assert_allclose(lp[3], inside, rtol=1e-6)
        if dataset == "corners":  # |x| = 4 is Logit's edge too
            assert lp[1] == -np.inf and lp[2] == -np.inf

    def loss(f):
        lp = f.log_prob(x)
        return jnp.where(jnp.isfinite(lp), lp, 0.0).sum()

    grads = nnx.grad(loss)(flow)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    assert np.isfinite(np.asarray(jax.grad(lambda x: flow.log_prob(x)[3])(x)[3])).all()


def test_sample_and_log_prob_sums_v_on_the_sampling_path():
    """Issue 11, item 6: samples of Logit + Scale(0.05) round to 1.0 in float32; their log p
    comes from the latent (V of Logit in z: softplus(z) + softplus(-z)), finite and exact."""
    from survae_jax.transforms import Compose, Logit, Scale

    for flow in (Flow(StandardNormal((1,)), [Logit(), Scale(0.05)]),
                 Flow(StandardNormal((1,)), [Compose([Logit(), Scale(0.05)])])):
        for run in (flow.sample_and_log_prob, jax.jit(lambda k, n: flow.sample_and_log_prob(k, n), static_argnums=1)):
            x, lp = run(jax.random.key(0), 2000)
            assert int((x == 1.0).sum()) > 100  # the rounded samples are there
            k_base = jax.random.split(jax.random.split(jax.random.key(0))[0])[0]
            u = np.asarray(StandardNormal((1,)).sample(k_base, 2000), np.float64)[:, 0]
            y = u / 0.05  # the Logit's latent
            expected = (-0.5 * u**2 - 0.5 * math.log(2 * math.pi) + math.log(0.05)
                        + np.logaddexp(0, y) + np.logaddexp(0, -y))
            np.testing.assert_allclose(np.asarray(x)[:, 0], 1 / (1 + np.exp(-y)), atol=1e-6)
            np.testing.assert_allclose(lp, expected, rtol=1e-5, atol=1e-5)


def test_latent_side_v_of_the_elementwise_maps_equals_their_forward_v():
    from survae_jax.transforms import Logit, Scale, Shift, Sigmoid, Softplus, SoftplusInverse, Tanh

    z = {"unit": jnp.array([[0.1, 0.5, 0.93]]), "pos": jnp.array([[0.2, 1.0, 3.0]]), "real": jnp.array([[-2.0, 0.3, 1.5]])}
    for layer, dom in [(Sigmoid(), "unit"), (Logit(0.1), "real"), (Softplus(), "pos"), (SoftplusInverse(), "real"),
                       (Tanh(), "unit"), (Scale(jnp.array([2.0, -3.0, 0.5])), "real"), (Shift(1.0), "real")]:
        x, v = layer.inverse_and_log_det(z[dom])
        np.testing.assert_allclose(x, layer.inverse(z[dom]), rtol=1e-6)
        np.testing.assert_allclose(v, layer.forward(x)[1], rtol=1e-5, err_msg=layer.name)


def test_conditional_flow_draws_one_sample_per_context_row():
    from survae_jax import ConditionalFlow
    from survae_jax.distributions import ConditionalNormal

    flow = ConditionalFlow(ConditionalNormal(lambda c: jnp.concatenate([c, jnp.zeros_like(c)], -1)), [])
    c = jnp.arange(6.0).reshape(3, 2)
    assert flow.sample(KEY, context=c).shape == (3, 2)
    assert flow.sample(KEY, 3, context=c).shape == (3, 2)
    x, lp = flow.sample_and_log_prob(KEY, 3, context=c)
    assert x.shape == (3, 2) and lp.shape == (3,)
    with pytest.raises(ValueError, match="num_samples=4"):
        flow.sample(KEY, 4, context=c)


def test_sample_and_log_prob_of_a_misspecified_flow_is_minus_inf_not_nan():
    from survae_jax.transforms import Scale, Tanh

    # base samples outside (-0.05, 0.05) have no preimage under Scale(0.05) o Tanh: density 0
    _, lp = Flow(StandardNormal((1,)), [Tanh(), Scale(0.05)]).sample_and_log_prob(KEY, 500)
    assert not np.isnan(np.asarray(lp)).any() and np.isneginf(np.asarray(lp)).any()
    assert np.isfinite(np.asarray(lp)).any()


def test_exact_flow_elbo_needs_no_key():
    from survae_jax.transforms import Scale

    flow = Flow(StandardNormal((2,)), [Scale(2.0)])
    x = jnp.ones((3, 2))
    np.testing.assert_allclose(flow.elbo(x), flow.log_prob(x))


def test_generative_key_error_names_the_layer():
    from survae_jax.transforms import Augment, GenerativeMaxPoolSurjection2d

    with pytest.raises(ValueError, match=r"^GenerativeMaxPoolSurjection2d\.forward is stochastic"):
        GenerativeMaxPoolSurjection2d().forward(jnp.ones((1, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"^Augment\.forward is stochastic"):
        Augment(StandardNormal((2,)), 2).forward(jnp.ones((1, 2)))


@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 64])
def test_sampling_in_batches_gives_the_same_samples_for_a_bijective_flow(flow, batch_size):
    whole = flow.sample(KEY, 10)
    np.testing.assert_allclose(flow.sample(KEY, 10, batch_size=batch_size), whole, rtol=1e-5, atol=1e-6)
    jitted = jax.jit(lambda f, k: f.sample(k, 10, batch_size=batch_size))(flow, KEY)
    np.testing.assert_allclose(jitted, whole, rtol=1e-5, atol=1e-6)


def test_sampling_in_batches_draws_fresh_noise_per_batch_and_takes_context_rows():
    from toy_layers import InferenceAbs

    # InferenceAbs.inverse draws signs: with one key shared by the batches, batch i would repeat
    # batch 0's signs; with fold_in(key, i) the 4 batches of 16 rows differ
    flow = Flow(StandardNormal((8,)), [InferenceAbs(8)])
    x = flow.sample(KEY, 64, batch_size=16)
    signs = np.sign(np.asarray(x)).reshape(4, 16, 8)
    assert x.shape == (64, 8) and not any(np.array_equal(signs[0], signs[i]) for i in (1, 2, 3))
    np.testing.assert_allclose(np.abs(x), np.abs(flow.sample(KEY, 64)), rtol=1e-6)  # same base draws

    # a conditional flow whose layer reads the context: each context row goes with its own
    # latent in its batch (a misrouted row would shift the sample by 100s), padded rows dropped
    c = 100.0 * jnp.arange(14.0).reshape(7, 2)
    cf = ConditionalFlow(StandardNormal((2,)), [ContextShift(2, 2, key=jax.random.key(5))])
    whole = cf.sample(KEY, context=c)
    np.testing.assert_allclose(whole, cf.inverse(StandardNormal((2,)).sample(jax.random.split(KEY)[0], 7), context=c),
                               rtol=1e-6)
    for b in (1, 2, 3):
        np.testing.assert_allclose(cf.sample(KEY, context=c, batch_size=b), whole, rtol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        flow.sample(KEY, 4, batch_size=0)
