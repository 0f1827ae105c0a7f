"""Base and conditional distributions (all follow :class:`Distribution`'s protocol)."""

from survae_jax.distributions.base import Distribution
from survae_jax.distributions.conditional import (
    ConditionalBernoulli,
    ConditionalCategorical,
    ConditionalNormal,
)
from survae_jax.distributions.standard import DiagonalNormal, StandardNormal, StandardUniform

__all__ = [
    "Distribution",
    "StandardNormal",
    "StandardUniform",
    "DiagonalNormal",
    "ConditionalNormal",
    "ConditionalBernoulli",
    "ConditionalCategorical",
]
