"""The models of ``benchmarks/run.py`` on the library's side, and their synthetic data.

Each entry of :data:`MODELS` gives ``build() -> (model, train_data, loss_fn, optimizer, batch)``.
Speed does not depend on the values of the data, so the data are synthetic with the real
shapes and types (drawn once from seed 0): toy points, SpatialMNIST-shaped clouds ``(N, 50, 2)``
in ``[0, 28)``, MNIST-shaped images ``(N, 28, 28, 1)`` of integers in ``[0, 255]`` and binary
images ``(N, 784)``. ``benchmarks/torch_peer.py`` builds the same architectures in PyTorch.

* ``toy_baseline``, ``toy_absflow``: the toy2d experiment's models (checkerboard baseline;
  symmetric AbsFlow of ``corners``), batch 128.
* ``permuteflow8``, ``permuteflow32``: the point-cloud experiment's PermuteFlow, 8 / 32 steps,
  Transformers d_model 64, 8 heads, 2 blocks, ff 256, dropout 0.1, batch 128.
* ``image``: a multi-scale image flow in the layout of Appendix I.3 at MNIST size, at a width a
  loaded 2-core CPU can time (not the 105M-parameter original): uniform dequantization (8 bits),
  Squeeze2d to ``(14, 14, 4)``, 2 steps of [Conv1x1, affine coupling with a gated DenseNet
  (1 block, mid 32, depth 2, growth 16)], Slice to 2 channels, Squeeze2d to ``(7, 7, 8)``, 2
  more steps, standard normal base; batch 32.
* ``vae``: a VAE with MLP encoder 784-512-256 -> 2x20 (normal) and decoder 20-256-512 -> 784
  (Bernoulli), standard normal prior, batch 128.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax
from flax import nnx

from survae_jax.distributions import StandardNormal
from survae_jax.distributions.conditional import ConditionalBernoulli, ConditionalNormal
from survae_jax.flow import Flow
from survae_jax.nn.densenet import DenseNet
from survae_jax.nn.mlp import MLP
from survae_jax.training import nll_loss
from survae_jax.transforms.bijections.conv1x1 import Conv1x1
from survae_jax.transforms.bijections.coupling import AffineCoupling
from survae_jax.transforms.bijections.squeeze import Squeeze2d
from survae_jax.transforms.stochastic.vae import VAE
from survae_jax.transforms.surjections.dequantization import UniformDequantization
from survae_jax.transforms.surjections.slicing import Slice

IMAGE = dict(mid=32, depth=2, growth=16, steps_per_scale=2)


def _rng():
    return np.random.default_rng(0)


def toy(model: str, n: int = 12_800):
    from survae_jax.data.toy2d import load_toy2d
    from survae_jax.experiments.toy2d import Toy2DConfig, build_model

    dataset = "checkerboard" if model == "baseline" else "corners"
    data, _ = load_toy2d(dataset, num_train=n, num_test=128)
    return build_model(Toy2DConfig(dataset=dataset, model=model)), data, nll_loss, optax.adam(1e-3), 128


def permuteflow(steps: int, n: int = 2_560):
    from survae_jax.experiments.point_cloud import PointCloudConfig, build_model, loss_fn

    cfg = PointCloudConfig(model="permuteflow", num_steps=steps)
    data = _rng().uniform(0, 28, (n, 50, 2)).astype(np.float32)
    return build_model(cfg), data, loss_fn, optax.adam(1e-3), 128


def image_flow(rngs: nnx.Rngs | None = None) -> Flow:
    rngs = rngs or nnx.Rngs(0)
    w = IMAGE

    def step(c):
        net = DenseNet(c // 2, c, num_blocks=1, mid_channels=w["mid"], depth=w["depth"],
                       growth=w["growth"], zero_init_last=True, rngs=rngs)
        return [Conv1x1(c, rngs=rngs), AffineCoupling(net, axis=-1)]

    layers = [UniformDequantization(num_bits=8), Squeeze2d()]
    for _ in range(w["steps_per_scale"]):
        layers += step(4)
    layers += [Slice(2, axis=-1), Squeeze2d()]
    for _ in range(w["steps_per_scale"]):
        layers += step(8)
    return Flow(StandardNormal((7, 7, 8)), layers)


def image(n: int = 640):
    data = _rng().integers(0, 256, (n, 28, 28, 1)).astype(np.int32)
    return image_flow(), data, nll_loss, optax.adam(1e-3), 32


def vae_model(rngs: nnx.Rngs | None = None) -> Flow:
    rngs = rngs or nnx.Rngs(0)
    encoder = ConditionalNormal(MLP(784, 40, (512, 256), rngs=rngs))
    decoder = ConditionalBernoulli(MLP(20, 784, (256, 512), rngs=rngs))
    return Flow(StandardNormal((20,)), [VAE(decoder, encoder)])


def vae(n: int = 12_800):
    data = (_rng().uniform(size=(n, 784)) < 0.13).astype(np.int32)
    return vae_model(), data, nll_loss, optax.adam(1e-3), 128


MODELS = {
    "toy_baseline": lambda: toy("baseline"),
    "toy_absflow": lambda: toy("absflow"),
    "permuteflow8": lambda: permuteflow(8),
    "permuteflow32": lambda: permuteflow(32),
    "image": image,
    "vae": vae,
}
