"""distrax (and TFP) bijectors as survae_jax layers: the property suite, the density, distrax's own log_prob."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from tensorflow_probability.substrates import jax as tfp

import survae_jax as sj
from survae_jax.distributions import StandardNormal
from survae_jax.interop import DistraxBijection, from_distrax
from survae_jax.testing import check_density_integrates, check_transform, to_float64
from survae_jax.transforms import Reverse


class Conditioner(nnx.Module):
    """``(B, D) -> (B, D, 2)``: a shift and a log-scale per entry, small weights."""

    def __init__(self, d, key):
        self.linear = nnx.Linear(d, 2 * d, kernel_init=nnx.initializers.normal(0.5), rngs=nnx.Rngs(key))

    def __call__(self, x):
        return jnp.tanh(self.linear(x)).reshape(*x.shape, 2)


def _affine(p):
    return distrax.ScalarAffine(shift=p[..., 0], log_scale=p[..., 1])


def _spline_params(key, d, bins=4):
    return 0.8 * jax.random.normal(key, (d, 3 * bins + 1))


def _bijectors(d):
    k1, k2 = jax.random.split(jax.random.key(7))
    return {
        "Tanh": distrax.Tanh(),
        "ScalarAffine": distrax.ScalarAffine(shift=jnp.linspace(-1.0, 1.0, d), scale=jnp.linspace(0.5, 2.0, d)),
        "RationalQuadraticSpline": distrax.RationalQuadraticSpline(_spline_params(k1, d), -3.0, 3.0),
        "MaskedCoupling": distrax.MaskedCoupling(jnp.arange(d) % 2 == 0, Conditioner(d, k2), _affine, event_ndims=1),
    }


def _data(name, key, shape):
    if name == "Tanh":  # data of x = tanh(z) lie in (-1, 1)
        return jax.random.uniform(key, shape, minval=-0.95, maxval=0.95)
    return jax.random.normal(key, shape)


NAMES = ["Tanh", "ScalarAffine", "RationalQuadraticSpline", "MaskedCoupling"]


@pytest.mark.parametrize("name", NAMES)
def test_distrax_bijector_passes_the_suite_in_a_flow(name):
    """The layer passes every property a bijection owes (round trip, V == slogdet(jacfwd) in
    float64, jit, vmap, grad, float64, bad input), a one-layer flow of it integrates to 1 (2-D,
    quadrature), and its log_prob is distrax.Transformed's, in float64."""
    layer = from_distrax(_bijectors(3)[name])
    assert isinstance(layer, DistraxBijection) and layer.exact
    report = check_transform(layer, _data(name, jax.random.key(0), (4, 3)))
    for prop in ("round_trip", "log_det", "jit", "vmap", "grad", "float64", "bad_input"):
        assert report[prop] == "passed", (prop, report[prop])

    flow2 = sj.Flow(StandardNormal((2,)), [from_distrax(_bijectors(2)[name]), Reverse(2)])
    lo, hi = (-1.0, 1.0) if name == "Tanh" else (-9.0, 9.0)
    check_density_integrates(flow2, lo, hi, expected=1.0, num=300, atol=2e-3, dim=2)

    b = _bijectors(3)[name]
    with jax.enable_x64(True):
        x = to_float64(_data(name, jax.random.key(1), (5, 3)))
        flow = sj.Flow(StandardNormal((3,)), [to_float64(from_distrax(b))])
        ref = distrax.Transformed(distrax.MultivariateNormalDiag(jnp.zeros(3, jnp.float64)),
                                  distrax.Block(b, 1) if b.event_ndims_in == 0 else b)
        lp = flow.log_prob(x)
        assert lp.dtype == jnp.float64
        np.testing.assert_allclose(lp, ref.log_prob(x), rtol=1e-6)
        # V from the latent side (sampling path) equals V of the data side
        xs, lps = flow.sample_and_log_prob(jax.random.key(2), 6)
        np.testing.assert_allclose(lps, flow.log_prob(xs), rtol=1e-6)


def test_directions_are_converted():
    """survae forward (data -> latent) is distrax's inverse: forward(tanh(z)) == z, V = -log(1 - x^2)."""
    layer = from_distrax(distrax.Tanh())
    z = jnp.array([[0.3, -1.2]])
    x = layer.inverse(z)
    np.testing.assert_allclose(x, jnp.tanh(z), rtol=1e-6)
    z2, v = layer.forward(x)
    np.testing.assert_allclose(z2, z, rtol=1e-5)
    np.testing.assert_allclose(v, -jnp.log1p(-x**2).sum(-1), rtol=1e-5)
    x3, v3 = layer.inverse_and_log_det(z)
    np.testing.assert_allclose(v3, v, rtol=1e-5)


def test_tfp_bijector_through_distrax():
    layer = from_distrax(tfp.bijectors.Sinh())
    x = jax.random.normal(jax.random.key(0), (4, 2))
    check_transform(layer, x, properties=("round_trip", "log_det", "jit", "vmap", "bad_input"))
    z, v = layer.forward(x)
    np.testing.assert_allclose(z, jnp.arcsinh(x), rtol=1e-6)
    np.testing.assert_allclose(v, -0.5 * jnp.log1p(x**2).sum(-1), rtol=1e-5)  # d asinh/dx = 1/sqrt(1+x^2)


def test_trainable_bijector_params_get_gradients_and_train():
    """``from_distrax(make, params)``: params are nnx.Params that jax.grad and sj.train reach."""
    params = _spline_params(jax.random.key(3), 2)
    layer = from_distrax(lambda p: distrax.RationalQuadraticSpline(p, -4.0, 4.0), params)
    check_transform(layer, jax.random.normal(jax.random.key(0), (4, 2)), properties=("grad",))
    assert len(jax.tree.leaves(nnx.state(layer, nnx.Param))) == 1
    flow = sj.Flow(StandardNormal((2,)), [layer])
    data = 0.5 * jax.random.normal(jax.random.key(4), (512, 2)) + 1.0
    before = -flow.log_prob(data).mean()
    sj.train(flow, data, config=sj.TrainConfig(steps=40, batch_size=128, log_every=40, progress=False),
             optimizer=optax.adam(1e-2))
    after = -flow.log_prob(data).mean()
    assert float(after) < float(before) - 0.1


def test_bad_arguments():
    with pytest.raises(TypeError, match="DistraxBijection: expected a distrax or TFP bijector, got int"):
        from_distrax(3)
    with pytest.raises(TypeError, match="without params"):
        from_distrax(lambda p: distrax.Tanh())
    layer = from_distrax(distrax.Block(distrax.Tanh(), 2))
    with pytest.raises(ValueError, match=r"DistraxBijection\(Block\): expected x of shape \(B, ...\) with at least 2"):
        layer.forward(jnp.zeros((3, 2)))
    coupling = from_distrax(_bijectors(2)["MaskedCoupling"])  # its mask (2,) would broadcast a (B, 1) input
    with pytest.raises(ValueError, match=r"DistraxBijection\(MaskedCoupling\): .* mapped an input of shape "
                                          r"\(4, 1\) to \(4, 2\)"):
        coupling.forward(jnp.zeros((4, 1)))


def test_a_tfp_chain_with_integer_leaves_runs_under_jit():
    from tensorflow_probability.substrates import jax as tfp

    tb = tfp.bijectors
    chain = tb.Chain([tb.Shift(jnp.array([1.0, 2.0])), tb.Scale(jnp.array([2.0, 3.0]))])  # z -> 2 z + 1 (and 3 z + 2)
    flow = sj.Flow(StandardNormal((2,)), [from_distrax(chain)])
    x = jnp.array([[0.5, 1.0], [2.0, -1.0]])
    z = (x - jnp.array([1.0, 2.0])) / jnp.array([2.0, 3.0])
    want = jax.scipy.stats.norm.logpdf(z).sum(-1) - jnp.log(6.0)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda f, x: f.log_prob(x))(flow, x)), np.asarray(want), rtol=1e-6)
