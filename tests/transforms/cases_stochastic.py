"""Registry cases of the stochastic layers (both directions stochastic): VAE, StochasticPermutation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions import ConditionalNormal
from survae_jax.testing import TransformCase
from survae_jax.transforms.stochastic.permutation import StochasticPermutation
from survae_jax.transforms.stochastic.vae import VAE


def _linear(key, d_in, d_out):
    return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))


def _vae(key, d_x, d_z):
    k1, k2 = jax.random.split(key)
    decoder = ConditionalNormal(_linear(k1, d_z, 2 * d_x))
    encoder = ConditionalNormal(_linear(k2, d_x, 2 * d_z))
    return VAE(decoder, encoder)


def _normal(shape):
    return lambda k: jax.random.normal(k, shape)


CASES = [
    # A wrong last axis reaches the user's nets, whose error keeps its type (with a note naming
    # VAE): the strict bad-input check uses a rank-1 tensor, which VAE itself refuses.
    TransformCase(
        "VAE-gaussian",
        lambda k: _vae(k, 3, 2),
        _normal((4, 3)),
        bad_input=lambda k: jnp.zeros((4,)),
        bad_latent=lambda k: jnp.zeros((4,)),
    ),
    TransformCase(
        "StochasticPermutation-points",
        lambda k: StochasticPermutation(axis=1),
        _normal((3, 4, 2)),
        bad_input=lambda k: jnp.zeros((3,)),
        bad_latent=lambda k: jnp.zeros((3,)),
    ),
    TransformCase(
        "StochasticPermutation-features",
        lambda k: StochasticPermutation(axis=-1),
        _normal((3, 5)),
        bad_input=lambda k: jnp.zeros((3,)),
        bad_latent=lambda k: jnp.zeros((3,)),
    ),
]
