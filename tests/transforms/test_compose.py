"""``Compose`` and ``Invert``: a group of layers is one layer, a bijection runs backwards."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax import Flow
from survae_jax.distributions import StandardNormal
from survae_jax.nn import MLP
from survae_jax.testing import check_transform
from survae_jax.transforms import AbsSurjection, AffineCoupling, Augment, Compose, Invert, Logit, Reverse, Scale, Sigmoid

X = jax.random.uniform(jax.random.key(0), (5, 2), minval=-3.0, maxval=3.0)


def _block(seed):
    rngs = nnx.Rngs(seed)
    return [AffineCoupling(MLP(1, 2, rngs=rngs), scale_fn="tanh_exp"), Reverse(2)]


def test_compose_equals_the_flat_list():
    layers = [AbsSurjection(), Scale(1 / 4), Logit(), *_block(1)]
    flat = Flow(StandardNormal((2,)), layers)
    nested = Flow(StandardNormal((2,)), [Compose(layers[:3]), Compose(layers[3:])])
    np.testing.assert_allclose(nested.log_prob(X), flat.log_prob(X), rtol=1e-6)
    assert nested.exact and Compose(layers).exact


def test_compose_kind_is_derived():
    group = Compose([Augment(StandardNormal((1,)), 2), *_block(2)])
    assert group.stochastic_forward and not group.stochastic_inverse and not group.exact
    with pytest.raises(TypeError, match="Compose: transforms\\[1\\]"):
        Compose([Scale(2.0), "not a layer"])


def test_compose_passes_the_property_suite():
    check_transform(Compose(_block(3)), X)


def test_invert_swaps_directions_and_negates_v():
    x = jax.random.uniform(jax.random.key(1), (4, 3), minval=0.05, maxval=0.95)
    inv = Invert(Logit())  # forward is the sigmoid, latent -> data of Logit
    z = Logit().forward(x)[0]
    out, v = inv.forward(z)
    np.testing.assert_allclose(out, x, rtol=1e-5)
    np.testing.assert_allclose(v, Sigmoid().forward(z)[1], rtol=1e-5)
    np.testing.assert_allclose(inv.inverse(x), z, rtol=1e-5)
    check_transform(Invert(Logit()), z)
    with pytest.raises(TypeError, match="Invert: expected a Bijection"):
        Invert(AbsSurjection())
