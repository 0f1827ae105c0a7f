"""Image experiments of Appendix I.3: the slicing baseline against MaxPoolFlow, in bits/dim.

``survae-jax train image --dataset mnist|fashion_mnist|cifar10|digits --model baseline|maxpoolflow
[--preset paper|cifar10|cpu]``. The models are :mod:`survae_jax.experiments.image_flows`
(variational dequantization, 2 scales of 12 ``[Conv1x1, affine coupling(DenseNet)]`` steps,
``Squeeze2d + Slice`` or ``MaxPoolSurjection2d`` between them). Training as I.3: Adamax,
learning rate 1e-3 linearly warmed up over 5,000 steps and decayed by 0.995 per epoch for 500
epochs, then a 50-epoch cool-down at 2e-5; batch 32. Metrics: ``test_bpd`` (the ELBO over the
whole test set) and ``test_iwbo_bpd`` (the IWBO with ``k = iwbo_samples``, on the first
``iwbo_examples`` test images), bits per dimension of the 8-bit data (lower is better).

Paper (CIFAR-10, IWBO k = 1000): baseline 3.08, MaxPoolFlow 3.09 bits/dim. The reference's
models have 105,023,968 parameters at CIFAR-10 size and 104,996,536 at MNIST size; the
``paper`` preset builds the same counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from survae_jax import metrics
from survae_jax.data.images import IMAGE_SHAPES, NUM_LEVELS, NUM_TEST, load_images
from survae_jax.experiments.flags import positive_int
from survae_jax.experiments.image_flows import (
    dequantization_flow,
    glow_step,
    multiscale_flow,
    sample_images,
)
from survae_jax.experiments.registry import Experiment, num_parameters
from survae_jax.flow import Flow
from survae_jax.plotting import plot_image_grid
from survae_jax.evaluation import evaluate
from survae_jax.training import TrainConfig
from survae_jax.transforms.surjections.dequantization import VariationalDequantization

MODELS = {"baseline": "slice", "maxpoolflow": "max"}
DATASETS = tuple(NUM_LEVELS)
#: parameters of the reference PyTorch models (2 scales x 12 steps), by image shape.
REFERENCE_NUM_PARAMETERS = {(32, 32, 3): 105_023_968, (28, 28, 1): 104_996_536}
#: the paper's CIFAR-10 test bits/dim (IWBO, k = 1000).
PAPER_CIFAR10_BPD = {"baseline": 3.08, "maxpoolflow": 3.09}
#: published MNIST bits/dim of other flows (Dinh et al. 2017 as reported by later work; Kingma & Dhariwal 2018).
PUBLISHED_MNIST_BPD = {"RealNVP": 1.06, "Glow": 1.05}


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Model, schedule and evaluation of one image run (defaults: the paper's set-up, on MNIST).

    Attributes:
      dataset: ``mnist``, ``fashion_mnist``, ``cifar10`` (needs ``data_dir``) or ``digits``.
      model: ``baseline`` (slicing) or ``maxpoolflow`` (max pooling).
      data_dir: the CIFAR-10 batches' folder (or another MNIST/Fashion-MNIST folder).
      num_scales, num_steps: 2 scales of 12 steps.
      actnorm: ActNorm in each step and after the last scale (off, as the reference's default).
      densenet_blocks, densenet_channels, densenet_depth, densenet_growth: 1, 64, 10, 64.
      dequant_steps, dequant_context: 4 coupling steps and 32 context channels in ``q(u|x)``.
      context_depth, context_growth: the dense blocks of the context net (4, 16).
      epochs: epochs of the main phase (500), then ``cooldown_epochs`` (50) at ``cooldown_lr``.
      steps: total optimizer steps; ``None``: ``(epochs + cooldown_epochs)`` epochs. The cool-down
        always starts after ``epochs`` epochs.
      batch_size, lr, warmup_steps, decay_per_epoch, cooldown_lr: 32, 1e-3, 5,000, 0.995, 2e-5.
      num_train: train on the first ``num_train`` images only (``None``: all).
      iwbo_samples, iwbo_examples, iwbo_chunk: the test IWBO's ``k`` (1,000), how many test
        images (``None``: all; more than the test set holds is said on stderr at evaluation and
        refused by ``--iwbo-examples``) and importance samples per vectorised chunk.
      eval_batch_size: test images per evaluation batch.
      seed, log_every, checkpoint_every (``None``: once per epoch).

    Data: integer images ``(B, H, W, C)``; metrics in nats and bits/dim.

    Raises:
      ValueError: an unknown dataset or model, ``cifar10`` without ``data_dir``.

    Source: Nielsen et al. 2020, Appendix I.3 and the reference code's CIFAR-10 command.
    """

    dataset: str = "mnist"
    model: str = "maxpoolflow"
    data_dir: str | None = None
    num_scales: int = 2
    num_steps: int = 12
    actnorm: bool = False
    densenet_blocks: int = 1
    densenet_channels: int = 64
    densenet_depth: int = 10
    densenet_growth: int = 64
    dequant_steps: int = 4
    dequant_context: int = 32
    context_depth: int = 4
    context_growth: int = 16
    epochs: int = 500
    cooldown_epochs: float = 50
    steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 5000
    decay_per_epoch: float = 0.995
    cooldown_lr: float = 2e-5
    num_train: int | None = None
    iwbo_samples: int = 1000
    iwbo_examples: int | None = None
    iwbo_chunk: int = 10
    eval_batch_size: int = 100
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int | None = None

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"ImageConfig: dataset must be one of {DATASETS}, got {self.dataset!r}.")
        if self.model not in MODELS:
            raise ValueError(f"ImageConfig: model must be one of {tuple(MODELS)}, got {self.model!r}.")
        if self.dataset == "cifar10" and self.data_dir is None:
            raise ValueError("ImageConfig: cifar10 is read from a folder of its python batches "
                             "(data_batch_1..5, test_batch): give data_dir (--data-dir).")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the dataset."""
        return IMAGE_SHAPES[self.dataset]

    @property
    def num_levels(self) -> int:
        """Pixel levels ``L`` (256, or 17 for the digits)."""
        return NUM_LEVELS[self.dataset]

    @property
    def net(self) -> dict:
        """The DenseNet sizes of the couplings."""
        return dict(num_blocks=self.densenet_blocks, mid_channels=self.densenet_channels,
                    depth=self.densenet_depth, growth=self.densenet_growth)


def paper_config(dataset: str = "mnist", model: str = "maxpoolflow", **kw) -> ImageConfig:
    """Appendix I.3 in full (about two GPU-weeks on CIFAR-10): 105,023,968 parameters there.

    Raises:
      ValueError: see :class:`ImageConfig`.

    Source: Nielsen et al. 2020, Appendix I.3.
    """
    return ImageConfig(dataset=dataset, model=model, **kw)


def cpu_config(dataset: str = "mnist", model: str = "maxpoolflow", **kw) -> ImageConfig:
    """A reduced model and schedule sized for a 2-core CPU on MNIST (see the README for timings).

    2 scales of 4 steps whose DenseNets have 1 block, 32 channels, depth 2, growth 16; a
    dequantization flow of 2 steps with 16 context channels (context blocks of depth 2, growth
    8); 232,428 parameters on MNIST. Schedule: 2 epochs (3,750 steps of 32 on MNIST) with a
    1,000-step warm-up and x0.995 per epoch, then a 0.25-epoch (469-step) cool-down at 2e-5;
    the IWBO with k = 100 on the first 500 test images (all 360 of the digits).

    Raises:
      ValueError: see :class:`ImageConfig`.

    Source: this library (a reduced version of Nielsen et al. 2020, Appendix I.3, sized for
    the CPU by measurement).
    """
    base = dict(num_steps=4, densenet_blocks=1, densenet_channels=32, densenet_depth=2, densenet_growth=16,
                dequant_steps=2, dequant_context=16, context_depth=2, context_growth=8,
                epochs=2, cooldown_epochs=0.25, warmup_steps=1000,
                iwbo_samples=100, iwbo_examples=min(500, NUM_TEST.get(dataset, 500)), iwbo_chunk=25,
                eval_batch_size=250)
    return ImageConfig(dataset=dataset, model=model, **{**base, **kw})


PRESETS = {"paper": paper_config, "cifar10": paper_config, "cpu": cpu_config}


def build_model(cfg: ImageConfig, *, key: jax.Array | None = None) -> Flow:
    """The baseline or MaxPoolFlow of ``cfg`` over integer images ``(B, H, W, C)``.

    Args:
      cfg: the configuration; key: initialisation key (default ``key(cfg.seed)``).

    Returns:
      A :class:`~survae_jax.Flow` (``log_prob``: a one-sample ELBO in nats).


    Source: Nielsen et al. 2020, Appendix I.3.
    """
    rngs = nnx.Rngs(jax.random.key(cfg.seed) if key is None else key)
    encoder = dequantization_flow(cfg.image_shape, cfg.num_levels, num_steps=cfg.dequant_steps,
                                  context_channels=cfg.dequant_context, net=cfg.net,
                                  context_depth=cfg.context_depth, context_growth=cfg.context_growth, rngs=rngs)
    return multiscale_flow(cfg.image_shape, glow_step(cfg.net, rngs=rngs, actnorm=cfg.actnorm),
                           num_scales=cfg.num_scales, num_steps=cfg.num_steps, pooling=MODELS[cfg.model],
                           num_levels=cfg.num_levels, dequantizer=VariationalDequantization(encoder),
                           final_actnorm=cfg.actnorm)


def steps_per_epoch(cfg: ImageConfig, num_train: int) -> int:
    """``num_train // batch_size`` (1,875 for MNIST's 60,000 in batches of 32).

    Raises: ``ZeroDivisionError`` for ``batch_size == 0``.

    Source: this library (the epoch of :func:`~survae_jax.training.train`).
    """
    return num_train // cfg.batch_size


def total_steps(cfg: ImageConfig, num_train: int) -> int:
    """``cfg.steps``, or ``(epochs + cooldown_epochs)`` epochs.

    Raises: ``ZeroDivisionError`` for ``batch_size == 0``.

    Source: Nielsen et al. 2020, Appendix I.3 (500 + 50 epochs on CIFAR-10).
    """
    if cfg.steps is not None:
        return int(cfg.steps)
    return int(round((cfg.epochs + cfg.cooldown_epochs) * steps_per_epoch(cfg, num_train)))


def learning_rate_schedule(cfg: ImageConfig, num_train: int) -> optax.Schedule:
    """``lr(t) = lr * min(1, (t + 1) / warmup) * decay ** floor(t / E)`` for ``t < epochs * E``,
    then ``cooldown_lr`` (``E`` steps per epoch); step ``()`` -> learning rate ``()`` float32.

    Raises: ``ZeroDivisionError`` for ``batch_size == 0``.

    Source: Nielsen et al. 2020, Appendix I.3 (warm-up 5,000 steps, x0.995 per epoch, cool-down
    at 2e-5), as the reference code's ``--warmup``, ``--gamma`` and ``train_more.py``.
    """
    per_epoch = max(steps_per_epoch(cfg, num_train), 1)
    warmup = max(int(cfg.warmup_steps), 1)
    main = cfg.epochs * per_epoch

    def schedule(t):
        t = jnp.asarray(t, jnp.float32)
        lr = cfg.lr * jnp.minimum(1.0, (t + 1.0) / warmup) * cfg.decay_per_epoch ** jnp.floor(t / per_epoch)
        return jnp.where(t < main, lr, cfg.cooldown_lr)

    return schedule


def iwbo_fn(num_samples: int, chunk_size: int):
    """``log_prob_fn(model, batch, key)`` for :func:`~survae_jax.evaluation.evaluate`: the IWBO ``(B,)`` nats.

    The returned function raises what ``Flow.iwbo`` raises.

    Source: Burda et al. 2016; Nielsen et al. 2020, Appendix I.3 (k = 1000 on CIFAR-10).
    """
    def fn(model, batch, key):
        return model.iwbo(batch, key=key, num_samples=num_samples, chunk_size=chunk_size)
    return fn


class ImageExperiment(Experiment):
    """``survae-jax train image --dataset D --model baseline|maxpoolflow [--preset paper|cifar10|cpu]``.

    Test metrics: ``test_bpd`` and ``test_nats`` (negative ELBO over the test set),
    ``test_iwbo_bpd`` with ``iwbo_samples`` (k) and ``iwbo_examples``, the ELBO on the same
    images (``test_bpd_iwbo_subset``), ``num_parameters`` beside the reference's, and the
    count of sampled pixels that fell outside the levels. Figures: ``samples.png`` and
    ``test_images.png``. Data: integer images ``(N, H, W, C)``.

    Raises:
      ValueError: unknown flags or values (see :class:`ImageConfig`).
      FileNotFoundError: data that are not installed or not in ``--data-dir``.

    Source: Nielsen et al. 2020, Appendix I.3.
    """

    name = "image"
    description = "slicing baseline / MaxPoolFlow multi-scale image flows in bits/dim (Appendix I.3)"
    config_cls = ImageConfig

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", choices=DATASETS, default="mnist")
        parser.add_argument("--model", choices=tuple(MODELS), default="maxpoolflow")
        parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                            help="paper / cifar10 (default): Appendix I.3 in full, meant for a GPU; "
                                 "cpu: the reduced model and schedule for 2 CPU cores")
        parser.add_argument("--data-dir", dest="data_dir", default=None,
                            help="folder of the CIFAR-10 python batches (data_batch_1..5, test_batch)")
        parser.add_argument("--epochs", type=positive_int, default=None,
                            help="epochs before the cool-down (default: 500 paper, 2 cpu)")
        parser.add_argument("--iwbo-samples", dest="iwbo_samples", type=positive_int, default=None,
                            help="importance samples k of the test IWBO (default: 1000 paper, 100 cpu)")
        parser.add_argument("--iwbo-examples", dest="iwbo_examples", type=positive_int, default=None,
                            help="test images of the IWBO, at most the test set's (default: all paper, "
                                 "500 cpu, all 360 of the digits)")

    def common_flag_help(self) -> dict[str, str]:
        return {
            **super().common_flag_help(),
            "steps": "optimizer steps in all (default: epochs + cool-down epochs; MNIST cpu: 4,219)",
            "batch_size": "examples per optimizer step (default 32)",
            "lr": "peak Adamax learning rate after the warm-up, then x0.995 per epoch (default 1e-3)",
            "checkpoint_every": "steps between checkpoints, 0: only at the end (default: an epoch)",
        }

    def config_from_args(self, args: argparse.Namespace) -> ImageConfig:
        """The preset's config with the given flags (an ``--iwbo-samples`` that the preset's
        chunk does not divide gets the largest chunk that does).

        Raises:
          ValueError: values :class:`ImageConfig` rejects (``cifar10`` without ``--data-dir``), an
            ``--iwbo-examples`` above the test set's size (read from ``--data-dir`` when given).
        """
        preset = PRESETS[getattr(args, "preset", "paper")]
        names = {f.name for f in dataclasses.fields(ImageConfig)}
        given = {k: v for k, v in vars(args).items() if k in names and v is not None}
        cfg = preset(**given)
        if cfg.iwbo_samples % cfg.iwbo_chunk:
            cfg = dataclasses.replace(cfg, iwbo_chunk=math.gcd(cfg.iwbo_samples, cfg.iwbo_chunk))
        if "iwbo_examples" in given:
            n = self._num_test(cfg)
            if cfg.iwbo_examples > n:
                where = f" in {cfg.data_dir}" if cfg.data_dir is not None else ""
                raise ValueError(f"image: --iwbo-examples {cfg.iwbo_examples:,} is more than the {n:,} test "
                                 f"images of {cfg.dataset}{where}; give at most {n:,}.")
        return cfg

    def _num_test(self, config: ImageConfig) -> int:
        """Test images of the config's dataset (read from ``data_dir`` when it is given)."""
        if config.data_dir is None and config.dataset in NUM_TEST:
            return NUM_TEST[config.dataset]
        return len(load_images(config.dataset, "test", directory=config.data_dir)[0])

    def notes(self, config: ImageConfig, args: argparse.Namespace) -> list[str]:
        """On a CPU backend, the paper preset's cost and the ``--preset cpu`` alternative."""
        if getattr(args, "preset", "paper") != "cpu" and jax.default_backend() == "cpu":
            return ["--preset paper (105M parameters, 550 epochs) is meant for a GPU and takes weeks on this "
                    "CPU backend; --preset cpu is the reduced model and schedule for 2 CPU cores."]
        return []

    def run_name(self, config: ImageConfig) -> str:
        return f"{self.name}_{config.dataset}_{config.model}_s{config.seed}"

    def _num_train(self, config: ImageConfig) -> int:
        full = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": None, "digits": 1437}[config.dataset]
        if full is None:
            full = len(self.load_data(config)[0])
        return full if config.num_train is None else min(full, int(config.num_train))

    def train_config(self, config: ImageConfig, *, progress: bool = True) -> TrainConfig:
        n = self._num_train(config)
        every = steps_per_epoch(config, n) if config.checkpoint_every is None else config.checkpoint_every
        return TrainConfig(steps=total_steps(config, n), batch_size=config.batch_size, seed=config.seed,
                           log_every=config.log_every, checkpoint_every=every, progress=progress)

    def load_data(self, config: ImageConfig):
        train, _ = load_images(config.dataset, "train", directory=config.data_dir)
        test, _ = load_images(config.dataset, "test", directory=config.data_dir)
        if config.num_train is not None:
            train = train[: int(config.num_train)]
        return train, test

    def build_model(self, config: ImageConfig) -> Flow:
        return build_model(config)

    def optimizer(self, config: ImageConfig) -> optax.GradientTransformation:
        """Adamax (Kingma & Ba 2015) with :func:`learning_rate_schedule` (I.3)."""
        return optax.adamax(learning_rate_schedule(config, self._num_train(config)))

    def eval_batch_size(self, config: ImageConfig) -> int:
        return int(config.eval_batch_size)

    def test_metrics(self, config: ImageConfig, log_likelihood, model, *, iwbo_samples=None) -> dict:
        d = math.prod(config.image_shape)
        common = {"test_nats": metrics.nats(log_likelihood), "test_exact": bool(model.exact),
                  "num_parameters": num_parameters(model),
                  "reference_num_parameters_2x12": REFERENCE_NUM_PARAMETERS.get(config.image_shape)}
        if iwbo_samples is not None:  # the runner's pass was the IWBO
            return {**common, "test_iwbo_bpd": metrics.bits_per_dim(log_likelihood, d),
                    "iwbo_samples": int(iwbo_samples), "iwbo_examples": len(log_likelihood)}
        test = self.load_data(config)[1]
        m = len(test) if config.iwbo_examples is None else min(int(config.iwbo_examples), len(test))
        if m < (config.iwbo_examples or 0):
            print(f"image: iwbo_examples={int(config.iwbo_examples):,} is more than the {len(test):,} test images "
                  f"of {config.dataset}; the IWBO is on all {len(test):,}.", file=sys.stderr, flush=True)
        chunk = math.gcd(int(config.iwbo_samples), int(config.iwbo_chunk))
        key = jax.random.fold_in(jax.random.key(config.seed), 11)
        iw = evaluate(model, test[:m], batch_size=max(1, min(m, config.eval_batch_size // chunk)), key=key,
                      log_prob_fn=iwbo_fn(int(config.iwbo_samples), chunk))
        return {
            **common,
            "test_bpd": metrics.bits_per_dim(log_likelihood, d),
            "test_iwbo_bpd": metrics.bits_per_dim(iw, d),
            "test_bpd_iwbo_subset": metrics.bits_per_dim(np.asarray(log_likelihood)[:m], d),
            "iwbo_samples": int(config.iwbo_samples),
            "iwbo_examples": m,
        }

    def plot(self, model, config, test_data, run_dir, key) -> list[str]:
        real = plot_image_grid(np.asarray(test_data[:64]), os.path.join(run_dir, "test_images.png"),
                               num_levels=config.num_levels)
        return [self.sample(model, config, os.path.join(run_dir, "samples.png"), key, 64), real]

    def sample(self, model, config, path, key, num_samples) -> str:
        """At most 256 images (a figure's worth; ``--num`` defaults to 50,000 for the 2-D data):
        a larger request draws 256 and says so."""
        n = max(1, min(int(num_samples), 256))
        if n < int(num_samples):
            print(f"image: drawing {n} of the {int(num_samples):,} samples asked for (at most 256 images a figure).")
        images, out_of_range = sample_images(model, key, n, config.num_levels)
        images = np.asarray(images)
        np.save(os.path.splitext(path)[0] + ".npy", images)
        if out_of_range:
            print(f"image: {out_of_range} of {images.size} sampled pixels fell outside 0..{config.num_levels - 1} "
                  "and were set to the nearest level.")
        return plot_image_grid(images, path, num_levels=config.num_levels)


EXPERIMENT = ImageExperiment()
