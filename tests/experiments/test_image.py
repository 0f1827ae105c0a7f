"""Image flows of Appendix I.3: the builders, presets, schedule, bits/dim and valid samples."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.data.images import load_digits
from survae_jax.experiments.image import (
    EXPERIMENT,
    REFERENCE_NUM_PARAMETERS,
    ImageConfig,
    build_model,
    cpu_config,
    learning_rate_schedule,
    paper_config,
    total_steps,
)
from survae_jax.experiments.image_flows import ChannelNormal, multiscale_flow, sample_images
from survae_jax.experiments.registry import num_parameters
from survae_jax.transforms import MaxPoolSurjection2d, Slice, Squeeze2d

TINY = dict(num_steps=1, densenet_channels=8, densenet_depth=1, densenet_growth=4, dequant_steps=1,
            dequant_context=4, context_depth=1, context_growth=4, batch_size=16, epochs=1, cooldown_epochs=0,
            warmup_steps=2, iwbo_samples=4, iwbo_examples=6, iwbo_chunk=2, eval_batch_size=60, log_every=2)


def tiny(model: str, **kw) -> ImageConfig:
    return cpu_config("digits", model, **{**TINY, **kw})


@pytest.fixture(scope="module")
def digits():
    return jnp.asarray(load_digits("test")[0][:8])


def test_layers_between_scales(digits):
    base = tiny("baseline")
    for model, kinds in (("baseline", (Squeeze2d, Slice)), ("maxpoolflow", (MaxPoolSurjection2d,))):
        flow = build_model(dataclasses.replace(base, model=model))
        names = [type(t) for t in flow.transforms]
        # dequantization, scale, shift, squeeze, 1 step (Conv1x1, coupling), down-sampling, 1 step
        assert names[3] is Squeeze2d and tuple(names[6:6 + len(kinds)]) == kinds
        assert isinstance(flow.base, ChannelNormal) and flow.base.event_shape == (2, 2, 4)
        assert not flow.exact
        ll = jax.jit(lambda f, x, k: f.log_prob(x, key=k))(flow, digits, jax.random.key(0))
        assert ll.shape == (8,) and np.all(np.isfinite(np.asarray(ll)))


def test_multiscale_builder_takes_any_step_fn(digits):
    from survae_jax.transforms import Reverse

    calls = []

    def step_fn(channels, scale, step):
        calls.append((channels, scale, step))
        return [Reverse(channels)]

    flow = multiscale_flow((8, 8, 1), step_fn, num_scales=2, num_steps=2, pooling="max", num_levels=17)
    assert calls == [(4, 0, 0), (4, 0, 1), (4, 1, 0), (4, 1, 1)]
    assert jax.jit(lambda f, x, k: f.log_prob(x, key=k))(flow, digits, jax.random.key(0)).shape == (8,)
    with pytest.raises(ValueError, match="pooling"):
        multiscale_flow((8, 8, 1), step_fn, num_scales=2, num_steps=1, pooling="avg")
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* num_scales = 8"):
        multiscale_flow((28, 28, 1), step_fn, num_scales=3, num_steps=1, pooling="max")


def _build_for_counting(build, cfg):
    """``build(cfg)`` with JAX's non-partitionable threefry: other random weights, the same
    parameters, and about half the time (XLA:CPU compiles the partitionable generator of each of
    the ~100 weight shapes several times slower)."""
    with jax.threefry_partitionable(False):
        return build(cfg)


@pytest.mark.slow
def test_paper_preset_has_the_reference_parameter_count_at_mnist_size():
    # the baseline here, MaxPoolFlow at CIFAR-10 size below (pooling and slicing hold no parameters)
    n = num_parameters(_build_for_counting(build_model, paper_config("mnist", "baseline")))
    print(f"baseline paper preset at MNIST size: {n:,} parameters (reference: 104,996,536)")
    assert n == REFERENCE_NUM_PARAMETERS[(28, 28, 1)] == 104_996_536


def test_schedule_warmup_decay_and_cooldown():
    cfg = ImageConfig(dataset="digits", model="baseline", batch_size=10, warmup_steps=4, epochs=2,
                      cooldown_epochs=0.5, lr=1e-3, decay_per_epoch=0.5, cooldown_lr=2e-5)
    n = 100  # 10 steps per epoch
    lr = learning_rate_schedule(cfg, n)
    np.testing.assert_allclose([float(lr(t)) for t in (0, 3, 9, 10, 19, 20, 24)],
                               [2.5e-4, 1e-3, 1e-3, 5e-4, 5e-4, 2e-5, 2e-5], rtol=1e-6)
    assert total_steps(cfg, n) == 25 and total_steps(dataclasses.replace(cfg, steps=7), n) == 7
    assert total_steps(paper_config("mnist"), 60_000) == 550 * 1875


def test_config_errors():
    with pytest.raises(ValueError, match="data_dir"):
        ImageConfig(dataset="cifar10")
    with pytest.raises(ValueError, match="model"):
        ImageConfig(dataset="mnist", model="avgpool")


def test_samples_are_integer_images_in_range():
    cfg = tiny("maxpoolflow")
    flow = build_model(cfg)
    key = jax.random.key(3)
    raw = np.asarray(jax.jit(lambda f, k: f.sample(k, 32))(flow, key))
    images, bad = sample_images(flow, key, 32, 17)
    images = np.asarray(images)
    assert images.dtype == np.uint8 and images.shape == (32, 8, 8, 1)
    assert images.min() >= 0 and images.max() <= 16
    outside = (raw < 0) | (raw > 16)
    assert bad == int(outside.sum()) > 0  # an untrained model does leave the range: counted, not wrapped
    np.testing.assert_array_equal(images, np.clip(raw, 0, 16))
    with pytest.raises(ValueError, match="num_levels"):
        sample_images(flow, key, 2, 257)


@pytest.mark.slow
def test_two_training_steps_on_the_digits_and_valid_samples(tmp_path):
    from survae_jax.experiments.runner import run_experiment

    cfg = tiny("baseline", steps=2, num_train=64)
    out = run_experiment(EXPERIMENT, cfg, str(tmp_path / "run"), progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["step"] == 2 and metrics["iwbo_samples"] == 4 and metrics["iwbo_examples"] == 6
    d = 64
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nats"] / (d * math.log(2)), rel=1e-9)
    # the IWBO of the same images is at least their ELBO (up to Monte Carlo noise with k = 4)
    assert metrics["test_iwbo_bpd"] <= metrics["test_bpd_iwbo_subset"] + 0.05
    assert 0 < metrics["test_bpd"] < 20 and set(out["figures"]) == {"samples.png", "test_images.png"}
    samples = np.load(tmp_path / "run" / "samples.npy")
    assert samples.dtype == np.uint8 and samples.shape == (64, 8, 8, 1) and samples.max() <= 16


@pytest.mark.slow
def test_cifar10_preset_one_training_step_on_the_fixture(tmp_path):
    """The cifar10 preset on a fixture of the CIFAR-10 files: data, the reference's parameter count,
    and (with ``SURVAE_CIFAR10_STEP=1``: its compilation takes 1.5 to 2.5 minutes on 2 cores, too
    much for ``make test``'s 15 minutes) one training step as the training loop takes it."""
    from survae_jax.data.images import write_cifar10_batch

    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 1) for i in range(1, 6)] + [("test_batch", 2)]:
        write_cifar10_batch(tmp_path / name, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.zeros(n, int))
    cfg = paper_config("cifar10", "maxpoolflow", data_dir=str(tmp_path))
    train_x, test_x = EXPERIMENT.load_data(cfg)
    assert train_x.shape == (5, 32, 32, 3) and test_x.shape == (2, 32, 32, 3)
    model = _build_for_counting(EXPERIMENT.build_model, cfg)
    n = num_parameters(model)
    print(f"cifar10 preset (MaxPoolFlow): {n:,} parameters (reference: 105,023,968)")
    assert n == REFERENCE_NUM_PARAMETERS[(32, 32, 3)] == 105_023_968
    if not os.environ.get("SURVAE_CIFAR10_STEP"):
        return
    # one optimizer step as the training loop takes it: loss, gradient, Adamax update, one jit
    import optax
    from flax import nnx

    from survae_jax.training import nll_loss

    opt = EXPERIMENT.optimizer(cfg)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(lambda p: nll_loss(nnx.merge(graphdef, p, rest), batch, key))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    args = (params, opt.init(params), jnp.asarray(train_x[:2]), jax.random.key(0))
    # LLVM's optimisation passes off: the program (28 DenseNet couplings) compiles about 3x faster,
    # and its convolutions are library calls that run as fast either way
    new, _, loss = step.lower(*args).compile(compiler_options={"xla_backend_optimization_level": 0})(*args)
    bpd = float(loss) / (32 * 32 * 3 * math.log(2))
    print(f"cifar10 preset, one step on the fixture: loss {float(loss):.1f} nats = {bpd:.3f} bits/dim")
    assert 3 < bpd < 12  # uniform noise images: about 8 bits/dim and more before training
    # the last convolution of every coupling starts at zero; the step moved each of them
    from survae_jax.transforms import AffineCoupling

    couplings = [m for _, m in nnx.iter_graph(model) if isinstance(m, AffineCoupling)]
    assert len(couplings) == 2 * 12 + 4  # 2 scales x 12 steps, 4 in the dequantization flow
    assert all(not np.any(np.asarray(c.net.out.kernel[...])) for c in couplings)
    nnx.update(model, new)
    assert all(np.any(np.asarray(c.net.out.kernel[...])) for c in couplings)


@pytest.mark.slow
def test_cli_trains_the_cpu_preset_on_the_digits(tmp_path, capsys):
    from survae_jax.cli import main

    out = tmp_path / "cli"
    rc = main(["train", "image", "--dataset", "digits", "--model", "maxpoolflow", "--preset", "cpu",
               "--steps", "2", "--iwbo-samples", "2", "--iwbo-examples", "4", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "bits/dim" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["densenet_channels"] == 32 and config["num_steps"] == 4  # the cpu preset
    assert metrics["iwbo_samples"] == 2 and os.path.isfile(out / "samples.png")
    assert main(["train", "image", "--dataset", "cifar10", "--out", str(tmp_path / "c")]) == 2


def test_iwbo_examples_beyond_the_test_set(tmp_path, monkeypatch, capsys):
    from survae_jax.cli import build_parser
    from survae_jax.data.images import write_cifar10_batch

    assert cpu_config("digits").iwbo_examples == 360 == len(load_digits("test")[0])  # the preset: all of them
    assert cpu_config("mnist").iwbo_examples == 500
    # a CIFAR-10 folder's test set is counted when --iwbo-examples is given
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 1) for i in range(1, 6)] + [("test_batch", 3)]:
        write_cifar10_batch(tmp_path / name, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.zeros(n, int))
    argv = ["train", "image", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--iwbo-examples"]
    assert EXPERIMENT.config_from_args(build_parser().parse_args(argv + ["3"])).iwbo_examples == 3
    with pytest.raises(ValueError, match=f"--iwbo-examples 4 is more than the 3 test images of cifar10 in {tmp_path}"):
        EXPERIMENT.config_from_args(build_parser().parse_args(argv + ["4"]))
    # a config made in Python is not refused; its evaluation says that the IWBO is on all the images
    cfg = tiny("baseline", iwbo_examples=9)
    test = load_digits("test")[0][:5]
    monkeypatch.setattr(EXPERIMENT, "load_data", lambda config: (test, test))
    monkeypatch.setattr("survae_jax.experiments.image.evaluate", lambda model, x, **kw: np.full(len(x), -10.0))
    m = EXPERIMENT.test_metrics(cfg, np.full(5, -20.0), build_model(cfg))
    assert m["iwbo_examples"] == 5 and m["test_iwbo_bpd"] == pytest.approx(10 / (64 * math.log(2)))
    assert "image: iwbo_examples=9 is more than the 5 test images of digits; the IWBO is on all 5." in (
        capsys.readouterr().err)
