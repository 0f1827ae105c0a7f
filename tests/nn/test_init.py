"""``init=`` of the dense conditioners: Flax's default or PyTorch's ``U(+-1/sqrt(fan_in))``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.nn import MADE, MLP


def _params(net):
    return [(name, np.asarray(v[...])) for name, v in nnx.to_flat_state(nnx.state(net, nnx.Param))]


def test_uniform_init_draws_weights_and_biases_within_the_fan_in_bound():
    net = MLP(5, 7, hidden=(300, 200), init="uniform", rngs=nnx.Rngs(0))
    for layer, fan_in in ((net.hidden[0], 5), (net.hidden[1], 300), (net.out, 200)):
        for a in (np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])):
            bound = 1.0 / np.sqrt(fan_in)
            assert np.abs(a).max() <= bound
            assert a.size < 200 or np.abs(a).max() > 0.9 * bound  # P(max < 0.9 b) = 0.9^n
    # a uniform draw on (-b, b): variance b^2 / 3 (60,000 weights: within 3 %, ~8 standard errors)
    np.testing.assert_allclose(np.var(np.asarray(net.hidden[1].kernel[...])), 1 / (3 * 300), rtol=0.03)


def test_lecun_default_keeps_zero_biases_and_zero_init_last_wins():
    net = MLP(5, 7, hidden=(16,), rngs=nnx.Rngs(0))
    assert not np.asarray(net.hidden[0].bias[...]).any()
    net = MLP(5, 7, hidden=(16,), zero_init_last=True, init="uniform", rngs=nnx.Rngs(0))
    assert np.asarray(net.hidden[0].bias[...]).any()
    assert not np.asarray(net.out.kernel[...]).any() and not np.asarray(net.out.bias[...]).any()
    assert not np.asarray(net(jnp.ones((3, 5)))).any()


def test_made_uniform_init_stays_autoregressive():
    made = MADE(4, (12, 12), 2, init="uniform", context_features=3, rngs=nnx.Rngs(1))
    assert np.asarray(made.hidden[0].bias[...]).any()
    assert np.abs(np.asarray(made.context_hidden.kernel[...])).max() <= 1 / np.sqrt(3)
    x, c = jax.random.normal(jax.random.key(0), (4,)), jnp.ones((3,))
    jac = jax.jacfwd(lambda v: made(v[None], c[None])[0])(x)  # (D, P, D)
    order = np.asarray(made.order[...])
    for d in range(4):
        for e in range(4):
            if order[e] >= order[d]:
                assert not np.asarray(jac[d, :, e]).any()


@pytest.mark.parametrize("net", ["MLP", "MADE"])
def test_unknown_init_is_refused_by_name(net):
    with pytest.raises(ValueError, match=f"{net}: init must be one of 'lecun', 'uniform', got 'torch'"):
        MLP(2, 2, init="torch", rngs=nnx.Rngs(0)) if net == "MLP" else MADE(2, (4,), 2, init="torch", rngs=nnx.Rngs(0))


def test_uniform_init_needs_inputs():
    with pytest.raises(ValueError, match="MLP: a dense layer needs at least one input"):
        MLP(0, 2, hidden=(4,), init="uniform", rngs=nnx.Rngs(0))
