"""Linear and volume-preserving bijections (formulas: :class:`~survae_jax.transforms.ActNorm`,
``Conv1x1``, ``Permute``, ``Squeeze2d``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.functional.checks import check_tensor, event_axis

Array = jax.Array


def _per_example(v: Array, x: Array) -> Array:
    return jnp.broadcast_to(jnp.asarray(v, x.dtype), (x.shape[0],))


# ------------------------------------------------------------------ ActNorm
def _actnorm_params(x, loc, log_scale, axis, name):
    check_tensor(x, name, min_ndim=2)
    a = event_axis(x, axis, name, length=jnp.shape(loc)[0])
    shape = [1] * x.ndim
    shape[a] = -1
    return jnp.reshape(loc, shape).astype(x.dtype), jnp.reshape(log_scale, shape).astype(x.dtype)


def actnorm_forward(x, loc, log_scale, *, axis=-1, key=None, context=None, name="ActNorm"):
    """``(z, V)``: ``loc``, ``log_scale`` ``(C,)`` along ``axis`` of ``x`` ``(B, ..., C, ...)``."""
    loc, log_scale = _actnorm_params(x, loc, log_scale, axis, name)
    positions = math.prod(x.shape[1:]) // log_scale.size
    return (x - loc) * jnp.exp(log_scale), _per_example(positions * jnp.sum(log_scale), x)


def actnorm_inverse(z, loc, log_scale, *, axis=-1, key=None, context=None, name="ActNorm"):
    loc, log_scale = _actnorm_params(z, loc, log_scale, axis, name)
    return z * jnp.exp(-log_scale) + loc


def actnorm_init(x, *, axis=-1, eps=1e-6, num_features=None, name="ActNorm"):
    """Glow's data-dependent ``(loc, log_scale)``: the per-feature mean and ``-log(std + eps)``,
    so that ``z`` has zero mean and unit variance per feature on the batch ``x``."""
    check_tensor(x, name, min_ndim=2)
    a = event_axis(x, axis, name, length=num_features)
    reduce = tuple(i for i in range(x.ndim) if i != a)
    if x.size // x.shape[a] < 2:
        raise ValueError(f"{name}: data-dependent initialisation needs >= 2 values per feature to measure a spread, "
                         f"got a batch of shape {tuple(x.shape)} (features along axis {axis}).")
    return jnp.mean(x, axis=reduce), -jnp.log(jnp.std(x, axis=reduce) + eps)


# ------------------------------------------------------------------ 1x1 convolution
def _check_channels(x, weight, name):
    check_tensor(x, name, min_ndim=2)
    c = jnp.shape(weight)[-1]
    if x.shape[-1] != c:
        raise ValueError(f"{name}: expected input of shape (B, ..., {c}) (channels last), got {tuple(x.shape)}.")
    return jnp.asarray(weight).astype(x.dtype)


def conv1x1_forward(x, weight, log_det=None, *, key=None, context=None, name="Conv1x1"):
    """``(z, V)`` for ``x`` ``(B, ..., C)`` and ``weight`` ``(C, C)``; ``log_det``: ``log|det W|``
    if known (the LU form), else from ``slogdet``."""
    w = _check_channels(x, weight, name)
    log_det = jnp.linalg.slogdet(w)[1] if log_det is None else jnp.asarray(log_det, x.dtype)
    return jnp.einsum("ij,...j->...i", w, x), _per_example(math.prod(x.shape[1:-1]) * log_det, x)


def conv1x1_inverse(z, weight, log_det=None, *, key=None, context=None, name="Conv1x1"):
    return jnp.einsum("ij,...j->...i", jnp.linalg.inv(_check_channels(z, weight, name)), z)


def conv1x1_lu_weight(lower, upper, log_s, permutation, sign):
    """``(W, log|det W|)`` with ``W = P L (U + diag(sign exp(log_s)))``: ``P`` the row permutation
    ``(P M)[i] = M[permutation[i]]``, ``L`` unit lower triangular (from ``lower``), ``U`` strictly
    upper triangular (from ``upper``); ``log|det W| = sum(log_s)``."""
    eye = jnp.eye(jnp.shape(log_s)[0], dtype=jnp.result_type(log_s))
    upper = jnp.triu(upper, 1) + jnp.diag(jnp.asarray(sign, eye.dtype) * jnp.exp(log_s))
    return ((jnp.tril(lower, -1) + eye) @ upper)[jnp.asarray(permutation)], jnp.sum(log_s)


def conv1x1_lu_init(weight) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], tuple[float, ...]]:
    """``(lower, upper, log_s, permutation, sign)`` of a concrete invertible ``weight`` (float64 LU)."""
    p, l, u = (np.asarray(a, np.float64) for a in jax.scipy.linalg.lu(np.asarray(weight, np.float64)))
    s = np.diag(u)
    perm = tuple(int(i) for i in np.argmax(p, axis=1))
    return np.tril(l, -1), np.triu(u, 1), np.log(np.abs(s)), perm, tuple(float(v) for v in np.sign(s))


# ------------------------------------------------------------------ permutation, squeeze
def _perm_axis(x, permutation, axis, name):
    check_tensor(x, name, min_ndim=2)
    return event_axis(x, axis, name, length=len(permutation))


def permute_forward(x, permutation, *, axis=-1, key=None, context=None, name="Permute"):
    """``(take(x, permutation, axis), 0)``."""
    a = _perm_axis(x, permutation, axis, name)
    return jnp.take(x, jnp.asarray(permutation), axis=a), jnp.zeros((x.shape[0],), x.dtype)


def permute_inverse(z, permutation, *, axis=-1, key=None, context=None, name="Permute"):
    a = _perm_axis(z, permutation, axis, name)
    return jnp.take(z, jnp.argsort(jnp.asarray(permutation)), axis=a)


def squeeze2d_forward(x, factor=2, *, key=None, context=None, name="Squeeze2d"):
    """``(B, H, W, C) -> (B, H/f, W/f, C f^2)``, ``z[b, h, w, c f^2 + i f + j] = x[b, f h + i, f w + j, c]``."""
    f = int(factor)
    check_tensor(x, name, ndim=4)
    b, h, w, c = x.shape
    if h % f or w % f:
        raise ValueError(f"{name}: expected input (B, H, W, C) with H and W divisible by {f}, got {tuple(x.shape)}.")
    t = x.reshape(b, h // f, f, w // f, f, c).transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(b, h // f, w // f, c * f * f), jnp.zeros((b,), x.dtype)


def squeeze2d_inverse(z, factor=2, *, key=None, context=None, name="Squeeze2d"):
    """``(B, H, W, C f^2) -> (B, H f, W f, C)``."""
    f = int(factor)
    check_tensor(z, name, ndim=4)
    b, h, w, c = z.shape
    if c % (f * f):
        raise ValueError(f"{name}: expected latent (B, H, W, C) with C divisible by {f * f}, got {tuple(z.shape)}.")
    t = z.reshape(b, h, w, c // (f * f), f, f).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(b, h * f, w * f, c // (f * f))
