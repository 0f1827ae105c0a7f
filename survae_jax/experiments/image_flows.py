"""Multi-scale image flows of Appendix I.3: the slicing baseline and MaxPoolFlow, NHWC.

Both models of the paper share everything but the down-sampling between scales. Layers, data
side first (``forward`` = data -> latent), for images ``x`` ``(B, H, W, C)`` with ``L`` levels:

1. ``VariationalDequantization(q)``: ``y = x + u``, ``u ~ q(u|x)`` on ``[0, 1)^D``, with ``q``
   a conditional flow (:func:`dequantization_flow`); ``V = -log q(u|x)``;
2. ``Scale(1/L)``, ``Shift(-0.5)``: ``y / L - 1/2`` in ``[-1/2, 1/2)^D``; ``V = -D log L``;
3. ``Squeeze2d``: ``(H, W, C) -> (H/2, W/2, 4C)``;
4. per scale, ``num_steps`` steps from ``step_fn`` (the paper's: :func:`glow_step`,
   ``[Conv1x1, AffineCoupling(DenseNet)]``); between scales the down-sampling:
   ``Squeeze2d`` + ``Slice`` keeping ``4C`` of ``16C`` channels (the baseline, RealNVP's
   multi-scale architecture; ``p(x2|z)`` standard normal) or ``MaxPoolSurjection2d`` (2x2 max
   pooling; ``p(k|z) = 1/4``, the others the maximum minus half-normal noise). Both keep
   ``4C`` channels and halve ``H`` and ``W``;
5. the base: a normal with a learned mean and scale per channel (:class:`ChannelNormal`).

So ``log_prob`` is a one-sample ELBO of ``log P(x)`` of the integer images, in nats, and
``bits/dim = -ELBO / (D log 2)`` (:func:`survae_jax.metrics.bits_per_dim`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.distributions.standard import DiagonalNormal
from survae_jax.flow import ConditionalFlow, Flow
from survae_jax.nn.densenet import DenseBlock, DenseNet
from survae_jax.transforms.base import Transform
from survae_jax.transforms.bijections.actnorm import ActNorm
from survae_jax.transforms.bijections.conv1x1 import Conv1x1
from survae_jax.transforms.bijections.coupling import AffineCoupling
from survae_jax.transforms.bijections.elementwise import Logit
from survae_jax.transforms.bijections.scale_shift import Scale, Shift
from survae_jax.transforms.bijections.squeeze import Squeeze2d
from survae_jax.transforms.surjections.dequantization import VariationalDequantization
from survae_jax.transforms.surjections.maxpool import MaxPoolSurjection2d
from survae_jax.transforms.surjections.slicing import Slice

POOLINGS = ("slice", "max")
StepFn = Callable[[int, int, int], Sequence[Transform]]


class ChannelNormal(DiagonalNormal):
    """Normal over images ``(B, H, W, C)`` with a learned mean and log-scale per channel.

    ``log p(z) = sum_{h,w,c} log N(z[h, w, c]; mu_c, exp(log_sigma_c)^2)`` nats, ``(B,)``;
    ``2 C`` parameters, starting at ``mu = 0``, ``log_sigma = 0`` (a standard normal).

    Args:
      event_shape: ``(H, W, C)``.

    Raises:
      ValueError: ``log_prob`` of a tensor that is not ``(B, H, W, C)``.

    Source: the reference SurVAE code's ``ConvNormal2d``, the base of the image flows (I.3).
    """

    def __init__(self, event_shape: Sequence[int], dtype=jnp.float32):
        self.event_shape = tuple(int(s) for s in event_shape)
        c = self.event_shape[-1]
        self.loc = nnx.Param(jnp.zeros((c,), dtype))
        self.log_scale = nnx.Param(jnp.zeros((c,), dtype))


def coupling_net(in_channels: int, out_channels: int, net: dict, *, rngs: nnx.Rngs) -> DenseNet:
    """The couplings' conditioner: a gated ``DenseNet`` whose last convolution starts at zero.

    ``net`` holds ``num_blocks``, ``mid_channels``, ``depth``, ``growth`` (I.3: 1, 64, 10, 64).


    Source: Nielsen et al. (2020), Appendix I.3; zero init as the reference code.
    """
    return DenseNet(in_channels, out_channels, gated=True, zero_init_last=True, rngs=rngs, **net)


def glow_step(net: dict, *, rngs: nnx.Rngs, actnorm: bool = False) -> StepFn:
    """The paper's flow step as a ``step_fn`` for :func:`multiscale_flow`.

    ``step_fn(channels, scale, step)`` returns ``[ActNorm (optional), Conv1x1(C),
    AffineCoupling(DenseNet(C/2 -> C))]``: the coupling keeps the first ``C/2`` channels and
    maps the others by ``exp(2 tanh(s/2)) x2 + t`` (log-scale in ``(-2, 2)``, the reference's).

    The returned function raises ``ValueError`` for an odd ``C``.

    Source: Nielsen et al. (2020), Appendix I.3 (Conv1x1 of Glow, affine coupling of RealNVP).
    """

    def step_fn(channels: int, scale: int, step: int) -> list[Transform]:
        if channels % 2:
            raise ValueError(f"glow_step: the coupling needs an even number of channels, got {channels}.")
        layers: list[Transform] = [ActNorm(channels, axis=-1)] if actnorm else []
        layers += [Conv1x1(channels, rngs=rngs),
                   AffineCoupling(coupling_net(channels // 2, channels, net, rngs=rngs), scale_fn="tanh_exp")]
        return layers

    return step_fn


class DequantizationContext(nnx.Module):
    """Context net of the dequantization flow, ``(B, H, W, C)`` levels -> ``(B, H/2, W/2, K)``.

    ``x -> 2 x / (L - 1) - 1`` (to ``[-1, 1]``), a gated ``DenseBlock(C -> mid)``, a 2x2 stride-2
    convolution ``mid -> mid``, a gated ``DenseBlock(mid -> K)``; each block has ``depth``
    dense layers of ``growth`` channels (4 and 16 in the reference).

    Raises:
      ValueError: an input that is not ``(B, H, W, C)`` (from the first block).

    Source: the reference SurVAE code's ``DequantizationFlow`` context net (Appendix I.3).
    """

    def __init__(self, channels: int, num_levels: int, *, mid_channels: int, context_channels: int,
                 depth: int = 4, growth: int = 16, rngs: nnx.Rngs):
        self.num_levels = int(num_levels)
        self.block1 = DenseBlock(channels, mid_channels, depth=depth, growth=growth, rngs=rngs)
        self.down = nnx.Conv(mid_channels, mid_channels, (2, 2), strides=(2, 2), padding="VALID", rngs=rngs)
        self.block2 = DenseBlock(mid_channels, context_channels, depth=depth, growth=growth, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = 2.0 * x.astype(jnp.float32) / (self.num_levels - 1) - 1.0
        return self.block2(self.down(self.block1(h)))


def dequantization_flow(image_shape: Sequence[int], num_levels: int, *, num_steps: int, context_channels: int,
                        net: dict, context_depth: int = 4, context_growth: int = 16,
                        rngs: nnx.Rngs) -> ConditionalFlow:
    """``q(u|x)`` of variational dequantization: a conditional flow over ``u`` in ``(0, 1)^D``.

    Data side first: ``Logit`` (so sampling ends in a sigmoid), ``Squeeze2d`` (``(H, W, C) ->
    (H/2, W/2, 4C)``), ``Conv1x1``, then ``num_steps`` pairs ``[AffineCoupling(DenseNet(2C + K
    -> 4C), conditional), Conv1x1]`` whose nets also see the context ``(B, H/2, W/2, K)`` of
    :class:`DequantizationContext`; base :class:`ChannelNormal` over ``(H/2, W/2, 4C)``.

    Args:
      image_shape: ``(H, W, C)`` with even ``H`` and ``W``.
      num_levels: ``L``; the context is ``x`` in levels (``VariationalDequantization`` without
        ``num_bits`` passes the integers as floats).
      num_steps, context_channels: 4 and 32 in the reference.
      net: the DenseNet sizes (see :func:`coupling_net`).
      rngs: ``nnx.Rngs`` of the weights.

    Raises:
      ValueError: odd ``H`` or ``W``.

    Source: Ho et al. (2019), Flow++ (variational dequantization); the reference SurVAE code's
    ``DequantizationFlow`` (Appendix I.3).
    """
    h, w, c = (int(s) for s in image_shape)
    if h % 2 or w % 2:
        raise ValueError(f"dequantization_flow: expected an even height and width, got {tuple(image_shape)}.")
    ch = 4 * c
    context = DequantizationContext(c, num_levels, mid_channels=net["mid_channels"],
                                    context_channels=context_channels, depth=context_depth,
                                    growth=context_growth, rngs=rngs)
    layers: list[Transform] = [Logit(), Squeeze2d(), Conv1x1(ch, rngs=rngs)]
    for _ in range(num_steps):
        layers += [AffineCoupling(coupling_net(ch // 2 + context_channels, ch, net, rngs=rngs),
                                  conditional=True, scale_fn="tanh_exp"),
                   Conv1x1(ch, rngs=rngs)]
    return ConditionalFlow(ChannelNormal((h // 2, w // 2, ch)), layers, context_net=context)


def multiscale_flow(image_shape: Sequence[int], step_fn: StepFn, *, num_scales: int, num_steps: int,
                    pooling: str, num_levels: int = 256, dequantizer: Transform | None = None,
                    final_actnorm: bool = False) -> Flow:
    """A multi-scale image flow: dequantize, squeeze, ``num_scales`` scales of ``num_steps`` steps.

    The layers of the module docstring; your own ``step_fn(channels, scale, step) -> [layers]``
    gives the steps (e.g. :func:`glow_step`), each mapping ``(B, h, w, channels)`` to itself.
    Down-sampling between scales: ``pooling="slice"`` (``Squeeze2d`` + ``Slice``, the
    baseline) or ``"max"`` (``MaxPoolSurjection2d``, MaxPoolFlow); both map ``(B, h, w, 4C)``
    to ``(B, h/2, w/2, 4C)``.

    Args:
      image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by ``2 ** num_scales``.
      step_fn: the flow step builder.
      num_scales, num_steps: 2 and 12 for CIFAR-10 in the paper.
      pooling: ``"slice"`` or ``"max"``.
      num_levels: ``L`` (256 for 8-bit images, 17 for the 8x8 digits).
      dequantizer: the first layer, a ``VariationalDequantization`` (or uniform) in levels
        (without ``num_bits``); ``None``: ``UniformDequantization()``.
      final_actnorm: an ``ActNorm`` after the last scale (the reference's, with ``actnorm``).

    Returns:
      A :class:`~survae_jax.Flow` over integer images ``(B, H, W, C)``; its ``log_prob`` is
      a one-sample ELBO in nats; samples are ``int32`` images (see :func:`sample_images`).

    Raises:
      ValueError: an unknown ``pooling``, ``num_scales``/``num_steps`` < 1, or ``H``, ``W`` not
        divisible by ``2 ** num_scales``.

    Source: Nielsen et al. (2020), Appendix I.3 (baseline and MaxPoolFlow); RealNVP (Dinh et
    al., 2017) for the multi-scale architecture.
    """
    from survae_jax.transforms.surjections.dequantization import UniformDequantization

    h, w, c = (int(s) for s in image_shape)
    if pooling not in POOLINGS:
        raise ValueError(f"multiscale_flow: pooling must be one of {POOLINGS}, got {pooling!r}.")
    if int(num_scales) < 1 or int(num_steps) < 1:
        raise ValueError(f"multiscale_flow: num_scales and num_steps must be >= 1, got {num_scales}, {num_steps}.")
    if h % 2 ** num_scales or w % 2 ** num_scales:
        raise ValueError(f"multiscale_flow: image {tuple(image_shape)} needs H and W divisible by "
                         f"2 ** num_scales = {2 ** num_scales}.")
    layers: list[Transform] = [dequantizer if dequantizer is not None else UniformDequantization(),
                               Scale(1.0 / num_levels), Shift(-0.5), Squeeze2d()]
    h, w, ch = h // 2, w // 2, 4 * c
    for scale in range(num_scales):
        for step in range(num_steps):
            layers += list(step_fn(ch, scale, step))
        if scale < num_scales - 1:
            if pooling == "slice":
                layers += [Squeeze2d(), Slice(ch, axis=-1, size=4 * ch)]
            else:
                layers.append(MaxPoolSurjection2d())
            h, w = h // 2, w // 2
    if final_actnorm:
        layers.append(ActNorm(ch, axis=-1))
    return Flow(ChannelNormal((h, w, ch)), layers)


def sample_images(flow: Flow, key: jax.Array, num_samples: int, num_levels: int = 256):
    """Draw ``num_samples`` images as valid pixels: ``(uint8 images (N, H, W, C), out_of_range)``.

    The samples are drawn by :func:`survae_jax.evaluation.sample`, split over every device.

    The flow's sample is ``floor`` of the dequantized value, an ``int32`` that a latent far in
    the base's tail can put outside ``0..L-1`` (or a non-finite latent makes meaningless). Such
    pixels are set to the nearest level (0 or ``L - 1``) and counted, never wrapped around (a
    plain ``uint8`` cast of 256 would give 0). ``out_of_range`` is that count (a Python int).

    Raises:
      ValueError: ``num_samples`` < 1 or ``num_levels`` outside 2..256.

    Source: this library (sampling of the image flows of Appendix I.3).
    """
    if int(num_samples) < 1 or not 2 <= int(num_levels) <= 256:
        raise ValueError(f"sample_images: need num_samples >= 1 and 2 <= num_levels <= 256, "
                         f"got {num_samples}, {num_levels}.")

    from survae_jax.evaluation import sample

    x = sample(flow, key, int(num_samples))  # split over every device
    bad = int(np.sum((x < 0) | (x > num_levels - 1)))
    return np.clip(x, 0, num_levels - 1).astype(np.uint8), bad
