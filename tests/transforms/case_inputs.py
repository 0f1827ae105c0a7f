"""Small builders shared by the registry's case modules: tiny nets and inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def linear(key, d_in, d_out, scale=None):
    """A tiny linear net; ``scale`` gives small weights (keeps a sigmoid off saturation)."""
    if scale is None:
        return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))
    return nnx.Linear(d_in, d_out, kernel_init=nnx.initializers.normal(scale), rngs=nnx.Rngs(key))


def normal(shape):
    return lambda k: jax.random.normal(k, shape)


def fixed(shape, dtype=jnp.float32):
    """A fixed tensor of a shape the layer must refuse (e.g. rank 1: every layer is batch first, rank >= 2)."""
    return lambda k: jnp.zeros(shape, dtype)
