"""Conditioner networks: ``MLP``, ``DenseNet`` (gated, NHWC), ``ElementwiseParams``, ``MADE`` (masked, autoregressive)."""

from survae_jax.nn.densenet import DenseBlock, DenseNet
from survae_jax.nn.elementwise_params import ElementwiseParams
from survae_jax.nn.made import MADE, MaskedDense
from survae_jax.nn.mlp import MLP

__all__ = ["MLP", "DenseBlock", "DenseNet", "ElementwiseParams", "MADE", "MaskedDense"]

# Set-to-set Transformer conditioner for point clouds (appended by the point-cloud work).
from survae_jax.nn.transformer import Transformer, with_dropout

__all__ += ["Transformer", "with_dropout"]
