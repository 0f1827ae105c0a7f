"""Registry cases of the inference surjections (Table 7): abs, max, max-pool, sort, slice, ReLU, rounding.

Each case is one line of the registry (``tests/transforms/test_registry.py``): how to build the
layer and a tiny input inside its domain. A ``bad_input``/``bad_latent`` is given where the
suite's default (one more entry on the last axis) is a valid input for the layer. The ``-density``
cases check V by quadrature: ``Flow(base, [layer])`` over 2-D data must integrate to the base's
mass on the layer's image (``expected``, reasoned in each comment).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from case_inputs import fixed, linear, normal

from survae_jax.distributions import ConditionalBernoulli, ConditionalCategorical, ConditionalNormal, StandardNormal
from survae_jax.flow import ConditionalFlow
from survae_jax.testing import TransformCase
from survae_jax.transforms import (AbsSurjection, Logit, MaxPoolSurjection2d, MaxSurjection, ReLUSurjection,
                                   RoundingSurjection, Slice, SortSurjection)

_BOX = ([-7.0, -7.0], [7.0, 7.0])


def _points(shape):
    """Points on a coarse integer grid: ties between points (and in the sort coordinate) happen."""
    return lambda k: jnp.round(2.0 * jax.random.normal(k, shape))


def _unit_interval_flow(key, d):
    """``p(u|z)`` on ``(0, 1)^d``: a conditional normal pushed through a sigmoid (Logit layer)."""
    return ConditionalFlow(ConditionalNormal(linear(key, d, 2 * d, 0.1)), [Logit()])


CASES = [
    TransformCase(
        "AbsSurjection-default",
        lambda k: AbsSurjection(),
        normal((3, 4)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "AbsSurjection-features",
        lambda k: AbsSurjection(features=(1,)),
        normal((4, 2)),
        bad_input=fixed((4, 1)),
        bad_latent=fixed((4, 1)),
    ),
    TransformCase(
        "AbsSurjection-classifier",
        lambda k: AbsSurjection(ConditionalBernoulli(linear(k, 2, 1)), features=(0,)),
        normal((4, 2)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "AbsSurjection-image",
        lambda k: AbsSurjection(),
        normal((2, 2, 2, 3)),
        bad_input=fixed((2,)),
        bad_latent=fixed((2,)),
    ),
    TransformCase("MaxSurjection-default", lambda k: MaxSurjection(3), normal((4, 3)), bad_latent=fixed(())),
    TransformCase("MaxSurjection-keepdims", lambda k: MaxSurjection(2, keepdims=True), normal((4, 2))),
    TransformCase(
        "MaxSurjection-points-axis1",
        lambda k: MaxSurjection(3, axis=1, scale=0.5),
        normal((2, 3, 2)),
        bad_input=fixed((2, 4, 2)),
        bad_latent=fixed(()),
    ),
    TransformCase(
        "MaxSurjection-classifier",
        lambda k: MaxSurjection(3, ConditionalCategorical(linear(k, 1, 3)), keepdims=True),
        normal((4, 3)),
    ),
    TransformCase(
        "MaxPoolSurjection2d",
        lambda k: MaxPoolSurjection2d(),
        normal((2, 4, 4, 3)),
        bad_input=fixed((2, 3, 4, 3)),
        bad_latent=fixed((2, 2, 2)),
    ),
    TransformCase(
        "SortSurjection-points",
        lambda k: SortSurjection(),
        _points((2, 5, 2)),
        bad_input=fixed((5,)),
        bad_latent=fixed((5,)),
    ),
    TransformCase(
        "SortSurjection-vector",
        lambda k: SortSurjection(),
        _points((3, 4)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "SortSurjection-by1",
        lambda k: SortSurjection(axis=1, by=1),
        _points((2, 4, 3)),
        bad_input=fixed((2, 4, 1)),
        bad_latent=fixed((2, 4, 1)),
    ),
    TransformCase("Slice-default", lambda k: Slice(1, size=3), normal((3, 3))),
    TransformCase(
        "Slice-conditional-decoder",
        lambda k: Slice(2, ConditionalNormal(linear(k, 2, 2 * 2)), size=4),
        normal((3, 4)),
    ),
    TransformCase(
        "Slice-points-axis1",
        lambda k: Slice(2, axis=1, size=5),
        normal((2, 5, 2)),
        bad_input=normal((2, 2, 2)),
        bad_latent=normal((2, 3, 2)),
    ),
    TransformCase(
        "ReLUSurjection-default",
        lambda k: ReLUSurjection(),
        normal((4, 3)),
        bad_input=fixed((4,)),
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "ReLUSurjection-scale-net",
        lambda k: ReLUSurjection(linear(k, 3, 3)),
        normal((4, 3)),
        bad_input=fixed((4,)),  # a wider x reaches the net, whose own error is re-raised with a note
        bad_latent=fixed((4,)),
    ),
    TransformCase(
        "RoundingSurjection-default",
        lambda k: RoundingSurjection(),
        lambda k: 3.0 * jax.random.normal(k, (3, 2)),
        bad_input=fixed((3,)),
        bad_latent=fixed((3,)),
    ),
    TransformCase(
        "RoundingSurjection-flow-decoder",
        lambda k: RoundingSurjection(_unit_interval_flow(k, 2)),
        lambda k: 3.0 * jax.random.normal(k, (3, 2)),
        bad_input=fixed((3,)),  # a wider x reaches the decoder's net, whose own error gets a note
        bad_latent=fixed((3,)),
    ),
    # z = |x| lives on the positive quadrant, where a standard normal has mass 1/4.
    TransformCase(
        "AbsSurjection-2d-density",
        lambda k: AbsSurjection(),
        normal((4, 2)),
        density=(StandardNormal((2,)), *_BOX, 0.25),
    ),
    # z = max(x1, x2) covers R; p(k|z) = 1/2 and the half-normal below the max each sum to 1.
    TransformCase(
        "MaxSurjection-K2-density",
        lambda k: MaxSurjection(2, keepdims=True),
        normal((4, 2)),
        density=(StandardNormal((1,)), *_BOX, 1.0),
    ),
    # z = sort(x) lives on {z1 <= z2}, half of a standard normal's mass.
    TransformCase(
        "SortSurjection-D2-density",
        lambda k: SortSurjection(),
        normal((4, 2)),
        density=(StandardNormal((2,)), *_BOX, 0.5),
    ),
    # z = x1 covers R and p(x2|z) is a standard normal: the flow is a proper density.
    TransformCase(
        "Slice-2d-density",
        lambda k: Slice(1, size=2),
        normal((4, 2)),
        density=(StandardNormal((1,)), *_BOX, 1.0),
    ),
]
