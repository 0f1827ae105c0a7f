"""VAEs on binarised MNIST (``survae_jax.experiments.vae``): the evaluation code's IWBO against the
closed-form log p(x) of a linear-Gaussian VAE, the binarisation rule, the three models' shapes,
the sample figure helpers and the CLI end to end."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from survae_jax.distributions import ConditionalNormal, StandardNormal
from survae_jax.experiments import vae as V
from survae_jax.flow import Flow
from survae_jax.transforms.stochastic.vae import VAE


class _Affine(nnx.Module):
    """c -> [A c + a, log_scale]: the mean and a constant log-scale of a ConditionalNormal."""

    def __init__(self, A, a, log_scale):
        self.A = nnx.Param(jnp.asarray(A, jnp.float64))
        self.a = nnx.Param(jnp.asarray(a, jnp.float64))
        self.log_scale = nnx.Param(jnp.asarray(log_scale, jnp.float64))

    def __call__(self, c):
        mean = c @ self.A[...].T + self.a[...]
        return jnp.concatenate([mean, jnp.broadcast_to(self.log_scale[...], mean.shape)], axis=-1)


def test_iwbo_of_a_linear_gaussian_vae_is_its_closed_form_log_px():
    """p(z) = N(0, I_2), p(x|z) = N(Wz + b, s^2 I_3): log p(x) = log N(x; b, WW^T + s^2 I).

    The encoder is diagonal (the true posterior is not) with 1.3x the posterior's marginal
    scales, so the ELBO sits KL(q || p(z|x)) below log p(x) (closed form, checked on average)
    and the IWBO with k = 1000 closes the gap to < 0.01 nats per point."""
    W = np.array([[1.2, -0.4], [0.3, 0.9], [-0.7, 0.5]])
    b, s = np.array([0.2, -0.1, 0.4]), 0.6
    cov_p = np.linalg.inv(np.eye(2) + W.T @ W / s**2)              # posterior covariance
    A, c = cov_p @ W.T / s**2, -cov_p @ W.T @ b / s**2             # posterior mean = A x + c
    q_scale = 1.3 * np.sqrt(np.diag(cov_p))
    x = np.random.default_rng(0).multivariate_normal(b, W @ W.T + s**2 * np.eye(3), size=48)
    log_px = stats.multivariate_normal(b, W @ W.T + s**2 * np.eye(3)).logpdf(x)
    S_q = np.diag(q_scale**2)
    kl = 0.5 * (np.trace(np.linalg.solve(cov_p, S_q)) - 2 + np.log(np.linalg.det(cov_p) / np.linalg.det(S_q)))
    with jax.enable_x64(True):
        decoder = ConditionalNormal(_Affine(W, b, np.full(3, math.log(s))))
        encoder = ConditionalNormal(_Affine(A, c, np.log(q_scale)))
        flow = Flow(StandardNormal((2,), dtype=jnp.float64), [VAE(decoder=decoder, encoder=encoder)])
        got = V.evaluate_bounds(flow, jnp.asarray(x), key=jax.random.key(0), num_samples=1000,
                                chunk_size=250, batch_size=16)
        many = V.evaluate_bounds(flow, jnp.asarray(np.repeat(x, 200, 0)), key=jax.random.key(1),
                                 num_samples=1, chunk_size=1, batch_size=4800)["elbo"]
    assert got["iwbo"].shape == got["elbo"].shape == (48,)
    # The IWBO is an estimate: per point within its Monte Carlo error, on average within 0.01 nats,
    # while the ELBO is KL = 0.28 nats below.
    np.testing.assert_allclose(got["iwbo"], log_px, atol=0.1)
    assert abs(np.mean(got["iwbo"] - log_px)) < 0.01 and kl > 0.15
    # ELBO = log p(x) - KL(q(z|x) || p(z|x)) on average (the KL is the same for every x here).
    gap = log_px.repeat(200) - many
    assert abs(gap.mean() - kl) < 4 * gap.std() / math.sqrt(gap.size)


def test_binarize_rule():
    images = jnp.broadcast_to(jnp.array([0, 51, 128, 255], jnp.uint8), (20_000, 4))
    x = np.asarray(V.binarize(images, jax.random.key(0)))
    assert x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    assert np.all(x[:, 0] == 0) and np.all(x[:, 3] == 1)
    np.testing.assert_allclose(x.mean(0), [0, 51 / 255, 128 / 255, 1], atol=0.012)
    img = np.random.default_rng(5).integers(0, 256, (3, 28, 28, 1)).astype(np.uint8)
    want = (np.random.default_rng(7).random(img.shape) < img / 255.0).astype(np.float32)
    np.testing.assert_array_equal(V.binarize_test(img, 7), want)  # the documented rule, seed 7
    np.testing.assert_array_equal(V.binarize_test(img, 7), V.binarize_test(img, 7))


@pytest.mark.parametrize("model", V.MODELS)
def test_models_are_lists_of_layers(model):
    cfg = V.VAEConfig(model=model, hidden=(16,), hvae_hidden=(8,), prior_hidden=(8,))
    flow = V.build_model(cfg)
    kinds = [type(t).__name__ for t in flow.transforms]
    assert kinds == {"vae": ["VAE"], "hvae": ["VAE", "VAE"],
                     "flowprior": ["VAE", "AffineCoupling", "Reverse", "AffineCoupling", "Reverse",
                                   "AffineCoupling", "Reverse", "AffineCoupling"]}[model]
    assert not flow.exact
    x = V.binarize(jnp.full((5, 28, 28, 1), 128, jnp.uint8), jax.random.key(0))

    @jax.jit  # one compiled program: eager dispatch of the MLPs is slow on a loaded CPU
    def run(f):
        return f.log_prob(x, key=jax.random.key(1)), V.decoder_means(f, jax.random.key(2), 6), V.reconstructions(f, x)

    lp, means, rec = (np.asarray(a) for a in run(flow))
    assert lp.shape == (5,) and np.all(np.isfinite(lp)) and np.all(lp < 0)
    assert means.shape == (6, 28, 28, 1) and rec.shape == (5, 28, 28, 1)
    assert means.min() > 0 and means.max() < 1  # probabilities, not Bernoulli draws
    # flowprior: the couplings start as the identity, so its first ELBO equals the plain vae's.
    if model == "flowprior":
        plain = V.build_model(dataclasses.replace(cfg, model="vae"))
        np.testing.assert_allclose(lp, run(plain)[0], rtol=1e-5)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown model 'glow'"):
        V.VAEConfig(model="glow")
    with pytest.raises(ValueError, match="iwbo_chunk=300 must divide iwbo_samples=1000"):
        V.VAEConfig(iwbo_chunk=300)
    assert V.VAEConfig().num_train_steps == 4680 and V.VAEConfig(steps=7).num_train_steps == 7


@pytest.mark.slow
def test_cli_trains_evaluates_and_resumes(tmp_path, capsys):
    from survae_jax.cli import main

    out = tmp_path / "run"
    args = ["train", "vae", "--model", "vae", "--log-every", "2", "--checkpoint-every", "2", "--iwbo-samples", "20",
            "--iwbo-chunk", "10", "--iwbo-examples", "30", "--out", str(out), "--no-progress"]
    assert main(args + ["--steps", "4"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["step"] == 4 and m["iwbo_samples"] == 20 and m["iwbo_examples"] == 30
    assert m["test_nats"] == pytest.approx(-m["test_elbo_nats"])
    assert m["test_iwbo_nats"] > m["test_elbo_nats_iwbo_subset"]  # IWBO(20) above the ELBO on the same digits
    assert (out / "samples.png").exists()
    assert main(args + ["--steps", "6", "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["resumed_from"] == 4
    capsys.readouterr()
    assert main(["eval", str(out), "--iwbo", "5"]) == 0  # the pass is the IWBO: labelled so, not recomputed
    ev = json.loads(capsys.readouterr().out)
    assert ev["iwbo_samples"] == 5 and ev["iwbo_examples"] == 30 and "test_elbo_nats" not in ev  # the run's subset
    assert ev["test_iwbo_nats"] == pytest.approx(-ev["test_iwbo_nll_nats"]) and ev["step"] == 6 and "test_nats" not in ev
