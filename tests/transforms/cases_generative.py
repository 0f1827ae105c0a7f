"""Registry cases of the generative surjections of W4 (Table 6): Augment, GenerativeReLUSurjection,
UniformDequantization, VariationalDequantization.

Each case is one line of the registry: how to build the layer and a tiny input in its domain
(non-negative with exact zeros for the ReLU, integers for dequantization).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions import ConditionalNormal, DiagonalNormal, StandardNormal
from survae_jax.flow import ConditionalFlow
from survae_jax.testing import TransformCase
from survae_jax.transforms.bijections.elementwise import Logit
from survae_jax.transforms.surjections.dequantization import (
    UniformDequantization,
    VariationalDequantization,
)
from survae_jax.transforms.surjections.relu import GenerativeReLUSurjection
from survae_jax.transforms.surjections.slicing import Augment


def _linear(key, d_in, d_out, scale=None):
    """A tiny linear net; ``scale`` gives small weights (keeps a sigmoid off saturation)."""
    if scale is None:
        return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))
    init = nnx.initializers.normal(scale)
    return nnx.Linear(d_in, d_out, kernel_init=init, rngs=nnx.Rngs(key))


def _normal(shape):
    return lambda k: jax.random.normal(k, shape)


def _rank1(shape, dtype=jnp.float32):
    """A rank-1 tensor: the layers here must refuse it (batch-first, rank >= 2)."""
    return lambda k: jnp.zeros(shape, dtype)


def _relu_data(k):
    """Non-negative data with exact zeros (half of the entries), the domain of the ReLU."""
    return jnp.maximum(jax.random.normal(k, (4, 3)), 0.0)


def _integers(high):
    return lambda k: jax.random.randint(k, (3, 2), 0, high)


CASES = [
    # Listing 2 of Appendix H.4: Augment(Normal((2,)), 2).
    TransformCase(
        "Augment-listing2",
        lambda k: Augment(StandardNormal((2,)), 2),
        _normal((3, 2)),
        bad_latent=_normal((3, 2)),
    ),
    TransformCase(
        "Augment-diagonal-encoder",
        lambda k: Augment(DiagonalNormal((1,)), 2),
        _normal((3, 2)),
        bad_latent=_normal((3, 2)),
    ),
    TransformCase(
        "Augment-conditional-encoder",
        lambda k: Augment(ConditionalNormal(_linear(k, 2, 2 * 3)), 2),
        _normal((3, 2)),
        bad_latent=_normal((3, 1)),
    ),
    TransformCase(
        "Augment-points-axis1",
        lambda k: Augment(StandardNormal((2, 2)), 3, axis=1),
        _normal((2, 3, 2)),
        bad_latent=_normal((2, 3, 2)),
    ),
    TransformCase(
        "GenerativeReLUSurjection-default",
        lambda k: GenerativeReLUSurjection(),
        _relu_data,
        bad_input=_rank1((4,)),
        bad_latent=_rank1((4,)),
    ),
    TransformCase(
        "GenerativeReLUSurjection-scale-net",
        lambda k: GenerativeReLUSurjection(_linear(k, 3, 3)),
        _relu_data,
        bad_input=_rank1((4,)),  # a wider x reaches the net, whose own error is re-raised with a note
        bad_latent=_rank1((4,)),
    ),
    TransformCase(
        "UniformDequantization",
        lambda k: UniformDequantization(),
        lambda k: jax.random.randint(k, (3, 2), -5, 6),
        bad_input=_rank1((3,), jnp.int32),
        bad_latent=_rank1((3,)),
    ),
    TransformCase(
        "UniformDequantization-8bit",
        lambda k: UniformDequantization(num_bits=8),
        _integers(256),
        bad_input=_rank1((3,), jnp.int32),
        bad_latent=_rank1((3,)),
    ),
    TransformCase(
        "VariationalDequantization-flow",
        lambda k: VariationalDequantization(
            ConditionalFlow(ConditionalNormal(_linear(k, 2, 2 * 2, 0.1)), [Logit()]), num_bits=3
        ),
        _integers(8),
        bad_input=_rank1((3,), jnp.int32),  # a wider x reaches the encoder's net, whose own error gets a note
        bad_latent=_rank1((3,)),
    ),
]
