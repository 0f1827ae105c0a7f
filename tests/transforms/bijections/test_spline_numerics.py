"""RationalQuadraticSpline: closed forms and every numerical edge case, in float32 and float64.

Each edge case of the family's contract is one test: tails (identity, V = 0, exactly zero
gradient w.r.t. theta, up to 1e4 tail bounds), a batch entirely in the tails (jit and eager),
parameters near their limits (no NaN/inf in values or gradients, both directions), inputs on
the knots and next to the bound (the bin search), round trips, V against jacfwd, the inverse's
gradient against the implicit function theorem.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.functional import RationalQuadraticSpline
from survae_jax.nn import MLP
from survae_jax.transforms import RQSCoupling

DTYPES = [jnp.float32, jnp.float64]
RT_TOL = {jnp.float32: 1e-5, jnp.float64: 1e-10}
B = 3.0
SPLINE = RationalQuadraticSpline(num_bins=5, tail_bound=B)


def _theta(seed, n, scale, dtype, spline=SPLINE):
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=(n, spline.num_params)), dtype)


def _knots_and_derivatives(theta, spline=SPLINE):
    """The knots ``(x_k, y_k)`` and derivatives ``d_k`` by the docstring's formulas, in numpy float64."""
    t = np.asarray(theta, np.float64)
    k, b = spline.num_bins, spline.tail_bound

    def knots(u, m):
        p = np.exp(u - u.max(-1, keepdims=True))
        p = m + (1 - k * m) * p / p.sum(-1, keepdims=True)
        c = np.concatenate([np.zeros(u.shape[:-1] + (1,)), np.cumsum(p, -1)], -1)
        return -b + 2 * b * c

    shift = np.log(np.expm1(1 - spline.min_derivative))
    d = spline.min_derivative + np.logaddexp(0, t[..., 2 * k:] + shift)
    ones = np.ones(t.shape[:-1] + (1,))
    return (knots(t[..., :k], spline.min_bin_width), knots(t[..., k:2 * k], spline.min_bin_height),
            np.concatenate([ones, d, ones], -1))


def _finite(*arrays):
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(arrays))


N = 64  # every call of _run has this shape: one compile per dtype


def _outputs(x, theta, z):
    """forward's ``(z, V)`` at ``x``, the inverse at ``z``, and the gradients of z, V and the inverse
    w.r.t. their input and theta."""
    f, inv = SPLINE.forward, SPLINE.inverse
    grads = {
        "z": jax.grad(lambda x, t: jnp.sum(f(x, t)[0]), argnums=(0, 1))(x, theta),
        "v": jax.grad(lambda x, t: jnp.sum(f(x, t)[1]), argnums=(0, 1))(x, theta),
        "inverse": jax.grad(lambda z, t: jnp.sum(inv(z, t)), argnums=(0, 1))(z, theta),
    }
    return (*f(x, theta), inv(z, theta), grads)


_jit_outputs = jax.jit(_outputs)


def _run(x, theta, z=None):
    """``_jit_outputs`` on ``N`` entries (inputs padded with 0, theta with its first row)."""
    n = x.shape[0]
    z = x if z is None else z
    pad = lambda a: jnp.concatenate([a, jnp.broadcast_to(a[:1] * 0 if a.ndim == 1 else a[:1], (N - n, *a.shape[1:]))])
    out = _jit_outputs(pad(x), pad(theta), pad(z))
    return jax.tree.map(lambda a: a[:n], out)


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_theta_is_identity(dtype):
    """Equal widths and heights, unit derivatives: z = x, V = 0, also in the tails."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.linspace(-2 * B, 2 * B, N, dtype=dtype)
        z, v, x2, _ = _run(x, jnp.zeros((N, SPLINE.num_params), dtype))
        eps = float(jnp.finfo(dtype).eps)
        np.testing.assert_allclose(z, x, atol=16 * eps * B)
        np.testing.assert_allclose(x2, x, atol=16 * eps * B)
        np.testing.assert_allclose(v, 0.0, atol=16 * eps)


def test_knots_map_to_knots_with_their_derivatives():
    """forward(x_k) = y_k, log dz/dx at x_k = log d_k, inverse(y_k) = x_k (float64), random parameters."""
    with jax.enable_x64(True):
        theta = _theta(0, 8, 1.5, jnp.float64)
        xk, yk, dk = _knots_and_derivatives(theta)
        inner = slice(1, SPLINE.num_bins)  # the interior knots; the end knots are the tails' edge
        th = jnp.repeat(theta, SPLINE.num_bins - 1, axis=0)
        z, v, x, _ = _run(jnp.asarray(xk[:, inner].ravel()), th, jnp.asarray(yk[:, inner].ravel()))
        np.testing.assert_allclose(z, yk[:, inner].ravel(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(v, np.log(dk[:, inner]).ravel(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(x, xk[:, inner].ravel(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_monotone_and_continuous(scale):
    """z strictly increasing over [-2B, 2B] (float64), no jump at the knots or at +-B."""
    with jax.enable_x64(True):
        x = jnp.linspace(-2 * B, 2 * B, 4001, dtype=jnp.float64)
        theta = jnp.broadcast_to(_theta(1, 1, scale, jnp.float64)[0], (x.size, SPLINE.num_params))
        z, v = jax.jit(SPLINE.forward)(x, theta)
        assert bool(jnp.all(jnp.diff(z) > 0))
        # continuity: each step is at most the largest slope on the grid times the spacing
        slope = float(jnp.exp(v).max())
        assert float(jnp.diff(z).max()) <= 1.01 * slope * float(x[1] - x[0])


def test_log_det_against_jacfwd_float64():
    """V = log dz/dx of jax.jacfwd, inside and in the tails, float64."""
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(2).normal(size=(16,)) * 2.5)
        theta = _theta(3, 16, 2.0, jnp.float64)
        fwd = lambda x: SPLINE.forward(x, theta)  # noqa: E731
        jac, v = jax.jit(lambda x: (jax.jacfwd(lambda x: fwd(x)[0])(x), fwd(x)[1]))(x)
        np.testing.assert_array_equal(jac - np.diag(np.diag(jac)), 0.0)
        assert bool(jnp.any(jnp.abs(x) > B)) and bool(jnp.any(jnp.abs(x) < B))
        np.testing.assert_allclose(v, np.log(np.diag(jac)), rtol=1e-10, atol=1e-12)


def test_inverse_gradient_is_the_implicit_function_theorem_float64():
    """d inverse / dz = 1 / f'(x) and d inverse / dtheta = -(df/dtheta) / f'(x), f'(x) by jacfwd of
    forward; and against central finite differences of the inverse."""
    with jax.enable_x64(True):
        theta = _theta(4, 6, 1.0, jnp.float64)
        z = jnp.asarray([-2.9, -1.0, -0.2, 0.3, 1.7, 2.95])

        @jax.jit
        def run(z, theta):
            x = SPLINE.inverse(z, theta)
            df = jax.vmap(jax.jacfwd(lambda x, t: SPLINE.forward(x, t)[0], argnums=(0, 1)))(x, theta)
            dx = jax.vmap(jax.grad(lambda z, t: SPLINE.inverse(z, t), argnums=(0, 1)))(z, theta)
            return df, dx

        (dfdx, dfdt), (dxdz, dxdt) = run(z, theta)
        np.testing.assert_allclose(dxdz, 1 / dfdx, rtol=1e-10)
        np.testing.assert_allclose(dxdt, -dfdt / dfdx[:, None], rtol=1e-8, atol=1e-12)
        assert float(jnp.abs(dxdt).max()) > 1e-3  # not a silent zero
        h, e = 1e-6, np.eye(SPLINE.num_params)[3]
        inv = jax.jit(SPLINE.inverse)
        fd = (inv(z, theta + h * e) - inv(z, theta - h * e)) / (2 * h)
        np.testing.assert_allclose(dxdt[:, 3], fd, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(dtype):
    """inverse(forward(x)) = x and forward(inverse(z)) = z within 1e-5 (float32) / 1e-10 (float64),
    moderate parameters, every bin and both tails."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.linspace(-1.2 * B, 1.2 * B, N, dtype=dtype)
        theta = _theta(5, N, 0.5, dtype)
        z, _, x_of_x, _ = _run(x, theta)
        x2 = _run(x, theta, z)[2]
        np.testing.assert_allclose(x2, x, rtol=0, atol=RT_TOL[dtype])
        np.testing.assert_allclose(_run(x_of_x, theta)[0], x, rtol=0, atol=RT_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_ill_conditioned_within_its_conditioning(dtype):
    """Large parameters (slopes from ~1e-5 to ~1e3): |inverse(forward(x)) - x| <= tol max(1, 1/slope),
    the error a rounded z forces on any inverse."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.linspace(-B, B, N, dtype=dtype)
        theta = _theta(6, N, 6.0, dtype)
        z, v, _, _ = _run(x, theta)
        err = jnp.abs(_run(x, theta, z)[2] - x)
        assert float(jnp.exp(-v).max()) > 1e3  # the case is ill-conditioned indeed
        assert bool(jnp.all(err <= RT_TOL[dtype] * jnp.maximum(1.0, jnp.exp(-v))))


# ----------------------------------------------------------------------------- tails
@pytest.mark.parametrize("dtype", DTYPES)
def test_tails_are_identity_with_zero_log_det_and_zero_theta_gradient(dtype):
    """|x| >= B (up to 1e4 B, and inf): z = x and x = inverse(x) exactly, V = 0 exactly, the
    gradients w.r.t. theta exactly 0 (z, V and the inverse), w.r.t. x exactly 1 (z, inverse)."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.asarray([B, -B, 1.5 * B, -7.0 * B, 1e4 * B, -1e4 * B, jnp.inf, -jnp.inf], dtype)
        theta = _theta(7, x.size, 3.0, dtype)
        z, v, x2, grads = _run(x, theta)
        assert z.dtype == dtype and v.dtype == dtype
        np.testing.assert_array_equal(z, x)
        np.testing.assert_array_equal(v, 0.0)
        np.testing.assert_array_equal(x2, x)
        for g in (grads["z"][1], grads["v"][1], grads["inverse"][1], grads["v"][0]):
            np.testing.assert_array_equal(g, 0.0)
        np.testing.assert_array_equal(grads["z"][0], 1.0)
        np.testing.assert_array_equal(grads["inverse"][0], 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_all_in_tails_jit_and_eager(dtype):
    """A batch whose every entry is in the tails: z = x, V = 0, zero theta gradients, jitted equal
    to eager, both directions."""
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.asarray([5.0, -1e4 * B, B, -B, 3.5], dtype)
        theta = _theta(8, x.size, 2.0, dtype)
        z, v = SPLINE.forward(x, theta)  # eager
        np.testing.assert_array_equal(z, x)
        np.testing.assert_array_equal(v, 0.0)
        np.testing.assert_array_equal(SPLINE.inverse(x, theta), x)
        zj, vj, xj, grads = _run(x, theta)  # jitted
        np.testing.assert_array_equal(zj, z)
        np.testing.assert_array_equal(vj, v)
        np.testing.assert_array_equal(xj, x)
        assert all(float(jnp.abs(g[1]).max()) == 0.0 for g in grads.values())


def test_coupling_batch_all_in_tails_jit_and_eager():
    """RQSCoupling on a batch whose transformed entries are all in the tails (float32; the registry
    case ``RQSCoupling-all-tails`` runs every property, float64 included): z = x, V = 0, the
    inverse the identity, jitted equal to eager, exactly zero gradient for the net."""
    layer = RQSCoupling(MLP(2, 2 * 14, hidden=(8,), rngs=nnx.Rngs(0)), num_bins=5, tail_bound=B)
    xb = jnp.asarray([[0.1, -0.3, 5.0, -1e4 * B], [2.0, 0.0, B, -B]])
    graphdef, params = nnx.split(layer, nnx.Param)

    def run(params, x):
        m = nnx.merge(graphdef, params)
        (z, v), x2 = m.forward(x), m.inverse(x)
        return jnp.sum(z) + jnp.sum(v) + jnp.sum(x2), (z, v, x2)

    eager = run(params, xb)[1]
    g, jitted = jax.jit(jax.grad(run, has_aux=True))(params, xb)
    for e, j, want in zip(eager, jitted, (xb, 0.0, xb)):
        np.testing.assert_array_equal(e, want)
        np.testing.assert_array_equal(j, want)
    assert all(float(jnp.abs(a).max()) == 0.0 for a in jax.tree.leaves(g))  # tails: no net gradient


# ----------------------------------------------------------------------------- extreme inputs and parameters
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_parameters_finite_both_directions(dtype):
    """Unnormalised widths, heights and derivatives of +-1e4 and +-1e30 (bins and slopes at their
    limits): values and gradients of z, V and the inverse finite, for inputs inside, on the knots,
    next to +-B, in the tails and at 1e4 B; the map stays monotone."""
    with jax.enable_x64(dtype == jnp.float64):
        rng = np.random.default_rng(9)
        x = np.concatenate([np.linspace(-B, B, 28), [np.nextafter(B, 0), -np.nextafter(B, 0), 1e4 * B, -1e4 * B]])
        x = jnp.asarray(np.concatenate([x, x]), dtype)
        signs = rng.choice([-1.0, 1.0, 0.0], size=(2, SPLINE.num_params))
        theta = np.repeat(np.stack([1e4 * signs[0], 1e30 * signs[1]]), 32, axis=0)
        theta = jnp.asarray(theta, dtype)
        z, v, _, grads = _run(x, theta)
        x2, _, _, grads2 = _run(x, theta, z)[2], None, None, _run(z, theta, z)[3]
        assert _finite(z, v, x2, grads, grads2)
        for half in (slice(0, 28), slice(32, 60)):  # the grid part of each parameter set
            assert bool(jnp.all(jnp.diff(z[half]) >= 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_inverse_on_the_knots_and_at_the_bound(dtype):
    """z exactly on every y-knot and next to +-B, minimal derivatives (the discriminant of the
    quadratic is ~ (h d)^2 there and rounds to <= 0 unclamped): finite x on the right knot, finite
    gradients."""
    with jax.enable_x64(dtype == jnp.float64):
        theta = np.zeros((1, SPLINE.num_params))
        theta[0, :SPLINE.num_bins] = [3.0, -2.0, 0.0, 4.0, -1.0]  # uneven widths: slopes up to ~e^6
        theta[0, 2 * SPLINE.num_bins:] = -60.0  # interior derivatives = min_derivative
        xk, yk, dk = _knots_and_derivatives(theta)
        z = jnp.asarray(np.concatenate([yk[0], [np.nextafter(B, 0), -np.nextafter(B, 0)]]), dtype)
        th = jnp.broadcast_to(jnp.asarray(theta, dtype), (z.size, SPLINE.num_params))
        _, _, x, grads = _run(z, th, z)
        fx, _, _, grads_x = _run(x, th)
        assert _finite(x, fx, grads, grads_x)
        tol = 1e-6 if dtype == jnp.float32 else 1e-12
        # x on a knot of slope d_k is fixed only to (rounding of z) / d_k
        assert bool(np.all(np.abs(np.asarray(x[:-2], np.float64) - xk[0]) <= tol * np.maximum(1.0, 1.0 / dk[0])))
        np.testing.assert_allclose(fx, z, rtol=0, atol=100 * tol)


# ----------------------------------------------------------------------------- settings and shapes
def test_bad_settings_and_theta_shape_are_refused():
    for kwargs, msg in [({"num_bins": 0}, "num_bins"), ({"tail_bound": 0.0}, "tail_bound"),
                        ({"tail_bound": float("inf")}, "tail_bound"), ({"tail_bound": "3"}, "tail_bound"),
                        ({"num_bins": 10, "min_bin_width": 0.1}, "min_bin_width"),
                        ({"min_derivative": 0.0}, "min_derivative")]:
        with pytest.raises(ValueError, match=f"RationalQuadraticSpline: {msg}"):
            RationalQuadraticSpline(**kwargs)
    assert RationalQuadraticSpline(num_bins=4).num_params == 11
    with pytest.raises(ValueError, match=r"RationalQuadraticSpline: expected theta of shape \(3, 14\)"):
        SPLINE.forward(jnp.zeros(3), jnp.zeros((3, 13)))
    with pytest.raises(ValueError, match="RationalQuadraticSpline: expected theta"):
        SPLINE.inverse(jnp.zeros(3), jnp.zeros((4, 14)))
