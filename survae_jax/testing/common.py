"""Properties every transform owes, whatever its kind: shapes, jit, vmap, grad, float64, bad input.

Same conventions as :mod:`survae_jax.testing.properties`: each ``prop_*`` raises
``AssertionError`` with a short message; ``forward`` = X -> Z, ``V`` ``(B,)`` in nats.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.testing.case import Bound
from survae_jax.testing.properties import (
    _assert_close,
    _assert_finite,
    _floating,
    _fwd,
    _inv,
    _latent,
    _one,
    _pad_last,
    to_float64,
)


def _snapshot(t):
    def host(a):
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return [host(a) for a in jax.tree.leaves(nnx.state(t))]


def prop_shapes(b: Bound) -> None:
    """``V`` is ``(B,)``, floating, finite, in the input's dtype; ``inverse`` gives the data shape.

    Also checks purity (``forward`` and ``inverse`` leave the module's state unchanged) and
    the kind flags (``exact`` exactly when ``forward`` is deterministic).
    """
    t, x = b.transform, b.x
    stochastic = bool(t.stochastic_forward)
    if bool(t.exact) == stochastic:
        raise AssertionError(
            f"flags disagree: exact={t.exact} with stochastic_forward={t.stochastic_forward} "
            "(V is exact iff forward is deterministic: bijections and inference surjections)."
        )
    before = _snapshot(t)
    z, v = _fwd(t, x, b.key, b.context)
    if tuple(v.shape) != (x.shape[0],):
        raise AssertionError(f"V has shape {tuple(v.shape)}, expected ({x.shape[0]},) (one value per example).")
    if not _floating(v):
        raise AssertionError(f"V has dtype {v.dtype}, expected a floating dtype.")
    if _floating(x) and v.dtype != x.dtype:
        raise AssertionError(f"V has dtype {v.dtype} for an input of dtype {x.dtype}.")
    if _floating(x) and _floating(z) and z.dtype != x.dtype:
        raise AssertionError(f"z has dtype {z.dtype} for an input of dtype {x.dtype}.")
    if z.shape[0] != x.shape[0]:
        raise AssertionError(f"z has shape {tuple(z.shape)}: batch size changed from {x.shape[0]}.")
    _assert_finite("V", v)
    _assert_finite("z", z)
    x2 = _inv(t, z, b.key, b.context)
    if tuple(x2.shape) != tuple(x.shape):
        raise AssertionError(f"inverse(z) has shape {tuple(x2.shape)}, expected the data shape {tuple(x.shape)}.")
    _assert_finite("inverse(z)", x2)
    after = _snapshot(t)
    if len(before) != len(after) or any(
        a.shape != c.shape or not np.array_equal(a, c) for a, c in zip(before, after)
    ):
        raise AssertionError("forward/inverse changed the module's state (layers must be pure).")


def _both(t, x, k, c):
    """``forward`` then ``inverse`` of its output: ``(z, V, inverse(z))`` (one program under jit)."""
    z, v = _fwd(t, x, k, c)
    return z, v, _inv(t, z, k, c)


def prop_jit(b: Bound) -> None:
    """``jax.jit`` of ``forward`` and ``inverse`` equals the eager call (same key)."""
    t, x, c, k = b.transform, b.x, b.context, b.key
    z, v = _fwd(t, x, k, c)
    zj, vj, xj = jax.jit(_both)(t, x, k, c)
    _assert_close("jit(forward) z vs eager", zj, z, b.case.rtol, b.case.atol)
    _assert_close("jit(forward) V vs eager", vj, v, b.case.rtol, b.case.atol)
    # the inverse of the jitted z, so that both sides invert the same latent
    _assert_close("jit(inverse) vs eager", xj, _inv(t, zj, k, c), b.case.rtol, b.case.atol)


def prop_vmap(b: Bound) -> None:
    """``jax.vmap`` of the call on single examples ``x[i][None]`` equals the batch call.

    Deterministic directions must agree in value; a stochastic direction (whose draws depend
    on the batch shape) must agree in shape and dtype and stay finite.
    """
    t, x, c, k = b.transform, b.x, b.context, b.key

    def one(t, xi, zi, ci):  # forward of x[i] and inverse of the batch call's z[i]
        z1, v1 = _fwd(t, xi[None], k, _one(ci))
        return z1[0], v1[0], _inv(t, zi[None], k, _one(ci))[0]

    z, v = _fwd(t, x, k, c)
    xb = _inv(t, z, k, c)
    # jitted: an eager vmap dispatches op by op and is several times slower to run here
    zs, vs, xs = jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0)))(t, x, z, c)
    pairs = [("forward z", zs, z, t.stochastic_forward), ("forward V", vs, v, t.stochastic_forward),
             ("inverse", xs, xb, t.stochastic_inverse)]
    for what, got, want, stochastic in pairs:
        if stochastic:
            if got.shape != want.shape or got.dtype != want.dtype:
                raise AssertionError(
                    f"vmap over examples of {what}: {got.shape} {got.dtype} vs batch call {want.shape} {want.dtype}."
                )
            _assert_finite(f"vmap over examples of {what}", got)
        else:
            _assert_close(f"vmap over examples of {what} vs batch call", got, want, b.case.rtol, b.case.atol)


def prop_grad(b: Bound) -> None:
    """Gradients of ``sum(V) + sum(z) + sum(inverse(z))`` w.r.t. every ``nnx.Param`` (and a floating ``x``) are finite."""
    t, x, c, k = b.transform, b.x, b.context, b.key
    graphdef, params, rest = nnx.split(t, nnx.Param, ...)

    def loss(params, x):
        m = nnx.merge(graphdef, params, rest)
        z, v = _fwd(m, x, k, c)
        total = jnp.sum(v)
        if _floating(z):
            total = total + jnp.sum(z)
            xb = _inv(m, jax.lax.stop_gradient(z), k, c)
            if _floating(xb):
                total = total + jnp.sum(xb)
        return total

    argnums = (0, 1) if _floating(x) else 0
    grads = jax.jit(jax.grad(loss, argnums=argnums))(params, x)
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        if not bool(jnp.all(jnp.isfinite(g))):
            where = jax.tree_util.keystr(path)
            raise AssertionError(f"non-finite gradient at {where}: {np.asarray(g).ravel()[:6]} ...")


def prop_float64(b: Bound) -> None:
    """With float64 input and parameters (under ``jax.enable_x64``) every output is float64.

    For a deterministic ``forward`` the float64 ``V`` also agrees with the float32 one (1e-3).
    """
    t, x, c, k = b.transform, b.x, b.context, b.key
    _, v32 = _fwd(t, x, k, c)
    with jax.enable_x64(True):
        t64, x64, c64 = to_float64(t), to_float64(x), to_float64(c)
        z, v, x2 = jax.jit(_both)(t64, x64, k, c64)
    if v.dtype != jnp.float64:
        raise AssertionError(f"V is {v.dtype} with float64 input and parameters (silent downcast).")
    if _floating(z) and z.dtype != jnp.float64:
        raise AssertionError(f"z is {z.dtype} with float64 input and parameters (silent downcast).")
    if _floating(x) and x2.dtype != jnp.float64:
        raise AssertionError(f"inverse(z) is {x2.dtype} with float64 input and parameters (silent downcast).")
    _assert_finite("float64 V", v)
    _assert_finite("float64 z", z)
    if not t.stochastic_forward:
        _assert_close("float64 V vs float32 V", v, v32, 1e-3, 1e-3)


def _attempt(call):
    """``(result, None)`` if ``call()`` returned, ``(None, exception)`` if it raised."""
    try:
        return call(), None
    except Exception as e:  # noqa: BLE001 - the caller judges what was raised
        return None, e


def _judge_error(cls, direction, shape, e) -> None:
    """Pass for a ``ValueError`` naming the layer ``cls`` (in its message or a note); raise
    ``AssertionError`` otherwise."""
    if not isinstance(e, ValueError):
        raise AssertionError(
            f"{direction} of a wrong-shape input {shape} raised {type(e).__name__}, "
            f"expected ValueError naming {cls}: {str(e)[:200]}"
        )
    if cls not in "\n".join([str(e), *getattr(e, "__notes__", ())]):  # a net's error, noted by the layer
        raise AssertionError(f"{direction} of a wrong-shape input {shape} raised ValueError without naming {cls}: {e}")


def _must_reject(t, direction, call, shape, hint="") -> None:
    """``call()`` must raise ``ValueError`` naming the layer."""
    cls = type(t).__name__
    _, e = _attempt(call)
    if e is None:
        raise AssertionError(
            f"{direction} accepted a wrong-shape input {shape}; expected ValueError naming {cls}{hint}."
        )
    _judge_error(cls, direction, shape, e)


def _reject_or_handle(b: Bound, direction: str, bad) -> None:
    """``bad`` (one more entry on the last axis) is refused with a ``ValueError`` naming the
    layer, or handled as a size-agnostic layer handles it (shapes and, for a bijection, values
    round-trip); anything else is a failure."""
    t, c, k = b.transform, b.context, b.key
    cls, shape, n = type(t).__name__, tuple(bad.shape), b.x.shape[0]
    bijection = not (t.stochastic_forward or t.stochastic_inverse)
    first = (lambda: _fwd(t, bad, k, c)) if direction == "forward" else (lambda: _inv(t, bad, k, c))
    out, e = _attempt(first)
    if e is not None:
        _judge_error(cls, direction, shape, e)
        return
    lead = f"{direction} accepted {shape} (one more entry on the last axis) as a size-agnostic layer, but"
    if direction == "forward":
        z, v = out
        if tuple(v.shape) != (n,) or z.ndim < 1 or z.shape[0] != n:
            raise AssertionError(
                f"{lead} gave z {tuple(z.shape)} and V {tuple(v.shape)} (expected batch {n}, V ({n},))."
            )
        back, e = _attempt(lambda: _inv(t, z, k, c))
        what, want = "inverse(forward(x'))", bad
    else:
        if out.ndim < 1 or out.shape[0] != n:
            raise AssertionError(f"{lead} gave x of shape {tuple(out.shape)} (expected batch {n}).")
        res, e = _attempt(lambda: _fwd(t, out, k, c))
        back, what, want = (None if e is not None else res[0]), "forward(inverse(z'))", bad
        if e is None and tuple(res[1].shape) != (n,):
            raise AssertionError(f"{lead} forward of its output gave V {tuple(res[1].shape)}, expected ({n},).")
    if e is not None:
        raise AssertionError(f"{lead} {what} raised {type(e).__name__}: {str(e)[:200]}")
    if tuple(back.shape) != shape:
        raise AssertionError(f"{lead} {what} has shape {tuple(back.shape)}, expected {shape}.")
    if bijection:
        _assert_close(f"{lead} {what} vs x'", back, want, b.case.rtol, b.case.atol)


def prop_bad_input(b: Bound) -> None:
    """Wrong shapes are refused with a ``ValueError`` naming the layer, in ``forward`` and ``inverse``.

    Always: an input with no batch axis (rank 0: ``x.reshape(-1)[0]``, and ``z.reshape(-1)[0]``
    for ``inverse``) must raise ``ValueError`` naming the layer. Then, per direction:

    - the case's ``bad_input``/``bad_latent`` if given: must raise ``ValueError`` naming the
      layer (strict);
    - otherwise the valid input with one more entry on the last axis: either refused the same
      way, or handled consistently, as by a layer that works on any size (elementwise maps):
      ``z`` keeps the batch size ``B`` and ``V`` is ``(B,)``, the other direction gives back
      the input's shape, and a bijection round-trips it within the case's tolerance.

    Any other exception (``TypeError``, ``IndexError``...) or a ``ValueError`` that does not
    name the layer (e.g. JAX's "Incompatible shapes for broadcasting") is a failure.
    """
    t, c, k = b.transform, b.context, b.key
    kx, kz = jax.random.split(k)
    z = _latent(b)
    hint = " (a layer must refuse an input without a batch axis)"
    scalar_x, scalar_z = jnp.reshape(b.x, (-1,))[0], jnp.reshape(z, (-1,))[0]
    _must_reject(t, "forward", lambda: _fwd(t, scalar_x, k, c), (), hint)
    _must_reject(t, "inverse", lambda: _inv(t, scalar_z, k, c), (), hint)
    if b.case.bad_input is not None:
        bad_x = b.case.bad_input(kx)
        _must_reject(t, "forward", lambda: _fwd(t, bad_x, k, c), tuple(bad_x.shape), " (the case's bad_input)")
    else:
        _reject_or_handle(b, "forward", _pad_last(b.x))
    if b.case.bad_latent is not None:
        bad_z = b.case.bad_latent(kz)
        _must_reject(t, "inverse", lambda: _inv(t, bad_z, k, c), tuple(bad_z.shape), " (the case's bad_latent)")
    else:
        _reject_or_handle(b, "inverse", _pad_last(z))
