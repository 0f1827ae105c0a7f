"""LogisticMixtureCDF: closed forms, V against jacfwd, the bisection inverse and its implicit
gradient (against jacfwd of the forward and finite differences), far inputs and large parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from survae_jax.functional import LogisticMixtureCDF

DTYPES = [jnp.float32, jnp.float64]
RT_TOL = {jnp.float32: 1e-5, jnp.float64: 1e-10}
MIX = LogisticMixtureCDF(num_components=3)
N = 32  # every call of _run has this shape: one compile per dtype


def _theta(seed, n, scale, dtype):
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=(n, MIX.num_params)), dtype)


def _finite(*trees):
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(trees))


@jax.jit
def _run(x, theta, z):
    """forward ``(z, V)`` at ``x``, the inverse at ``z``, the per-entry gradients of the inverse
    w.r.t. ``z`` and ``theta``, and of forward's z and V w.r.t. their inputs."""
    f = lambda x, t: MIX.forward(x, t)  # noqa: E731
    dinv = jax.vmap(jax.grad(lambda z, t: MIX.inverse(z, t), argnums=(0, 1)))(z, theta)
    dz = jax.grad(lambda x, t: jnp.sum(f(x, t)[0]), argnums=(0, 1))(x, theta)
    dv = jax.grad(lambda x, t: jnp.sum(f(x, t)[1]), argnums=(0, 1))(x, theta)
    return (*f(x, theta), MIX.inverse(z, theta), dinv, dz, dv)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_theta_is_identity_and_one_component_is_affine(dtype):
    """theta = 0: z = logit(sigmoid(x)) = x, V = 0. One component (the others weight ~0):
    z = exp(a') ((x - mu) / s) + b with s = exp(7 tanh(r / 7)), V = a' - log s (``scale_fn="exp"``)."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.linspace(-6.0, 6.0, N, dtype=dtype)
        z, v, x2, *_ = _run(x, jnp.zeros((N, MIX.num_params), dtype), x)
        eps = float(jnp.finfo(dtype).eps)
        np.testing.assert_allclose(z, x, atol=32 * eps * 6)
        np.testing.assert_allclose(x2, x, atol=32 * eps * 6)
        np.testing.assert_allclose(v, 0.0, atol=32 * eps)
        one = LogisticMixtureCDF(num_components=2, scale_fn="exp")
        mu, r, a, b = 0.7, 1.3, 0.4, -0.2
        theta = jnp.asarray([0.0, -200.0, mu, 5.0, r, 0.0, a, b], dtype)  # weights (1, e^-200)
        s = np.exp(7 * np.tanh(r / 7))
        z, v = one.forward(x, jnp.broadcast_to(theta, (N, 8)))
        np.testing.assert_allclose(z, np.exp(a) * (np.asarray(x, np.float64) - mu) / s + b, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(v, a - np.log(s), rtol=1e-5)


def test_log_det_against_jacfwd_float64():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).normal(size=(12,)) * 3)
        theta = _theta(1, 12, 1.5, jnp.float64)
        jac, v = jax.jit(lambda x: (jax.jacfwd(lambda x: MIX.forward(x, theta)[0])(x), MIX.forward(x, theta)[1]))(x)
        np.testing.assert_array_equal(jac - np.diag(np.diag(jac)), 0.0)
        np.testing.assert_allclose(v, np.log(np.diag(jac)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(dtype):
    """inverse(forward(x)) = x within 1e-5 (float32) / 1e-10 (float64), jitted and eager agree."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.linspace(-4.0, 4.0, N, dtype=dtype)
        theta = _theta(2, N, 1.0, dtype)
        z = _run(x, theta, x)[0]
        x2 = _run(x, theta, z)[2]
        np.testing.assert_allclose(x2, x, rtol=0, atol=RT_TOL[dtype])
        np.testing.assert_allclose(MIX.inverse(z[:4], theta[:4]), x2[:4], rtol=0, atol=RT_TOL[dtype])  # eager


def test_inverse_gradient_is_the_implicit_function_theorem_float64():
    """The bisection's gradient is never a silent zero: d inverse / dz = 1 / f'(x) and
    d inverse / dtheta = -(df/dtheta) / f'(x) (jacfwd of forward), and central finite differences."""
    with jax.enable_x64(True):
        theta = _theta(3, N, 1.0, jnp.float64)
        z = jnp.linspace(-3.0, 3.0, N)
        _, _, x, (dxdz, dxdt), _, _ = _run(z, theta, z)
        dfdx, dfdt = jax.jit(jax.vmap(jax.jacfwd(lambda x, t: MIX.forward(x, t)[0], argnums=(0, 1))))(x, theta)
        np.testing.assert_allclose(dxdz, 1 / dfdx, rtol=1e-9)
        np.testing.assert_allclose(dxdt, -dfdt / dfdx[:, None], rtol=1e-7, atol=1e-12)
        assert float(jnp.min(jnp.abs(dxdt[:, -1]))) > 1e-3  # d x / d b = -1 / f'(x): never zero
        h = 1e-6
        inv = jax.jit(MIX.inverse)
        for p in (1, MIX.num_components + 1, 2 * MIX.num_components + 2, MIX.num_params - 2):
            e = np.eye(MIX.num_params)[p]
            fd = (inv(z, theta + h * e) - inv(z, theta - h * e)) / (2 * h)
            np.testing.assert_allclose(dxdt[:, p], fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_far_inputs_and_large_parameters_finite(dtype):
    """Inputs up to 1e4 x 3 and parameters of magnitude 1e4 and 1e30: z, V, the inverse and every
    gradient finite, both directions; the far inputs round-trip (relative 1e-5)."""
    with jax.enable_x64(dtype == jnp.float64):
        rng = np.random.default_rng(4)
        x = jnp.asarray(np.concatenate([np.linspace(-3, 3, 12), [3e4, -3e4, 3e3, -3e3]] * 2), dtype)
        signs = rng.choice([-1.0, 1.0, 0.0], size=(2, MIX.num_params))
        theta = np.concatenate([np.repeat(0.5 * rng.normal(size=(1, MIX.num_params)), 16, 0),
                                np.repeat(1e4 * signs[:1], 8, 0), np.repeat(1e30 * signs[1:], 8, 0)])
        theta = jnp.asarray(theta, dtype)
        z, v, _, _, dz, dv = _run(x, theta, x)
        _, _, x2, dinv, _, _ = _run(x, theta, z)
        assert _finite(z, v, x2, dinv, dz, dv)
        far = slice(12, 16)  # the far inputs under moderate parameters
        np.testing.assert_allclose(x2[far], x[far], rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_infinite_inputs_give_infinite_z_and_the_limit_of_v(dtype):
    """x = +-inf: z = +-inf and V = log scale(a) - max_k log s_k, the limit of V at large |x|
    (never NaN); its gradient finite."""
    with jax.enable_x64(dtype == jnp.float64):
        theta = jnp.tile(_theta(7, 2, 0.5, dtype), (2, 1))  # rows: the same parameters for inf and 1e6
        x = jnp.asarray([np.inf, -np.inf, 1e6, -1e6], dtype)
        z, v = MIX.forward(x, theta)
        np.testing.assert_array_equal(z[:2], [np.inf, -np.inf])
        np.testing.assert_allclose(v[:2], v[2:], rtol=1e-4)  # the limit, reached at |x| = 1e6
        g = jax.grad(lambda t: jnp.sum(MIX.forward(x, t)[1]))(theta)
        assert np.isfinite(g).all()


def test_bad_settings_and_theta_shape_are_refused():
    with pytest.raises(ValueError, match="LogisticMixtureCDF: num_components"):
        LogisticMixtureCDF(num_components=0)
    with pytest.raises(ValueError, match="LogisticMixtureCDF: scale_fn"):
        LogisticMixtureCDF(scale_fn="relu")
    assert LogisticMixtureCDF(num_components=4).num_params == 14
    with pytest.raises(ValueError, match=r"LogisticMixtureCDF: expected theta of shape \(3, 11\)"):
        MIX.forward(jnp.zeros(3), jnp.zeros((3, 10)))
