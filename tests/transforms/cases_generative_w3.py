"""Registry cases of W3's generative surjections (Table 6): abs, max, max-pool, sort.

Collected by ``tests/transforms/test_registry.py`` (every ``cases_*.py`` there). Inputs lie in
each layer's image: absolute values for abs, sorted tensors for sort.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions import ConditionalBernoulli, ConditionalCategorical
from survae_jax.testing import TransformCase
from survae_jax.transforms.surjections import (
    GenerativeAbsSurjection,
    GenerativeMaxPoolSurjection2d,
    GenerativeMaxSurjection,
    GenerativeSortSurjection,
    SortSurjection,
)


def _abs_normal(shape):
    return lambda k: jnp.abs(jax.random.normal(k, shape))


def _sorted(shape, axis=1, by=0):
    """Sorted points/vectors on a coarse grid (ties happen)."""
    return lambda k: SortSurjection(axis, by).forward(jnp.round(2.0 * jax.random.normal(k, shape)))[0]


def _fixed(shape):
    return lambda k: jnp.zeros(shape)


def _linear(key, d_in, d_out):
    return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))


CASES = [
    TransformCase(
        "GenerativeAbsSurjection-default",
        lambda k: GenerativeAbsSurjection(),
        _abs_normal((3, 4)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
    TransformCase(
        "GenerativeAbsSurjection-classifier",
        lambda k: GenerativeAbsSurjection(ConditionalBernoulli(_linear(k, 2, 1)), features=(0,)),
        _abs_normal((4, 2)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
    TransformCase(
        "GenerativeMaxSurjection-default",
        lambda k: GenerativeMaxSurjection(3),
        lambda k: jax.random.normal(k, (4, 2)),
        bad_input=_fixed(()),
    ),
    TransformCase(
        "GenerativeMaxSurjection-classifier",
        lambda k: GenerativeMaxSurjection(2, ConditionalCategorical(_linear(k, 1, 2)), keepdims=True),
        lambda k: jax.random.normal(k, (4, 1)),
    ),
    TransformCase(
        "GenerativeMaxPoolSurjection2d",
        lambda k: GenerativeMaxPoolSurjection2d(),
        lambda k: jax.random.normal(k, (2, 2, 3, 2)),
        bad_input=_fixed((2, 2, 3)),
        bad_latent=_fixed((2, 3, 6, 2)),
    ),
    TransformCase(
        "GenerativeSortSurjection-points",
        lambda k: GenerativeSortSurjection(),
        _sorted((2, 5, 2)),
        bad_input=_fixed((5,)),
        bad_latent=_fixed((5,)),
    ),
    TransformCase(
        "GenerativeSortSurjection-vector",
        lambda k: GenerativeSortSurjection(),
        _sorted((3, 4)),
        bad_input=_fixed((4,)),
        bad_latent=_fixed((4,)),
    ),
]
