"""SurVAE layers: the contract (:mod:`.base`), bijections, surjections and stochastic layers.

The folders tell the kind: ``bijections/`` (exact, invertible), ``surjections/`` (one file per
operation, holding its inference (Table 7) and generative (Table 6) directions) and
``stochastic/`` (VAE, stochastic permutation). ``forward`` maps data to latent (X -> Z) and
returns ``(z, V)``; ``inverse`` maps Z -> X.
"""

from survae_jax.transforms.base import (Bijection, GenerativeSurjection, InferenceSurjection, StochasticTransform,
                                        Surjection, Transform, generative_dual)
from survae_jax.transforms.compose import Compose, Invert
from survae_jax.transforms.scan import Scan
from survae_jax.transforms.bijections import (ActNorm, AdditiveAutoregressive, AdditiveCoupling, AffineAutoregressive,
                                              AffineCoupling, AutoregressiveBijection, Conv1x1, Coupling,
                                              ElementwiseBijection, Logit, LogisticMixtureCoupling, Permute, Reverse,
                                              RQSCoupling, Scale, Shift, Sigmoid, Softplus, SoftplusInverse, Squeeze2d,
                                              Tanh, initialize_actnorm)
from survae_jax.transforms.stochastic import VAE, StochasticPermutation
from survae_jax.transforms.surjections import (AbsSurjection, Augment, GenerativeAbsSurjection,
                                               GenerativeMaxPoolSurjection2d, GenerativeMaxSurjection,
                                               GenerativeReLUSurjection, GenerativeSortSurjection, MaxPoolSurjection2d,
                                               MaxSurjection, ReLUSurjection, RoundingSurjection, Slice,
                                               SortSurjection, UniformDequantization, VariationalDequantization)
