"""Registry cases of the generative surjections (Table 6): Augment, ReLU, dequantization, abs, max,
max-pool, sort.

Each case is one line of the registry: how to build the layer and a tiny input in its image
(non-negative with exact zeros for the ReLU, integers for dequantization, absolute values for abs,
sorted tensors for sort).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from case_inputs import fixed, linear, normal

from survae_jax.distributions import (ConditionalBernoulli, ConditionalCategorical, ConditionalNormal, DiagonalNormal,
                                      StandardNormal)
from survae_jax.flow import ConditionalFlow
from survae_jax.testing import TransformCase
from survae_jax.transforms import (Augment, GenerativeAbsSurjection, GenerativeMaxPoolSurjection2d,
                                   GenerativeMaxSurjection, GenerativeReLUSurjection, GenerativeSortSurjection, Logit,
                                   SortSurjection, UniformDequantization, VariationalDequantization)


def _relu_data(k):
    """Non-negative data with exact zeros (half of the entries), the domain of the ReLU."""
    return jnp.maximum(jax.random.normal(k, (4, 3)), 0.0)


def _integers(high):
    return lambda k: jax.random.randint(k, (3, 2), 0, high)


def _abs_normal(shape):
    return lambda k: jnp.abs(jax.random.normal(k, shape))


def _sorted(shape, axis=1, by=0):
    """Sorted points/vectors on a coarse grid (ties happen)."""
    return lambda k: SortSurjection(axis, by).forward(jnp.round(2.0 * jax.random.normal(k, shape)))[0]


CASES = [
    # Listing 2 of Appendix H.4: Augment(Normal((2,)), 2).
    TransformCase(
        "Augment-listing2",
        lambda k: Augment(StandardNormal((2,)), 2),
        normal((3, 2)),
        bad_latent=normal((3, 2)),
    ),
    TransformCase(
        "Augment-diagonal-encoder",
        lambda k: Augment(DiagonalNormal((1,)), 2),
        normal((3, 2)),
        bad_latent=normal((3, 2)),
    ),
    TransformCase(
        "Augment-conditional-encoder",
        lambda k: Augment(ConditionalNormal(linear(k, 2, 2 * 3)), 2),
        normal((3, 2)),
        bad_latent=normal((3, 1)),
    ),
    TransformCase(
        "Augment-points-axis1",
        lambda k: Augment(StandardNormal((2, 2)), 3, axis=1),
        normal((2, 3, 2)),
        bad_latent=normal((2, 3, 2)),
    ),
    TransformCase(
        "GenerativeReLUSurjection-default",
        lambda k: GenerativeReLUSurjection(),
        _relu_data,
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "GenerativeReLUSurjection-scale-net",
        lambda k: GenerativeReLUSurjection(linear(k, 3, 3)),
        _relu_data,
        bad_input=fixed((4,)),  # a wider x reaches the net, whose own error is re-raised with a note
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "UniformDequantization",
        lambda k: UniformDequantization(),
        lambda k: jax.random.randint(k, (3, 2), -5, 6),
        bad_input=fixed((3,), jnp.int32),
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "UniformDequantization-8bit",
        lambda k: UniformDequantization(num_bits=8),
        _integers(256),
        bad_input=fixed((3,), jnp.int32),
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "VariationalDequantization-flow",
        lambda k: VariationalDequantization(
            ConditionalFlow(ConditionalNormal(linear(k, 2, 2 * 2, 0.1)), [Logit()]), num_bits=3
        ),
        _integers(8),
        bad_input=fixed((3,), jnp.int32),  # a wider x reaches the encoder's net, whose own error gets a note
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "GenerativeAbsSurjection-default",
        lambda k: GenerativeAbsSurjection(),
        _abs_normal((3, 4)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "GenerativeAbsSurjection-classifier",
        lambda k: GenerativeAbsSurjection(ConditionalBernoulli(linear(k, 2, 1)), features=(0,)),
        _abs_normal((4, 2)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "GenerativeMaxSurjection-default",
        lambda k: GenerativeMaxSurjection(3),
        normal((4, 2)),
        bad_input=fixed(()),
    ),
    TransformCase(
        "GenerativeMaxSurjection-classifier",
        lambda k: GenerativeMaxSurjection(2, ConditionalCategorical(linear(k, 1, 2)), keepdims=True),
        normal((4, 1)),
    ),
    TransformCase(
        "GenerativeMaxPoolSurjection2d",
        lambda k: GenerativeMaxPoolSurjection2d(),
        normal((2, 2, 3, 2)),
        bad_input=fixed((2, 2, 3)),
        bad_latent=fixed((2, 3, 6, 2)),
    ),
    TransformCase(
        "GenerativeSortSurjection-points",
        lambda k: GenerativeSortSurjection(),
        _sorted((2, 5, 2)),
        bad_input=fixed((5,)),
        bad_latent=fixed((5,)),
    ),
    TransformCase(
        "GenerativeSortSurjection-vector",
        lambda k: GenerativeSortSurjection(),
        _sorted((3, 4)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
]
