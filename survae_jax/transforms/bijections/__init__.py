"""Bijections: couplings, autoregressive layers (MAF), ActNorm, 1x1 convolutions, permutations, squeeze,
elementwise maps."""

from survae_jax.transforms.bijections.actnorm import ActNorm, initialize_actnorm
from survae_jax.transforms.bijections.autoregressive import (AdditiveAutoregressive, AffineAutoregressive,
                                                             AutoregressiveBijection)
from survae_jax.transforms.bijections.conv1x1 import Conv1x1
from survae_jax.transforms.bijections.coupling import (AdditiveCoupling, AffineCoupling, Coupling,
                                                      LogisticMixtureCoupling, RQSCoupling)
from survae_jax.transforms.bijections.elementwise import (ElementwiseBijection, Logit, Sigmoid, Softplus,
                                                          SoftplusInverse, Tanh)
from survae_jax.transforms.bijections.permutation import Permute, Reverse
from survae_jax.transforms.bijections.scale_shift import Scale, Shift
from survae_jax.transforms.bijections.squeeze import Squeeze2d
