"""VAE layer (Appendix H.1): V = log p(x|z) - log q(z|x) against the closed form, inverse samples
from the decoder, errors. The bounds (ELBO <= log p(x), IWBO) are in ``tests/test_bounds.py``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.scipy.stats import norm

from survae_jax.distributions import ConditionalNormal, StandardNormal
from survae_jax.flow import Flow
from survae_jax.transforms.stochastic.vae import VAE


def _fixed_linear(weight, bias, dtype=jnp.float32):
    lin = nnx.Linear(1, 2, rngs=nnx.Rngs(0), param_dtype=dtype, dtype=dtype)
    lin.kernel[...] = jnp.array([[weight, 0.0]], dtype)
    lin.bias[...] = jnp.array(bias, dtype)
    return lin


def _vae(dtype=jnp.float32):
    # p(x|z) = N(1.5 z + 0.3, 0.8^2), q(z|x) = N(0.45 x - 0.1, 0.55^2)
    decoder = ConditionalNormal(_fixed_linear(1.5, [0.3, math.log(0.8)], dtype))
    encoder = ConditionalNormal(_fixed_linear(0.45, [-0.1, math.log(0.55)], dtype))
    return VAE(decoder, encoder)


def test_v_is_log_p_x_given_z_minus_log_q():
    x = jnp.array([[-1.0], [0.5], [2.0]])
    z, v = _vae().forward(x, key=jax.random.key(0))
    want = norm.logpdf(x[:, 0], 1.5 * z[:, 0] + 0.3, 0.8) - norm.logpdf(z[:, 0], 0.45 * x[:, 0] - 0.1, 0.55)
    np.testing.assert_allclose(v, want, rtol=1e-5)


def test_forward_samples_the_encoder_and_inverse_the_decoder():
    x = jnp.full((4000, 1), 2.0)
    z, _ = _vae().forward(x, key=jax.random.key(1))
    np.testing.assert_allclose(np.mean(z), 0.45 * 2 - 0.1, atol=0.03)
    np.testing.assert_allclose(np.std(z), 0.55, atol=0.03)
    xs = _vae().inverse(jnp.full((4000, 1), -1.0), key=jax.random.key(2))
    np.testing.assert_allclose(np.mean(xs), -1.5 + 0.3, atol=0.04)
    np.testing.assert_allclose(np.std(xs), 0.8, atol=0.04)


def test_in_a_flow_jit_float64():
    """Flow(N(0,1), [VAE]): log_prob is the one-sample ELBO, log N(z) + V; float64 end to end under jit."""
    with jax.enable_x64(True):
        flow = Flow(StandardNormal((1,), dtype=jnp.float64), [_vae(jnp.float64)])
        assert not flow.exact
        x = jnp.array([[0.3], [-2.0]], jnp.float64)
        elbo = jax.jit(lambda f, x, k: f.elbo(x, key=k))(flow, x, jax.random.key(0))
        samples = jax.jit(lambda f, k: f.sample(k, 3))(flow, jax.random.key(1))
    assert elbo.dtype == samples.dtype == jnp.float64 and elbo.shape == (2,)
    assert samples.shape == (3, 1)
    assert np.all(np.isfinite(elbo))


def test_errors():
    with pytest.raises(ValueError, match="VAE.*encoder.*conditional"):
        VAE(ConditionalNormal(_fixed_linear(1.0, [0.0, 0.0])), StandardNormal((1,)))
    with pytest.raises(ValueError, match="VAE.*decoder.*conditional"):
        VAE(StandardNormal((1,)), ConditionalNormal(_fixed_linear(1.0, [0.0, 0.0])))
    with pytest.raises(ValueError, match="VAE.*key"):
        _vae().forward(jnp.zeros((2, 1)))
    with pytest.raises(ValueError, match="VAE.*key"):
        _vae().inverse(jnp.zeros((2, 1)))
    # the encoder's net expects 1 input: its own error (TypeError), with a note naming VAE
    with pytest.raises(TypeError, match=r"VAE: raised by its encoder .*\(2, 3\)"):
        _vae().forward(jnp.zeros((2, 3)), key=jax.random.key(0))


def test_swapped_encoder_and_decoder_are_named():
    """VAE(encoder, decoder) by mistake: the would-be encoder (a decoder net from z (B, 2)) refuses x (B, 5)."""
    from survae_jax.distributions import ConditionalBernoulli
    from survae_jax.nn import MLP

    decoder = ConditionalBernoulli(MLP(2, 5, (8,), rngs=nnx.Rngs(0)))  # z (B, 2) -> logits (B, 5)
    encoder = ConditionalNormal(MLP(5, 4, (8,), rngs=nnx.Rngs(1)))     # x (B, 5) -> mean, log-scale (B, 2)
    x = jnp.ones((3, 5))
    z, v = VAE(decoder=decoder, encoder=encoder).forward(x, key=jax.random.key(0))
    assert z.shape == (3, 2) and v.shape == (3,)
    with pytest.raises(ValueError, match=r"(?s)MLP: expected input of shape \(\.\.\., 2\).*VAE: raised by its encoder.*"
                                         r"were the two swapped\? Pass them as VAE\(decoder=\.\.\., encoder=\.\.\.\)"):
        VAE(encoder, decoder).forward(x, key=jax.random.key(0))
