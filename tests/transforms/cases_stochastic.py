"""Registry cases of the stochastic layers (both directions stochastic): VAE, StochasticPermutation."""

from __future__ import annotations

import jax
from case_inputs import fixed, linear, normal

from survae_jax.distributions import ConditionalNormal
from survae_jax.testing import TransformCase
from survae_jax.transforms.stochastic.permutation import StochasticPermutation
from survae_jax.transforms.stochastic.vae import VAE
from survae_jax.transforms import Compose, Reverse, Scan


def _vae(key, d_x, d_z):
    k1, k2 = jax.random.split(key)
    decoder = ConditionalNormal(linear(k1, d_z, 2 * d_x))
    encoder = ConditionalNormal(linear(k2, d_x, 2 * d_z))
    return VAE(decoder, encoder)


CASES = [
    # A wrong last axis reaches the user's nets, whose error keeps its type (with a note naming
    # VAE): the strict bad-input check uses a rank-1 tensor, which VAE itself refuses.
    TransformCase(
        "VAE-gaussian",
        lambda k: _vae(k, 3, 2),
        normal((4, 3)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "StochasticPermutation-points",
        lambda k: StochasticPermutation(axis=1),
        normal((3, 4, 2)),
        bad_input=fixed((3,)),
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "StochasticPermutation-features",
        lambda k: StochasticPermutation(axis=-1),
        normal((3, 5)),
        bad_input=fixed((3,)),
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "Scan-stochastic-permutation-steps",
        lambda k: Scan([Compose([StochasticPermutation(axis=1), Reverse(2, axis=-1)]) for _ in range(3)]),
        normal((3, 4, 2)),
        bad_input=fixed((3,)),
        bad_latent=fixed((3,)),
    ),
]
