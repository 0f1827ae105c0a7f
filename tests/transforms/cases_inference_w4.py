"""Registry cases of W4's inference surjections (Table 7): Slice, ReLUSurjection, RoundingSurjection.

Wired into ``test_registry.py`` by the lead (``cases_inference.py`` belongs to W3). Each case is
one line of the registry: how to build the layer and a tiny input inside its domain.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions import ConditionalNormal
from survae_jax.flow import ConditionalFlow
from survae_jax.testing import TransformCase
from survae_jax.transforms.bijections.elementwise import Logit
from survae_jax.transforms.surjections.relu import ReLUSurjection
from survae_jax.transforms.surjections.rounding import RoundingSurjection
from survae_jax.transforms.surjections.slicing import Slice


def _linear(key, d_in, d_out, scale=None):
    """A tiny linear net; ``scale`` gives small weights (keeps a sigmoid off saturation)."""
    if scale is None:
        return nnx.Linear(d_in, d_out, rngs=nnx.Rngs(key))
    init = nnx.initializers.normal(scale)
    return nnx.Linear(d_in, d_out, kernel_init=init, rngs=nnx.Rngs(key))


def _normal(shape):
    return lambda k: jax.random.normal(k, shape)


def _rank1(shape):
    """A rank-1 tensor: every elementwise layer here must refuse it (batch-first, rank >= 2)."""
    return lambda k: jnp.zeros(shape)


def _unit_interval_flow(key, d):
    """``p(u|z)`` on ``(0, 1)^d``: a conditional normal pushed through a sigmoid (Logit layer)."""
    return ConditionalFlow(ConditionalNormal(_linear(key, d, 2 * d, 0.1)), [Logit()])


CASES = [
    TransformCase("Slice-default", lambda k: Slice(1, size=3), _normal((3, 3))),
    TransformCase(
        "Slice-conditional-decoder",
        lambda k: Slice(2, ConditionalNormal(_linear(k, 2, 2 * 2)), size=4),
        _normal((3, 4)),
    ),
    TransformCase(
        "Slice-points-axis1",
        lambda k: Slice(2, axis=1, size=5),
        _normal((2, 5, 2)),
        bad_input=_normal((2, 2, 2)),
        bad_latent=_normal((2, 3, 2)),
    ),
    TransformCase(
        "ReLUSurjection-default",
        lambda k: ReLUSurjection(),
        _normal((4, 3)),
        bad_input=_rank1((4,)),
        bad_latent=_rank1((4,)),
    ),
    TransformCase(
        "ReLUSurjection-scale-net",
        lambda k: ReLUSurjection(_linear(k, 3, 3)),
        _normal((4, 3)),
        bad_input=_rank1((4,)),  # a wider x reaches the net, whose own error is re-raised with a note
        bad_latent=_rank1((4,)),
    ),
    TransformCase(
        "RoundingSurjection-default",
        lambda k: RoundingSurjection(),
        lambda k: 3.0 * jax.random.normal(k, (3, 2)),
        bad_input=_rank1((3,)),
        bad_latent=_rank1((3,)),
    ),
    TransformCase(
        "RoundingSurjection-flow-decoder",
        lambda k: RoundingSurjection(_unit_interval_flow(k, 2)),
        lambda k: 3.0 * jax.random.normal(k, (3, 2)),
        bad_input=_rank1((3,)),  # a wider x reaches the decoder's net, whose own error gets a note
        bad_latent=_rank1((3,)),
    ),
]
