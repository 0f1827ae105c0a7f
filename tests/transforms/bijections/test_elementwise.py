"""Elementwise bijections at their edges: saturation, logs of zero, and where NaN comes from."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax import functional as F
from survae_jax.testing import check_transform
from survae_jax.transforms import ElementwiseBijection
from survae_jax.transforms.bijections import Logit, Scale, Shift, Sigmoid, Softplus, SoftplusInverse, Tanh


def _row(*values):
    return jnp.asarray([values], jnp.float32)


# ----------------------------------------------------------------------------- Tanh
def test_tanh_log_det_finite_at_saturation():
    """log(1 - tanh^2) = 2 (log 2 - |x| - log1p(e^{-2|x|})), finite where tanh rounds to +-1."""
    xs = np.array([0.0, 0.5, 5.0, 12.0, 20.0, 50.0, -50.0])
    per_element = [float(Tanh().forward(_row(x))[1][0]) for x in xs]
    want = 2.0 * (math.log(2.0) - np.abs(xs) - np.log1p(np.exp(-2.0 * np.abs(xs))))
    np.testing.assert_allclose(per_element, want, rtol=1e-6)
    assert np.all(np.isfinite(per_element))
    # what the rewrite avoids: the naive formula is -inf once tanh(x) rounds to 1 in float32
    assert float(jnp.log(1.0 - jnp.tanh(jnp.float32(20.0)) ** 2)) == -np.inf
    # the documented price of saturation: the round trip is lost, not V
    z, _ = Tanh().forward(_row(20.0))
    assert float(z[0, 0]) == 1.0 and float(Tanh().inverse(z)[0, 0]) == np.inf


def test_tanh_inverse_outside_range_is_nan():
    """Documented: atanh of |z| > 1 is NaN (outside the image of tanh), |z| = 1 is +-inf."""
    x = Tanh().inverse(_row(-1.0, 1.0, 1.5))
    assert float(x[0, 0]) == -np.inf and float(x[0, 1]) == np.inf and np.isnan(float(x[0, 2]))


# ----------------------------------------------------------------------------- Logit / Sigmoid
def test_logit_at_zero_and_one_is_infinite_not_nan():
    """eps=0: log of zero at the edges gives z = -+inf and V = +inf; no NaN."""
    z, v = Logit().forward(_row(0.0, 1.0))
    assert float(z[0, 0]) == -np.inf and float(z[0, 1]) == np.inf
    assert float(v[0]) == np.inf
    z0, v0 = Logit().forward(_row(0.0))
    assert float(v0[0]) == np.inf and not np.isnan(np.asarray(z0)).any()
    # and back: sigmoid(-+inf) = 0, 1
    np.testing.assert_array_equal(Logit().inverse(z), [[0.0, 1.0]])


def test_logit_eps_squeeze_is_finite_on_the_closed_interval():
    eps = 0.05
    z, v = Logit(eps).forward(_row(0.0, 1.0))
    l = math.log(1 - eps) - math.log(eps)
    np.testing.assert_allclose(z, [[-l, l]], rtol=1e-6)
    want = 2 * (math.log1p(-2 * eps) - math.log(eps) - math.log(1 - eps))
    np.testing.assert_allclose(v, [want], rtol=1e-6)
    np.testing.assert_allclose(Logit(eps).inverse(z), [[0.0, 1.0]], atol=1e-6)


def test_logit_outside_unit_interval_is_nan():
    """Documented: a negative x (or x > 1) is outside the domain; log of a negative number is NaN."""
    z, v = Logit().forward(_row(-0.1))
    assert np.isnan(float(z[0, 0])) and np.isnan(float(v[0]))


def test_logit_bad_eps():
    with pytest.raises(ValueError, match=r"Logit: eps must be in \[0, 0.5\)"):
        Logit(0.5)


def test_sigmoid_log_det_finite_where_sigmoid_rounds_to_one():
    z, v = Sigmoid().forward(_row(20.0, -120.0))
    assert float(z[0, 0]) == 1.0  # float32 rounding: sigmoid(20) = 1 - 2e-9
    want = sum(-abs(x) - 2 * math.log1p(math.exp(-abs(x))) for x in (20.0, -120.0))
    np.testing.assert_allclose(v, [want], rtol=1e-6)
    # the price: the inverse of a rounded 1 is +inf
    assert float(Sigmoid().inverse(z)[0, 0]) == np.inf


def test_sigmoid_inverse_edges_and_outside():
    x = Sigmoid().inverse(_row(0.0, 1.0, 1.5, -0.5))
    assert float(x[0, 0]) == -np.inf and float(x[0, 1]) == np.inf
    assert np.isnan(float(x[0, 2])) and np.isnan(float(x[0, 3]))


# ----------------------------------------------------------------------------- Softplus
def test_softplus_underflow_keeps_v_finite():
    z, v = Softplus().forward(_row(-200.0, 30.0))
    assert float(z[0, 0]) == 0.0  # exp(-200) underflows in float32
    np.testing.assert_allclose(v, [-200.0 - math.log1p(math.exp(-30.0))], rtol=1e-6)
    x = Softplus().inverse(z)
    assert float(x[0, 0]) == -np.inf
    np.testing.assert_allclose(x[0, 1], 30.0, rtol=1e-6)


def test_softplus_inverse_edges():
    """x = 0: z = -inf, V = +inf (log of zero); x < 0: outside the domain, NaN."""
    z, v = SoftplusInverse().forward(_row(0.0))
    assert float(z[0, 0]) == -np.inf and float(v[0]) == np.inf
    z, v = SoftplusInverse().forward(_row(-1.0))
    assert np.isnan(float(z[0, 0])) and np.isnan(float(v[0]))
    # large x: z = x + log(1 - e^-x) is exact, no overflow of e^x
    z, v = SoftplusInverse().forward(_row(100.0))
    np.testing.assert_allclose(z, [[100.0]], rtol=1e-7)
    np.testing.assert_allclose(v, [0.0], atol=1e-30)


@pytest.mark.parametrize("layer", [Sigmoid, Logit, Softplus, SoftplusInverse, Tanh])
def test_errors_name_the_layer(layer):
    with pytest.raises(ValueError, match=rf"{layer.__name__}: expected input of rank >= 1.*\(\)"):
        layer().forward(jnp.zeros(()))
    with pytest.raises(ValueError, match=rf"{layer.__name__}: expected a floating-point input, got dtype int32"):
        layer().inverse(jnp.zeros((2, 3), jnp.int32))


# ----------------------------------------------------------------------------- Scale / Shift
def test_scale_v_broadcasts_over_the_event():
    x = jnp.ones((2, 3, 3, 2))
    _, v = Scale(2.5).forward(x)
    np.testing.assert_allclose(v, [18 * math.log(2.5)] * 2, rtol=1e-6)
    _, v = Scale(jnp.array([2.0, -0.5])).forward(x)  # per channel, 9 positions
    np.testing.assert_allclose(v, [9 * (math.log(2.0) + math.log(0.5))] * 2, atol=1e-5)


def test_scale_and_shift_refuse_bad_parameters_and_shapes():
    with pytest.raises(ValueError, match="Scale: a zero scale"):
        Scale(jnp.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="Shift: expected finite"):
        Shift(jnp.inf)
    with pytest.raises(ValueError, match=r"Scale: its parameter of shape \(2,\).*event shape \(3,\).*\(4, 3\)"):
        Scale(jnp.array([1.0, 2.0])).forward(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Shift: its parameter of shape \(2,\)"):
        Shift(jnp.array([1.0, 2.0])).inverse(jnp.ones((4, 3)))


def test_scale_shift_are_not_trained():
    from flax import nnx

    assert not jax.tree.leaves(nnx.state(Scale(jnp.array([1.0, 2.0])), nnx.Param))
    assert not jax.tree.leaves(nnx.state(Shift(jnp.array([1.0, 2.0])), nnx.Param))


_LATENT_V = [  # the docstrings' V written in the latent z, and a point of each domain
    (Sigmoid(), lambda z: jnp.log(z) + jnp.log1p(-z), [[-1.5, 0.3], [2.0, -0.2]]),
    (Logit(0.05), lambda z: math.log(0.9) + jax.nn.softplus(z) + jax.nn.softplus(-z), [[0.2, 0.7], [0.05, 0.9]]),
    (Softplus(), lambda z: jnp.log(-jnp.expm1(-z)), [[-1.5, 0.3], [2.0, -0.2]]),
    (SoftplusInverse(), lambda z: jax.nn.softplus(-z), [[0.5, 1.3], [2.0, 0.2]]),
    (Tanh(), lambda z: jnp.log1p(-jnp.square(z)), [[-1.5, 0.3], [2.0, -0.2]]),
]


@pytest.mark.parametrize("layer,v_of_z,x", _LATENT_V, ids=[type(c[0]).__name__ for c in _LATENT_V])
def test_documented_v_in_both_directions(layer, v_of_z, x):
    """V = sum log|dz/dx| (jacfwd), = the docstring's formula in z, = -log|dx/dz| of the inverse."""
    x = jnp.asarray(x)
    z, v = layer.forward(x)
    dz = jax.vmap(jax.jacfwd(lambda r: layer.forward(r[None])[0][0]))(x)
    dx = jax.vmap(jax.jacfwd(lambda r: layer.inverse(r[None])[0]))(z)
    log_dz = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(dz, axis1=1, axis2=2))), axis=1)
    log_dx = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(dx, axis1=1, axis2=2))), axis=1)
    np.testing.assert_allclose(v, log_dz, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v, jnp.sum(v_of_z(z), axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(log_dx, -v, rtol=1e-4, atol=1e-5)


class Power(ElementwiseBijection):
    """A user's elementwise layer on (0, inf): ``z = x^p``, ``V = sum log(p x^(p-1))``."""

    functional = F.elementwise_pair(lambda x, p: x**p, lambda z, p: z ** (1 / p),
                                    lambda x, p: jnp.log(p * x ** (p - 1)), "Power")

    def __init__(self, p):
        self.p = p

    def functional_args(self):
        return {**super().functional_args(), "p": self.p}


class Sinh(ElementwiseBijection):  # the docstring's example
    functional = F.elementwise_pair(jnp.sinh, jnp.arcsinh, lambda x: jnp.log(jnp.cosh(x)), "Sinh")


def test_docstring_example_layer():
    x = jnp.array([[0.5, -1.0, 2.0]])
    z, v = Sinh().forward(x)
    np.testing.assert_allclose(z, np.sinh(x), rtol=1e-6)
    np.testing.assert_allclose(v, [np.sum(np.log(np.cosh(np.asarray(x))))], rtol=1e-6)
    np.testing.assert_allclose(Sinh().inverse(z), x, rtol=1e-6)


def test_user_elementwise_layer_passes_check_transform():
    x = jax.random.uniform(jax.random.key(0), (3, 4), minval=0.5, maxval=2.0)
    report = check_transform(Power(1.5), x, bad_input=lambda k: jnp.zeros(()), bad_latent=lambda k: jnp.zeros(()))
    assert report["log_det"] == report["round_trip"] == "passed"
    z, v = Power(1.5).forward(x)
    np.testing.assert_allclose(v, jnp.sum(jnp.log(1.5 * jnp.sqrt(x)), axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="Power: expected a floating-point input"):
        Power(2.0).forward(jnp.ones((2, 3), jnp.int32))


@pytest.mark.parametrize("layer", [Sigmoid(), Logit(0.05), Softplus(), SoftplusInverse(), Tanh(),
                                   Scale(jnp.array([2.0, -0.5, 1.0, 3.0])), Shift(0.3)],
                         ids=lambda l: type(l).__name__)
def test_module_equals_its_pair(layer):
    """The module calls its pure pair with its parameters; the pair works under jit and grad."""
    x = jax.random.uniform(jax.random.key(1), (2, 4), minval=0.1, maxval=0.9)
    fwd, inv = type(layer).functional
    args = layer.functional_args()
    z, v = fwd(x, **args)
    np.testing.assert_array_equal(layer.forward(x)[0], z)
    np.testing.assert_array_equal(layer.forward(x)[1], v)
    np.testing.assert_allclose(jax.jit(lambda x: inv(x, **args))(z), x, rtol=1e-5)
    g = jax.grad(lambda x: jnp.sum(fwd(x, **args)[1]))(x)
    assert g.shape == x.shape and np.all(np.isfinite(g))
