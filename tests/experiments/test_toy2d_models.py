"""The 2-D models of Appendix I.1: parameter counts, the maths of the two AbsFlows, registry."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.experiments import get_experiment
from survae_jax.experiments.toy2d import MODELS, Toy2DConfig, build_model, num_parameters

X = jnp.array([[1.5, -2.5], [-0.7, 3.1], [2.2, 0.4], [-3.3, -1.2]])


def test_parameter_counts():
    base = num_parameters(build_model(Toy2DConfig(dataset="corners", model="baseline")))
    assert base == 4 * ((1 * 200 + 200) + (200 * 100 + 100) + (100 * 2 + 2))  # 82,808
    assert num_parameters(build_model(Toy2DConfig(dataset="corners", model="absflow"))) == base
    anti = num_parameters(build_model(Toy2DConfig(dataset="checkerboard", model="absflow")))
    assert anti == (2 * 200 + 200) + (200 * 100 + 100) + (100 + 1)
    assert 0.2 < anti / base < 0.3  # "~1/4 the number of parameters"


@pytest.mark.parametrize("dataset", ["corners", "eight_gaussians", "four_circles"])
def test_symmetric_absflow_is_symmetric(dataset):
    model = build_model(Toy2DConfig(dataset=dataset, model="absflow"))
    lp = model.log_prob(X)
    for flip in ([-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]):
        np.testing.assert_allclose(model.log_prob(X * jnp.array(flip)), lp, rtol=1e-5)
    assert model.exact


def test_antisymmetric_absflow_maths():
    model = build_model(Toy2DConfig(dataset="checkerboard", model="absflow"))
    abs_layer = model.transforms[0]
    z = X.at[:, 0].set(jnp.abs(X[:, 0]))
    logits = abs_layer.classifier.logits(z)[:, 0]
    p_pos = jax.nn.sigmoid(logits)
    expected = math.log(1 / 32) + jnp.log(jnp.where(X[:, 0] >= 0, p_pos, 1 - p_pos))
    np.testing.assert_allclose(model.log_prob(X), expected, rtol=1e-5)
    assert np.all(np.isneginf(np.asarray(model.log_prob(jnp.array([[0.5, 4.5]])))))  # outside the square
    s = model.sample(jax.random.key(0), 2000)
    assert np.all(np.abs(np.asarray(s)) <= 4.0)


def test_augmented_flow_is_a_bound():
    model = build_model(Toy2DConfig(dataset="corners", model="augmented"))
    assert not model.exact
    a = model.log_prob(X, key=jax.random.key(0))
    b = model.log_prob(X, key=jax.random.key(1))
    assert a.shape == (4,) and not np.allclose(a, b)
    assert model.sample(jax.random.key(0), 5).shape == (5, 2)


def test_registry_and_config():
    exp = get_experiment("toy2d")
    cfg = Toy2DConfig(dataset="four_circles", model="absflow", range_flow="logit")
    assert exp.config_from_dict({"experiment": "toy2d", **{**cfg.__dict__, "hidden": [200, 100]}}) == cfg
    assert cfg.coupling_scale_fn == "softplus" and Toy2DConfig().coupling_scale_fn == "exp"
    assert Toy2DConfig(dataset="eight_gaussians").abs_range_flow == "softplus"
    assert set(MODELS) == {"baseline", "absflow", "augmented", "spline", "spline_absflow"}
    with pytest.raises(ValueError, match="unknown model"):
        Toy2DConfig(model="glow")
    with pytest.raises(ValueError, match="unknown experiment"):
        get_experiment("cifar")


@pytest.mark.parametrize(("model", "dataset"), [("spline", "checkerboard"), ("spline_absflow", "corners"),
                                                ("spline_absflow", "checkerboard")])
def test_spline_models_build_and_train(model, dataset):
    """The spline models are the baseline / AbsFlow with RQS couplings; exact; 5 Adam steps lower
    the loss on a batch and keep log_prob finite, also for points in the splines' tails."""
    from survae_jax.data.toy2d import load_toy2d
    from survae_jax.training import TrainConfig, train
    from survae_jax.transforms import RQSCoupling

    cfg = Toy2DConfig(dataset=dataset, model=model, hidden=(16,))
    flow = build_model(cfg)
    couplings = [t for t in flow.transforms if isinstance(t, RQSCoupling)]
    assert len(couplings) == cfg.num_couplings and flow.exact
    data = np.asarray(load_toy2d(dataset, seed=0, num_train=256, num_test=8)[0])
    far = jnp.array([[3.9, -3.9], [0.1, 3.99]])  # in the splines' tails after the corners head's logit
    before = float(-jnp.mean(flow.log_prob(jnp.asarray(data))))
    res = train(flow, data, config=TrainConfig(steps=5, batch_size=256, log_every=5, checkpoint_every=0,
                                               progress=False))
    after = float(-jnp.mean(res.model.log_prob(jnp.asarray(data))))
    assert np.isfinite(after) and after < before
    assert np.all(np.isfinite(np.asarray(res.model.log_prob(far))))
    assert res.model.sample(jax.random.key(0), 5).shape == (5, 2)
    if model == "spline_absflow" and dataset == "corners":
        np.testing.assert_allclose(flow.log_prob(X * jnp.array([-1.0, 1.0])), flow.log_prob(X), rtol=1e-5)


def test_spline_models_refuse_a_scale_fn():
    with pytest.raises(ValueError, match="no effect on spline"):
        Toy2DConfig(model="spline", scale_fn="exp")
    assert Toy2DConfig(dataset="corners", model="spline_absflow", range_flow="logit").abs_range_flow == "logit"
    # the splines' default range flow keeps |x| in (0, 4) inside their interval: SoftplusInverse
    assert Toy2DConfig(dataset="corners", model="spline_absflow").abs_range_flow == "softplus"
    assert Toy2DConfig(dataset="corners", model="absflow").abs_range_flow == "logit"


def test_sample_writes_the_samples_beside_the_figure(tmp_path):
    exp = get_experiment("toy2d")
    cfg = Toy2DConfig(dataset="corners", model="baseline", num_couplings=1, hidden=(8,))
    model = build_model(cfg)
    key = jax.random.key(3)
    path = exp.sample(model, cfg, str(tmp_path / "s.png"), key, 100)
    assert path == str(tmp_path / "s.png") and (tmp_path / "s.png").stat().st_size > 1000
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (100, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, np.asarray(jax.jit(lambda m, k: m.sample(k, 100))(model, key)))
