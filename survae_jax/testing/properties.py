"""The properties of the suite, one function each, on a :class:`~survae_jax.testing.case.Bound`.

Each ``prop_*`` function raises ``AssertionError`` with a short message when the layer breaks
the property; :mod:`survae_jax.testing.suite` turns that into a :class:`PropertyError` that
names the layer and the property. All of them use ``forward`` = X -> Z (data to latent) and
``inverse`` = Z -> X, ``V`` of shape ``(B,)`` in nats, as in ``survae_jax.transforms.base``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.testing.case import Bound


# ----------------------------------------------------------------------------- helpers
def _floating(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating)


def to_float64(tree):
    """Cast every floating leaf of ``tree`` (a module, an array, ``None``) to float64.

    Call inside ``with jax.enable_x64(True):``; otherwise JAX silently keeps float32.
    Shapes are kept: a ``(B, D)`` float32 leaf becomes ``(B, D)`` float64; integer, boolean and
    key leaves are left as they are.

    Source: this library (the ``float64`` property; PLAN.md "float64 must work").
    """
    return jax.tree.map(lambda a: a.astype(jnp.float64) if _floating(a) else a, tree)


def _fwd(t, x, key, c):
    return t.forward(x, key=key, context=c)


def _inv(t, z, key, c):
    return t.inverse(z, key=key, context=c)


def _one(c, i=None):
    """The context of one example inside ``vmap`` (``c`` already unbatched), re-batched."""
    return None if c is None else c[None]


def _assert_close(what, got, want, rtol, atol):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} != expected {want.shape}.")
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False):
        err = np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))
        raise AssertionError(f"{what}: max abs difference {err:.3g} (rtol={rtol:g}, atol={atol:g}).")


def _assert_finite(what, a):
    if _floating(a) and not bool(jnp.all(jnp.isfinite(a))):
        raise AssertionError(f"{what} has non-finite entries: {np.asarray(a).ravel()[:8]} ...")


def _latent(b: Bound):
    """A latent batch in the image of ``forward``: ``forward(x, key)[0]``."""
    return _fwd(b.transform, b.x, b.key, b.context)[0]


def _pad_last(a):
    return jnp.concatenate([a, a[..., :1]], axis=-1)


# ----------------------------------------------------------------------------- properties
def prop_round_trip(b: Bound) -> None:
    """Bijection: ``inverse(forward(x)) == x`` within the case's float32 tolerance."""
    x2 = _inv(b.transform, _latent(b), b.key, b.context)
    _assert_close("inverse(forward(x)) vs x", x2, b.x, b.case.rtol, b.case.atol)


def prop_log_det(b: Bound) -> None:
    """Bijection: ``V`` equals ``log|det J|`` of ``jax.jacfwd`` of ``forward``, per example, in float64.

    The event is flattened, so vectors ``(B, D)``, images ``(B, H, W, C)`` and point clouds
    ``(B, N, 2)`` are all checked; the Jacobian must be square (a dimension-preserving layer).
    """
    with jax.enable_x64(True):
        t, x, c = to_float64(b.transform), to_float64(b.x), to_float64(b.context)
        event = x.shape[1:]

        def flat_forward(t, xf, ci):
            z, _ = _fwd(t, xf.reshape((1, *event)), b.key, _one(ci))
            return z.reshape(-1)

        def per_example(t, xi, ci):
            return jnp.linalg.slogdet(jax.jacfwd(flat_forward, argnums=1)(t, xi.reshape(-1), ci))

        @jax.jit
        def run(t, x, c):
            sign, log_det = jax.vmap(per_example, in_axes=(None, 0, 0))(t, x, c)
            return sign, log_det, _fwd(t, x, b.key, c)[1]

        sign, log_det, v = run(t, x, c)
    if v.dtype != jnp.float64:
        raise AssertionError(f"V is {v.dtype} for float64 input and parameters.")
    if np.any(np.asarray(sign) == 0):
        raise AssertionError("jacfwd(forward) is singular for some example: not a bijection.")
    _assert_close(
        "V vs slogdet(jacfwd(forward)) in float64", v, log_det, b.case.log_det_rtol, b.case.log_det_atol
    )


def prop_right_inverse(b: Bound) -> None:
    """Surjections: the stochastic direction stays on the fibre, for ``num_keys`` keys (Appendix B).

    Generative surjection (stochastic ``forward``): ``inverse(forward(x, key=k)) == x``.
    Inference surjection (stochastic ``inverse``): ``forward(inverse(z, key=k)) == z`` for
    ``z = forward(x)``, and ``V`` of those points is finite. Exact (``right_inverse_atol=0``)
    unless the case says otherwise. One compile: ``vmap`` over the keys.
    """
    t, x, c = b.transform, b.x, b.context
    keys = jax.random.split(b.key, b.case.num_keys)
    tol = b.case.right_inverse_atol
    if t.stochastic_forward and not t.stochastic_inverse:

        @jax.jit
        def run(t, keys):
            zs = jax.vmap(lambda k: _fwd(t, x, k, c)[0])(keys)
            return jax.vmap(lambda z: _inv(t, z, None, c))(zs)

        xs = run(t, keys)
        want = jnp.broadcast_to(x, xs.shape)
        bad = np.abs(np.asarray(xs, np.float64) - np.asarray(want, np.float64)) > tol
        if bad.any():
            n = int(bad.reshape(len(keys), -1).any(axis=1).sum())
            raise AssertionError(
                f"inverse(forward(x, key=k)) != x for {n} of {len(keys)} keys "
                f"(max error {np.max(np.abs(np.asarray(xs, np.float64) - np.asarray(want, np.float64))):.3g}): "
                "forward's samples leave the fibre of x."
            )
    elif t.stochastic_inverse and not t.stochastic_forward:
        z = _latent(b)

        @jax.jit
        def run(t, keys):
            xs = jax.vmap(lambda k: _inv(t, z, k, c))(keys)
            return jax.vmap(lambda xx: _fwd(t, xx, None, c))(xs)

        zs, vs = run(t, keys)
        want = jnp.broadcast_to(z, zs.shape)
        err = np.abs(np.asarray(zs, np.float64) - np.asarray(want, np.float64))
        if (err > tol).any():
            n = int((err > tol).reshape(len(keys), -1).any(axis=1).sum())
            raise AssertionError(
                f"forward(inverse(z, key=k)) != z for {n} of {len(keys)} keys (max error {err.max():.3g}): "
                "inverse's samples leave the fibre of z."
            )
        _assert_finite("V at points drawn by inverse", vs)
    else:
        raise AssertionError("right_inverse applies to surjections only (one stochastic direction).")


def prop_deterministic(b: Bound) -> None:
    """Every deterministic direction gives identical outputs for ``key=None`` and two keys.

    For an inference surjection this includes its exact ``V``.
    """
    t, x, c = b.transform, b.x, b.context
    k1, k2 = jax.random.split(b.key)
    if not t.stochastic_forward:
        outs = [_fwd(t, x, k, c) for k in (None, k1, k2)]
        for name, i in (("z", 0), ("V", 1)):
            if not all(np.array_equal(outs[0][i], o[i]) for o in outs[1:]):
                raise AssertionError(f"forward is deterministic by its flags, but {name} changed with the key.")
    if not t.stochastic_inverse:
        z = _latent(b)
        outs = [_inv(t, z, k, c) for k in (None, k1, k2)]
        if not all(np.array_equal(outs[0], o) for o in outs[1:]):
            raise AssertionError("inverse is deterministic by its flags, but its output changed with the key.")


def prop_key_required(b: Bound) -> None:
    """Each stochastic direction raises ``ValueError`` naming the layer on ``key=None``, and uses its key.

    "Uses its key": 8 keys do not all give the same output, so the case's input must exercise
    the randomness (e.g. some negative inputs for an inference ReLU, whose inverse draws only
    where z = 0).
    """
    t, x, c = b.transform, b.x, b.context
    cls = type(t).__name__
    keys = jax.random.split(b.key, 8)
    directions = []
    if t.stochastic_forward:
        directions.append(("forward", x, lambda t, a, k: _fwd(t, a, k, c)[0]))
    if t.stochastic_inverse:
        directions.append(("inverse", _latent(b), lambda t, a, k: _inv(t, a, k, c)))
    for name, arg, call in directions:
        try:
            call(t, arg, None)
        except ValueError as e:
            if cls not in str(e):
                raise AssertionError(f"{name}(key=None) raised ValueError without naming {cls}: {e}") from None
        except Exception as e:  # noqa: BLE001 - report what was raised instead
            raise AssertionError(
                f"{name}(key=None) raised {type(e).__name__}, expected ValueError naming {cls}: {e}"
            ) from None
        else:
            raise AssertionError(f"{name} is stochastic but accepted key=None (hidden randomness?).")
        outs = np.asarray(jax.jit(jax.vmap(lambda k: call(t, arg, k)))(keys))
        if all(np.array_equal(outs[0], o) for o in outs[1:]):
            raise AssertionError(f"{name} is stochastic but 8 different keys gave the same output: the key is ignored.")


def prop_density(b: Bound) -> None:
    """Exact layer on ``(B, D)`` data, ``D`` 1 or 2, with ``density=(base, lo, hi, expected)``:
    ``exp(Flow(base, [layer]).log_prob)`` integrates over the data-space box ``[lo, hi]`` to
    ``expected`` (the base's mass on the layer's image) within ``density_atol``.

    The only check of ``V`` of an inference surjection in the suite (``log_det`` needs a
    Jacobian); for a bijection it checks ``V`` a second way. Midpoint rule with ``density_num``
    points per axis, one compile (:func:`survae_jax.testing.integrate_density`).
    Source: change of variables with surjections, SurVAE Flows Appendix A.
    """
    from survae_jax.flow import Flow  # here: survae_jax.flow is not needed to import the suite
    from survae_jax.testing.density import integrate_density

    if b.case.density is None:
        raise AssertionError("no density=(base, lo, hi, expected) given for this case.")
    t, x = b.transform, b.x
    if t.stochastic_forward:
        raise AssertionError("density applies to exact layers only (forward deterministic).")
    if b.context is not None:
        raise AssertionError("density does not support conditional layers (give an unconditional case).")
    base, lo, hi, expected = b.case.density
    lo_a, hi_a = np.atleast_1d(np.asarray(lo)), np.atleast_1d(np.asarray(hi))
    if x.ndim != 2 or x.shape[1] not in (1, 2) or lo_a.shape != (x.shape[1],) or hi_a.shape != lo_a.shape:
        raise AssertionError(
            f"density needs (B, D) data with D 1 or 2 and a box of D entries per corner; got x {tuple(x.shape)}, "
            f"lo {lo_a.tolist()}, hi {hi_a.tolist()}."
        )
    dtype = x.dtype if _floating(x) else jnp.float32
    value = integrate_density(Flow(base, [t]), lo_a, hi_a, num=b.case.density_num, dtype=dtype)
    if not abs(value - float(expected)) <= b.case.density_atol:
        raise AssertionError(
            f"exp(Flow(base, [layer]).log_prob) integrates to {value:.6f} over [{lo_a.tolist()}, {hi_a.tolist()}] "
            f"({b.case.density_num} points per axis), expected {float(expected)} +- {b.case.density_atol}: "
            "V is wrong (or the box misses mass, or expected is not the base's mass on the layer's image)."
        )
