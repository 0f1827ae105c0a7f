"""Stochastic layers: stochastic in both directions, V a one-sample bound term."""

from survae_jax.transforms.stochastic.permutation import StochasticPermutation
from survae_jax.transforms.stochastic.vae import VAE
