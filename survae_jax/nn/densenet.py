"""``DenseNet``: the gated DenseNet conditioner of the image experiments (Appendix I.3), NHWC."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array


def _gate(h: Array) -> Array:
    """Gated output unit: split the channels in three, ``a + b * sigmoid(c)``."""
    a, b, c = jnp.split(h, 3, axis=-1)
    return a + b * jax.nn.sigmoid(c)


def _zeros() -> dict:
    return dict(kernel_init=nnx.initializers.zeros_init(), bias_init=nnx.initializers.zeros_init())


_NHWC = ("NHWC", "HWIO", "NHWC")


def _lax_pointwise(x: Array, kernel: Array) -> Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), [(0, 0), (0, 0)], dimension_numbers=_NHWC)


@jax.custom_jvp
def _pointwise(x: Array, kernel: Array) -> Array:
    """A 1x1 convolution of ``x`` ``(B, H, W, C_in)`` with ``kernel`` ``(1, 1, C_in, C_out)`` as a matmul.

    ``y[b, h, w, o] = sum_c x[b, h, w, c] K[0, 0, c, o]``, the convolution's values up to
    rounding. Tangent ``dy = conv(dx, K) + x @ dK[0, 0]``: a gradient then gets ``x_bar`` from
    the convolution's transpose in its input (``y_bar @ K[0, 0]^T`` computed as XLA's input
    gradient of the convolution) and ``K_bar[0, 0] = sum_{b,h,w} x^T y_bar`` from the matmul.
    Why the mix: on XLA:CPU the matmul is faster than the convolution forwards (the image
    flow's evaluation 1.3x) and for the kernel's gradient, the convolution for the input's
    gradient (alternating runs of the image flow's training step: ``results/speed.md``,
    "Pointwise convolutions as matmuls").
    """
    return jnp.matmul(x, kernel[0, 0])


_pointwise.defjvps(lambda dx, y, x, kernel: _lax_pointwise(dx, kernel),
                   lambda dkernel, y, x, kernel: jnp.matmul(x, dkernel[0, 0]))


def _pointwise_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                    dimension_numbers=None, feature_group_count=1, precision=None,
                    preferred_element_type=None, out_sharding=None):
    """``nnx.Conv``'s ``conv_general_dilated`` for a 1x1 convolution: :func:`_pointwise`.

    Takes exactly what a channels-last, stride-1, unpadded, ungrouped 1x1 ``nnx.Conv`` with
    default precision passes; anything else is refused (a ``ValueError`` naming it), not ignored.
    """
    spec = dimension_numbers
    refused = [
        ("a 4-D input", lhs.ndim == 4),
        ("a 1x1 kernel", tuple(rhs.shape[:2]) == (1, 1)),
        ("strides 1", all(int(s) == 1 for s in window_strides)),
        ("no padding", padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding)),
        ("no input dilation", lhs_dilation is None or all(int(d) == 1 for d in lhs_dilation)),
        ("feature_group_count 1", feature_group_count == 1),
        ("channels last", spec is None or (tuple(spec.lhs_spec[:2]) == (0, 3) and tuple(spec.out_spec[:2]) == (0, 3)
                                           and tuple(spec.rhs_spec[:2]) == (3, 2))),
        ("default precision", precision is None),
        ("no preferred_element_type", preferred_element_type is None),
        ("no out_sharding", out_sharding is None),
    ]
    wrong = [what for what, ok in refused if not ok]
    if wrong:
        raise ValueError(f"DenseNet: its 1x1 convolutions run as matmuls and need {', '.join(wrong)}; "
                         f"got input {tuple(lhs.shape)}, kernel {tuple(rhs.shape)}.")
    return _pointwise(lhs, rhs)


def _pointwise_layer(in_channels: int, out_channels: int, *, rngs: nnx.Rngs, **kwargs) -> nnx.Conv:
    """An ``nnx.Conv`` with a 1x1 kernel (the same parameters) run as :func:`_pointwise`."""
    return nnx.Conv(in_channels, out_channels, (1, 1), conv_general_dilated=_pointwise_conv, rngs=rngs, **kwargs)


class _DenseLayer(nnx.Module):
    """``concat(h, relu(conv3x3(relu(conv1x1(h)))))``: adds ``growth`` channels."""

    def __init__(self, channels: int, growth: int, *, rngs: nnx.Rngs):
        self.conv1 = _pointwise_layer(channels, channels, rngs=rngs)
        self.conv3 = nnx.Conv(channels, growth, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, h: Array) -> Array:
        g = jax.nn.relu(self.conv3(jax.nn.relu(self.conv1(h))))
        return jnp.concatenate([h, g], axis=-1)


class DenseBlock(nnx.Module):
    """Dense block, ``(B, H, W, in_channels) -> (B, H, W, out_channels)``, NHWC.

    ``depth`` dense layers, each appending ``growth`` channels ``relu(conv3x3(relu(conv1x1(h))))``
    to its input (so the last one sees ``in_channels + (depth - 1) * growth`` channels), then a
    1x1 output convolution to ``out_channels``; gated (``gated=True``): the convolution gives
    ``3 * out_channels`` channels ``(a, b, c)`` and the block returns ``a + b * sigmoid(c)``.
    Spatial size is kept ("SAME" padding).

    Args:
      in_channels, out_channels: channels in and out.
      depth, growth: number of dense layers and channels each adds.
      gated: the gated output unit.
      zero_init: zero the output convolution (the block then outputs 0 at initialisation).
      rngs: ``nnx.Rngs`` for the weights.

    Raises:
      ValueError: an input that is not ``(B, H, W, in_channels)``.

    Source: Huang et al. (2017), DenseNet; the gated unit and layout of the reference SurVAE
    code's ``DenseBlock`` (the context net of the dequantization flow, Appendix I.3).
    """

    def __init__(self, in_channels: int, out_channels: int, *, depth: int, growth: int,
                 gated: bool = True, zero_init: bool = False, rngs: nnx.Rngs):
        self.in_channels = int(in_channels)
        self.layers = nnx.List(
            [_DenseLayer(self.in_channels + i * growth, growth, rngs=rngs) for i in range(depth)]
        )
        self.gated = bool(gated)
        width = int(out_channels) * (3 if gated else 1)
        self.out = _pointwise_layer(self.in_channels + depth * growth, width, rngs=rngs, **(_zeros() if zero_init else {}))

    def _dense(self, h: Array) -> Array:
        for layer in self.layers:
            h = layer(h)
        h = self.out(h)
        return _gate(h) if self.gated else h

    def __call__(self, x: Array) -> Array:
        """Apply the block to ``x`` ``(B, H, W, in_channels)``."""
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"DenseBlock: expected input of shape (B, H, W, {self.in_channels}), got {tuple(x.shape)}."
            )
        return self._dense(x)


class _ResidualDenseBlock(DenseBlock):
    """``h + dense_block(h)``, channels kept."""

    def __init__(self, channels: int, depth: int, growth: int, gated: bool, *, rngs: nnx.Rngs):
        super().__init__(channels, channels, depth=depth, growth=growth, gated=gated, rngs=rngs)

    def __call__(self, h: Array) -> Array:
        return h + self._dense(h)


class DenseNet(nnx.Module):
    """Gated DenseNet conditioner for images, ``(B, H, W, in_channels) -> (B, H, W, out_channels)``.

    Layout (as in the reference SurVAE code for Appendix I.3, after Huang et al., 2017):
    a 1x1 convolution ``in_channels -> mid_channels``; ``num_blocks`` residual dense blocks, each
    ``h + gate(conv1x1(dense_layers(h)))`` where each of the ``depth`` dense layers appends
    ``growth`` channels ``relu(conv3x3(relu(conv1x1(h))))`` and ``gate(a, b, c) = a + b *
    sigmoid(c)`` (the gated convolution); a final 1x1 convolution ``mid_channels ->
    out_channels``. Spatial size is kept ("SAME" padding). NHWC throughout.

    Conditional use: ``net(x, context)`` concatenates ``context`` ``(B, H, W, Cc)`` to ``x`` on
    the channel axis first (``in_channels`` counts both). No dropout (it would need a key;
    every call here is deterministic).

    Args:
      in_channels: channels of the input (plus the context's).
      out_channels: channels of the output, e.g. ``2 * C2`` for an affine coupling on ``C2``
        transformed channels.
      num_blocks, mid_channels, depth, growth: size of the net (defaults small).
      gated: use the gated output unit in each block (the paper's choice); plain 1x1 otherwise.
      zero_init_last: zero the final convolution, so that the net outputs 0 at initialisation.
      rngs: ``nnx.Rngs`` for the weights.

    Raises:
      ValueError: input not of rank 4 or with other than ``in_channels`` channels.

    Source: Nielsen et al. (2020), Appendix I.3 ("coupling bijections are parameterized by
    DenseNets"); the reference code's gated ``DenseBlock``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_blocks: int = 1,
        mid_channels: int = 64,
        depth: int = 2,
        growth: int = 16,
        gated: bool = True,
        zero_init_last: bool = False,
        rngs: nnx.Rngs,
    ):
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.inp = _pointwise_layer(self.in_channels, mid_channels, rngs=rngs)
        self.blocks = nnx.List(
            [_ResidualDenseBlock(mid_channels, depth, growth, gated, rngs=rngs) for _ in range(num_blocks)]
        )
        last = _zeros() if zero_init_last else {}
        self.out = _pointwise_layer(mid_channels, self.out_channels, rngs=rngs, **last)

    def __call__(self, x: Array, context: Array | None = None) -> Array:
        """Apply the net to ``x`` ``(B, H, W, C)`` (and ``context`` ``(B, H, W, Cc)``)."""
        if context is not None:
            if context.ndim != 4 or context.shape[:3] != x.shape[:3]:
                raise ValueError(
                    f"DenseNet: context must be (B, H, W, Cc) with (B, H, W) = {tuple(x.shape[:3])}, "
                    f"got {tuple(context.shape)}."
                )
            x = jnp.concatenate([x, context.astype(x.dtype)], axis=-1)
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"DenseNet: expected input of shape (B, H, W, {self.in_channels}), got {tuple(x.shape)}."
            )
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.out(h)
