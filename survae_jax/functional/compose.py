"""A chain of layers as one pure pair: ``V`` summed, one key per layer (Eq. 4 of the appendix)."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def split_key(key: Array | None, n: int) -> list[Array | None]:
    """``n`` independent keys from ``key`` (one per layer), or ``n`` Nones without a key."""
    return [None] * n if key is None else list(jax.random.split(key, n))


def _located(where: str, call):  # call(); a layer's ValueError re-raised saying where it sits
    try:
        return call()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e


def off_support(z: Array, dead: Array) -> tuple[Array, Array]:
    """Rows of ``z`` with a non-finite entry join ``dead`` (density 0); those entries become 0 and dead
    rows pass no gradient back: no inf reaches a net, no ``0 * inf`` a finite row's gradient."""
    if not jnp.issubdtype(z.dtype, jnp.inexact):
        return z, dead
    finite = jnp.isfinite(z)
    dead = dead | ~finite.all(axis=tuple(range(1, z.ndim)))
    clean = jnp.where(finite, z, jnp.zeros((), z.dtype))
    rows = dead.reshape((-1,) + (1,) * (z.ndim - 1))
    return jnp.where(rows, jax.lax.stop_gradient(clean), clean), dead


def compose_forward(x: Array, transforms: Sequence, *, key=None, context=None, name="compose_forward"):
    """``(z, V)``: ``x`` through every layer's ``forward`` (data side first), ``V = sum_l V_l``.
    A row whose latent leaves the reals (the edge of a layer's support) gets ``V = -inf`` and
    its non-finite entries 0 (:func:`off_support`): log-densities are finite or ``-inf``."""
    x = jnp.asarray(x)  # a NumPy float64 array must not ask for float64 with x64 off
    if x.ndim < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(x.shape)}.")
    total = jnp.zeros((x.shape[0],), x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)
    dead = jnp.zeros((x.shape[0],), bool)
    for i, (t, k) in enumerate(zip(transforms, split_key(key, len(transforms)))):
        x, v = _located(f"{name}: transforms[{i}] ({type(t).__name__})", lambda: t.forward(x, key=k, context=context))
        x, dead = off_support(x, dead | jnp.isnan(v))
        total = total + jnp.where(dead, 0.0, v)
    return x, jnp.where(dead, -jnp.inf, total)


def compose_inverse(z: Array, transforms: Sequence, *, key=None, context=None, name="compose_inverse") -> Array:
    """``x``: ``z`` through every layer's ``inverse``, latent side first (the same keys as forward)."""
    if jnp.ndim(z) < 1:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(jnp.shape(z))}.")
    keys = split_key(key, len(transforms))
    for i in reversed(range(len(transforms))):
        t, k = transforms[i], keys[i]
        z = _located(f"{name}: transforms[{i}] ({type(t).__name__})", lambda: t.inverse(z, key=k, context=context))
    return z


def compose_inverse_and_log_det(z: Array, transforms: Sequence, *, key=None, context=None, name=None):
    """``(x, V)``: ``compose_inverse`` summing each layer's ``inverse_and_log_det`` on the way."""
    keys, total = split_key(key, len(transforms)), jnp.zeros((jnp.shape(z)[0],), jnp.result_type(z, float))
    for i in reversed(range(len(transforms))):
        t, k = transforms[i], keys[i]
        z, v = _located(f"transforms[{i}] ({t.name})", lambda: t.inverse_and_log_det(z, key=k, context=context))
        total = total + v
    return z, total


compose_inverse.and_log_det = compose_inverse_and_log_det


def invert_forward(z: Array, bijection, *, key=None, context=None):
    """``(x, -V)`` with ``x = bijection.inverse(z)`` and ``V`` the bijection's ``log|det dz/dx|`` at ``x``."""
    where = f"Invert({type(bijection).__name__})"
    x = _located(where, lambda: bijection.inverse(z, key=key, context=context))
    return x, -_located(where, lambda: bijection.forward(x, key=key, context=context))[1]


def invert_inverse(x: Array, bijection, *, key=None, context=None) -> Array:  # bijection.forward(x)[0]
    return _located(f"Invert({type(bijection).__name__})", lambda: bijection.forward(x, key=key, context=context))[0]
