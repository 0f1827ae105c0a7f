"""Data outside the image of a generative surjection has density 0: V and log p are -inf, not a bound.

For the dual of a surjection ``split`` (Table 6), ``p(x) = 0`` unless ``x = split(z)[0]`` for
some ``z``: a negative entry under Abs or ReLU, an unsorted row under Sort. Rows inside the image
keep their finite V, and the gradient of the batch's finite rows is unaffected.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.distributions import StandardNormal
from survae_jax.flow import Flow
from survae_jax.transforms.surjections import (
    GenerativeAbsSurjection,
    GenerativeMaxSurjection,
    GenerativeReLUSurjection,
    GenerativeSortSurjection,
)

INSIDE, OUTSIDE = [0.5, 1.5, 2.0], {"abs": [0.5, -1.5, 2.0], "relu": [0.0, -0.1, 2.0], "sort": [0.5, 2.0, 1.5]}
LAYERS = {"abs": GenerativeAbsSurjection, "relu": GenerativeReLUSurjection,
          "sort": lambda: GenerativeSortSurjection(axis=1)}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_outside_the_image_is_minus_inf_inside_is_finite(name):
    x = jnp.asarray([INSIDE, OUTSIDE[name]], jnp.float32)
    layer = LAYERS[name]()
    _, v = layer.forward(x, key=jax.random.key(0))
    assert np.isfinite(v[0]) and v[1] == -np.inf
    _, v_jit = jax.jit(lambda x, k: layer.forward(x, key=k))(x, jax.random.key(0))
    np.testing.assert_allclose(np.asarray(v_jit), np.asarray(v), rtol=1e-6)  # log 3! folded under jit
    flow = Flow(StandardNormal((3,)), [layer])
    lp = flow.log_prob(x, key=jax.random.key(1))
    assert np.isfinite(lp[0]) and lp[1] == -np.inf
    grad = jax.grad(lambda x: flow.log_prob(x, key=jax.random.key(1))[0])(x)
    assert np.all(np.isfinite(grad))


def test_a_surjection_onto_everything_has_no_outside():
    x = jnp.asarray([[-3.0], [0.0], [7.5]])  # any real is the max of some vector
    _, v = GenerativeMaxSurjection(4, keepdims=True).forward(x, key=jax.random.key(0))
    assert np.all(np.isfinite(v))
