"""Registry cases of W3's inference surjections (Table 7): abs, max, max-pool, sort.

Each case is one line of the registry (``tests/transforms/test_registry.py``): how to build the
layer and a tiny input inside its domain. A ``bad_input``/``bad_latent`` is given where the
suite's default (one more entry on the last axis) is a valid input for the layer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions import ConditionalBernoulli, ConditionalCategorical
from survae_jax.testing import TransformCase
from survae_jax.transforms.surjections import (
    AbsSurjection,
    MaxPoolSurjection2d,
    MaxSurjection,
    SortSurjection,
)


def _normal(shape):
    return lambda k: jax.random.normal(k, shape)


def _fixed(shape):
    """A fixed tensor of a shape the layer must refuse."""
    return lambda k: jnp.zeros(shape)


def _points(shape):
    """Points on a coarse integer grid: ties between points (and in the sort coordinate) happen."""
    return lambda k: jnp.round(2.0 * jax.random.normal(k, shape))


def _linear(key, d_in, d_out):
    return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))


CASES = [
    TransformCase(
        "AbsSurjection-default",
        lambda k: AbsSurjection(),
        _normal((3, 4)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
    TransformCase(
        "AbsSurjection-features",
        lambda k: AbsSurjection(features=(1,)),
        _normal((4, 2)),
        bad_input=_fixed((4, 1)),
        bad_latent=_fixed((4, 1)),
    ),
    TransformCase(
        "AbsSurjection-classifier",
        lambda k: AbsSurjection(ConditionalBernoulli(_linear(k, 2, 1)), features=(0,)),
        _normal((4, 2)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
    TransformCase(
        "AbsSurjection-image",
        lambda k: AbsSurjection(),
        _normal((2, 2, 2, 3)),
        bad_input=_fixed((2,)),
        bad_latent=_fixed((2,)),
    ),
    TransformCase(
        "MaxSurjection-default",
        lambda k: MaxSurjection(3),
        _normal((4, 3)),
        bad_latent=_fixed(()),
    ),
    TransformCase("MaxSurjection-keepdims", lambda k: MaxSurjection(2, keepdims=True), _normal((4, 2))),
    TransformCase(
        "MaxSurjection-points-axis1",
        lambda k: MaxSurjection(3, axis=1, scale=0.5),
        _normal((2, 3, 2)),
        bad_input=_fixed((2, 4, 2)),
        bad_latent=_fixed(()),
    ),
    TransformCase(
        "MaxSurjection-classifier",
        lambda k: MaxSurjection(3, ConditionalCategorical(_linear(k, 1, 3)), keepdims=True),
        _normal((4, 3)),
    ),
    TransformCase(
        "MaxPoolSurjection2d",
        lambda k: MaxPoolSurjection2d(),
        _normal((2, 4, 4, 3)),
        bad_input=_fixed((2, 3, 4, 3)),
        bad_latent=_fixed((2, 2, 2)),
    ),
    TransformCase(
        "SortSurjection-points",
        lambda k: SortSurjection(),
        _points((2, 5, 2)),
        bad_input=_fixed((5,)),
        bad_latent=_fixed((5,)),
    ),
    TransformCase(
        "SortSurjection-vector",
        lambda k: SortSurjection(),
        _points((3, 4)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
    TransformCase(
        "SortSurjection-by1",
        lambda k: SortSurjection(axis=1, by=1),
        _points((2, 4, 3)),
        bad_input=_fixed((2, 4, 1)),
        bad_latent=_fixed((2, 4, 1)),
    ),
]
