"""Surjective layers of Tables 6 and 7 (both directions per operation), one file per operation."""

from survae_jax.transforms.surjections.abs import AbsSurjection, GenerativeAbsSurjection
from survae_jax.transforms.surjections.dequantization import UniformDequantization, VariationalDequantization
from survae_jax.transforms.surjections.max import GenerativeMaxSurjection, MaxSurjection
from survae_jax.transforms.surjections.maxpool import GenerativeMaxPoolSurjection2d, MaxPoolSurjection2d
from survae_jax.transforms.surjections.relu import GenerativeReLUSurjection, ReLUSurjection
from survae_jax.transforms.surjections.rounding import RoundingSurjection
from survae_jax.transforms.surjections.slicing import Augment, Slice
from survae_jax.transforms.surjections.sort import GenerativeSortSurjection, SortSurjection
