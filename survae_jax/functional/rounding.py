"""Rounding (Tables 6 and 7, row "Rounding"; Appendix H.2) and dequantization, its dual.

``split(x) = (floor(x), u)``, ``u = x - floor(x)`` in ``[0, 1)``; ``merge(k, u) = k + u`` kept
below ``k + 1``. Default fibre ``u ~ U[0, 1)^D``, ``log p(u|k) = 0``.

- ``RoundingSurjection`` (inference): ``z = floor(x)``, ``V = log p(u|z)``, exact.
- Dequantization (generative, ``discrete=True``): integer data ``x``, ``u ~ q(u|x)`` with
  context ``x / 2^b``, ``z = (x + u) / 2^b`` (``b = num_bits``, 0 for none), ``V = -log q(u|x)
  - D b log 2`` (``log_volume = D b log 2``: ``u = 2^b z - x``); ``inverse: x = floor(2^b z)``.
  A row whose ``u`` leaves ``[0, 1]`` (or is NaN), or whose ``x`` lies outside ``[0, 2^b - 1]``
  (outside the integers exact in ``dtype`` without ``num_bits``), is off the fibre:
  ``p(x|z) = 0`` and ``V = -inf``, under ``jit`` or not.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from survae_jax.functional.checks import check_tensor
from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair
from survae_jax.functional.user import UserDistribution

Array = jax.Array


def add_below_next_integer(k: Array, u: Array) -> Array:
    """``k + u`` for integer-valued ``k`` and ``u`` in ``[0, 1]``, kept strictly below ``k + 1``.

    Trap: in float32 ``2 + (1 - 2**-24)`` rounds to ``3``, off the fibre ``[2, 3)`` of ``floor``;
    such sums become the largest float below ``k + 1``, so ``floor(k + u) == k``.
    """
    return jnp.minimum(k + u, jnp.nextafter(k + 1, k))


class UniformNoise(Fibre):
    """``u ~ U[0, 1)^D`` of the context's shape (dtype ``dtype`` or the context's), ``log p = 0``."""

    def __init__(self, dtype=None):
        self.dtype = dtype

    def log_prob(self, u, *, context, key=None):
        return jnp.zeros((u.shape[0],), u.dtype)

    def sample(self, key, *, context):
        return jax.random.uniform(key, context.shape, self.dtype or context.dtype)


def _rows(ok: Array) -> Array:
    return jnp.all(ok, axis=tuple(range(1, ok.ndim)))


class OnFibre(Fibre):
    """Dequantization's ``q(u|x)``: ``inner``, with ``log q = +inf`` (so ``V = -inf``) on rows
    where ``on_fibre(x, u)`` fails (``p(x|z) = 0`` there)."""

    def __init__(self, inner, on_fibre):
        self.inner, self.on_fibre, self.exact = inner, on_fibre, inner.exact

    def _mask(self, u, log_q, x):
        if tuple(u.shape) != tuple(x.shape):
            return log_q  # merge refuses u, naming the layer
        return jnp.where(self.on_fibre(x, u), log_q, jnp.inf)

    def log_prob(self, u, *, context, key=None):
        return self._mask(u, self.inner.log_prob(u, context=context, key=key), context)

    def sample(self, key, *, context):
        return self.inner.sample(key, context=context)

    def sample_and_log_prob(self, key, *, context):
        u, log_q = self.inner.sample_and_log_prob(key, context=context)
        return u, self._mask(u, log_q, context)


def rounding_surjection(dist=None, *, num_bits: int | None = None, dtype=None, discrete: bool = False,
                        name: str = "RoundingSurjection", role: str = "decoder") -> Surjective:
    """``floor`` on ``(B, ...)`` tensors; ``discrete``: the integer side has an integer dtype."""
    if num_bits is not None and not 1 <= int(num_bits) <= 24:
        raise ValueError(f"{name}: num_bits must be None or in 1..24, got {num_bits}.")
    if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{name}: dtype must be None or a floating dtype, got {dtype}.")
    bits = 0 if num_bits is None else int(num_bits)
    float_dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    hi = 2**bits - 1 if bits else 2 ** (jnp.finfo(float_dtype).nmant + 1) - 1
    lo = 0 if bits else -hi

    def check(t: Array, integers: bool, what: str) -> None:
        if not (integers and discrete):
            return check_tensor(t, name, min_ndim=2, what=what)
        if t.ndim < 2:
            raise ValueError(f"{name}: expected {what} of rank >= 2 (batch first), got shape {tuple(t.shape)}.")
        if not jnp.issubdtype(t.dtype, jnp.integer):
            raise ValueError(
                f"{name}: expected an integer input (discrete data), got dtype {t.dtype}; "
                "floats are already continuous, dequantize integers only."
            )

    def split(x):
        check(x, False, "latent" if discrete else "input")
        y = x * 2.0**bits if bits else x
        k = jnp.floor(y)
        u = jnp.minimum(y - k, jnp.nextafter(jnp.ones((), y.dtype), jnp.zeros((), y.dtype)))
        return (k.astype(jnp.int32) if discrete else k), u

    def merge(k, u):
        check(k, True, "input" if discrete else "latent")
        if tuple(u.shape) != tuple(k.shape):
            raise ValueError(f"{name}: expected the {role} sample of shape {tuple(k.shape)}, got {tuple(u.shape)}.")
        dt = jnp.result_type(float_dtype, u.dtype) if discrete else k.dtype
        y = add_below_next_integer(k.astype(dt), u.astype(dt))
        return y / 2.0**bits if bits else y

    def on_fibre(x, u):
        iinfo = jnp.iinfo(x.dtype)
        return _rows((u >= 0) & (u <= 1)) & _rows((x >= max(lo, iinfo.min)) & (x <= min(hi, iinfo.max)))

    def context(x):
        return x.astype(float_dtype) / 2.0**bits if bits else x.astype(float_dtype)

    if not discrete:
        fibre = UniformNoise() if dist is None else UserDistribution(dist, name, role)
        return Surjective(name, split, merge, fibre, check_latent=lambda z: check(z, False, "latent"))
    inner = UniformNoise(float_dtype) if dist is None else UserDistribution(dist, name, role, context)
    log_volume = lambda x, u: math.prod(u.shape[1:]) * bits * math.log(2.0)  # noqa: E731
    return Surjective(name, split, merge, OnFibre(inner, on_fibre), log_volume, lambda x: check(x, True, "input"))


rounding_forward, rounding_inverse = inference_pair(rounding_surjection)
dequantization_forward, dequantization_inverse = generative_pair(
    functools.partial(rounding_surjection, discrete=True, name="UniformDequantization", role="encoder"),
    "dequantization",
)
