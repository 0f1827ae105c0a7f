"""Every layer's maths as pure JAX functions, no Flax: ``<op>_forward(x, <params>, *, key=None,
context=None) -> (z, V)`` and ``<op>_inverse(z, <params>, *, key=None, context=None) -> x``.

``forward`` maps data to latent (X -> Z) and returns the likelihood contribution ``V`` ``(B,)``
in nats; ``inverse`` maps Z -> X. Parameters are passed explicitly: arrays, a callable
conditioner (couplings), or a distribution object (the fibre distributions of surjections,
the encoder and decoder of a VAE). These functions work under ``jax.jit``, ``jax.vmap`` and
``jax.grad`` and with any pytree or module system; the ``nnx.Module`` layers of
:mod:`survae_jax.transforms` hold parameters and call them.
"""

from survae_jax.functional.surjection import (Fibre, Surjective, generative_forward, generative_inverse,
                                              generative_pair, inference_forward, inference_inverse, inference_pair)
from survae_jax.functional.abs import (abs_forward, abs_inverse, abs_surjection, generative_abs_forward,
                                       generative_abs_inverse)
from survae_jax.functional.compose import (compose_forward, compose_inverse, compose_inverse_and_log_det,
                                           invert_forward, invert_inverse, off_support)
from survae_jax.functional.max import (generative_max_forward, generative_max_inverse, max_forward, max_inverse,
                                       max_surjection)
from survae_jax.functional.maxpool import (generative_max_pool_forward, generative_max_pool_inverse, max_pool_forward,
                                           max_pool_inverse, max_pool_surjection)
from survae_jax.functional.sort import (generative_sort_forward, generative_sort_inverse, sort_forward, sort_inverse,
                                        sort_surjection)
from survae_jax.functional.relu import (generative_relu_forward, generative_relu_inverse, relu_forward, relu_inverse,
                                        relu_surjection)
from survae_jax.functional.elementwise import (Additive, Affine, ElementwiseFamily, elementwise_pair,
                                               elementwise_params, logit_forward, logit_inverse, scale_forward,
                                               scale_inverse, shift_forward, shift_inverse, sigmoid_forward,
                                               sigmoid_inverse, softplus_forward, softplus_inverse,
                                               softplus_inverse_forward, softplus_inverse_inverse, tanh_forward,
                                               tanh_inverse)
from survae_jax.functional.coupling import coupling_forward, coupling_inverse
from survae_jax.functional.autoregressive import autoregressive_forward, autoregressive_inverse
from survae_jax.functional.implicit import implicit_inverse
from survae_jax.functional.logistic_mixture import LogisticMixtureCDF
from survae_jax.functional.spline import RationalQuadraticSpline
from survae_jax.functional.linear import (actnorm_forward, actnorm_init, actnorm_inverse, conv1x1_forward,
                                          conv1x1_inverse, conv1x1_lu_init, conv1x1_lu_weight, permute_forward,
                                          permute_inverse, squeeze2d_forward, squeeze2d_inverse)
from survae_jax.functional.user import UserDistribution
from survae_jax.functional.slicing import (augment_forward, augment_inverse, slice_forward, slice_inverse,
                                           slice_surjection)
from survae_jax.functional.rounding import (add_below_next_integer, dequantization_forward, dequantization_inverse,
                                            rounding_forward, rounding_inverse, rounding_surjection)
from survae_jax.functional.vae import vae_forward, vae_inverse
from survae_jax.functional.stochastic_permutation import stochastic_permutation_forward, stochastic_permutation_inverse
