"""Elementwise bijections ``z = f(x)``, ``V = sum over the event of log|f'(x)|``: fixed maps
(their pairs made by :func:`elementwise_pair`) and families with ``num_params`` parameters per
element given by a conditioner (:class:`ElementwiseFamily`: :class:`Affine`, :class:`Additive`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.distributions.base import sum_except_batch
from survae_jax.functional.checks import check_tensor

Array = jax.Array


def elementwise_pair(f: Callable, f_inv: Callable, log_df: Callable, name: str, log_df_z: Callable | None = None):
    """``forward(x, *params) -> (f(x), sum log|f'(x)|)``, ``inverse(z, *params) -> f_inv(z)`` from the
    entrywise ``f``, ``f_inv``, ``log_df``; parameters broadcast to the event shape and are promoted
    with the input (``jnp.result_type``). ``log_df_z(z) = log|f'(f_inv(z))|`` adds
    ``inverse.and_log_det(z) -> (x, V)``, V from the latent side (finite where ``x`` rounds onto an edge)."""

    def prepare(x, params, kwargs, layer):
        check_tensor(x, layer, min_ndim=1)
        event = tuple(x.shape[1:])
        for p in (*params, *kwargs.values()):
            try:
                ok = np.broadcast_shapes(jnp.shape(p), event) == event
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{layer}: its parameter of shape {jnp.shape(p)} does not broadcast to the event "
                                 f"shape {event} of input {tuple(x.shape)} (expected (B, ...) with such an event).")
        cast = lambda p: jnp.asarray(p).astype(jnp.result_type(x, *params, *kwargs.values()))
        return cast(x), [cast(p) for p in params], {k: cast(p) for k, p in kwargs.items()}

    def log_det(fn, x, params, kwargs):
        return sum_except_batch(jnp.broadcast_to(fn(x, *params, **kwargs), x.shape).astype(x.dtype))

    def forward(x, *params, key=None, context=None, name=name, **kwargs):
        x, params, kwargs = prepare(x, params, kwargs, name)
        return f(x, *params, **kwargs), log_det(log_df, x, params, kwargs)

    def inverse(z, *params, key=None, context=None, name=name, **kwargs):
        z, params, kwargs = prepare(z, params, kwargs, name)
        return f_inv(z, *params, **kwargs)

    def and_log_det(z, *params, key=None, context=None, name=name, **kwargs):
        z, params, kwargs = prepare(z, params, kwargs, name)
        return f_inv(z, *params, **kwargs), log_det(log_df_z, z, params, kwargs)

    forward.__name__, inverse.__name__ = f"{name.lower()}_forward", f"{name.lower()}_inverse"
    if log_df_z is not None:
        inverse.and_log_det = and_log_det
    return forward, inverse


# ruff: noqa: E731
_logit = lambda p: jnp.log(p) - jnp.log1p(-p)
_log_expm1_neg = lambda y: jnp.log(-jnp.expm1(-y))  # log(1 - e^{-y})
_softplus_inverse = lambda y: y + _log_expm1_neg(y)  # log(e^y - 1), no overflow for large y
_squeeze = lambda x, eps: eps + (1.0 - 2.0 * eps) * x
_log_sech2 = lambda x: 2.0 * (jnp.log(2.0) - x - jax.nn.softplus(-2.0 * x))  # log(1 - tanh(x)^2), finite
_log_sigmoid_dx = lambda x: -jax.nn.softplus(x) - jax.nn.softplus(-x)  # log sigmoid'(x)
_log_abs_scale = lambda x, scale: jnp.log(jnp.abs(scale))
_zero = lambda x, shift: jnp.zeros_like(x)

sigmoid_forward, sigmoid_inverse = elementwise_pair(
    jax.nn.sigmoid, _logit, _log_sigmoid_dx, "Sigmoid", lambda z: jnp.log(z) + jnp.log1p(-z))
logit_forward, logit_inverse = elementwise_pair(
    lambda x, eps=0.0: _logit(_squeeze(x, eps)),
    lambda z, eps=0.0: (jax.nn.sigmoid(z) - eps) / (1.0 - 2.0 * eps),
    lambda x, eps=0.0: jnp.log1p(-2.0 * eps) - jnp.log(_squeeze(x, eps)) - jnp.log1p(-_squeeze(x, eps)),
    "Logit", lambda z, eps=0.0: jnp.log1p(-2.0 * eps) - _log_sigmoid_dx(z))
softplus_forward, softplus_inverse = elementwise_pair(
    jax.nn.softplus, _softplus_inverse, lambda x: -jax.nn.softplus(-x), "Softplus", _log_expm1_neg)
softplus_inverse_forward, softplus_inverse_inverse = elementwise_pair(
    _softplus_inverse, jax.nn.softplus, lambda x: -_log_expm1_neg(x), "SoftplusInverse",
    lambda z: jax.nn.softplus(-z))
tanh_forward, tanh_inverse = elementwise_pair(jnp.tanh, jnp.arctanh, _log_sech2, "Tanh", lambda z: jnp.log1p(-z * z))
scale_forward, scale_inverse = elementwise_pair(
    lambda x, scale: x * scale, lambda z, scale: z / scale, _log_abs_scale, "Scale", _log_abs_scale)
shift_forward, shift_inverse = elementwise_pair(
    lambda x, shift: x + shift, lambda z, shift: z - shift, _zero, "Shift", _zero)


# ------------------------------------------------------------------ families (per-element parameters)
@dataclasses.dataclass(frozen=True)
class ElementwiseFamily:
    """Scalar bijections ``z = g(x; theta)``, ``num_params`` parameters per element (the flow
    literature's "transformer"): ``forward(x, theta) -> (z, log|dz/dx|)``, ``inverse(z, theta)``,
    entrywise, ``theta: x.shape + (num_params,)``. A frozen dataclass of settings (hashable, no
    arrays), so a module keeps it as a static attribute."""

    num_params: ClassVar[int] = 1

    def forward(self, x: Array, theta: Array) -> tuple[Array, Array]:
        raise NotImplementedError

    def inverse(self, z: Array, theta: Array) -> Array:
        raise NotImplementedError


# name -> (scale(s), log scale(s)); the log is written out so that "exp" never takes log(exp(s)).
SCALE_FNS: dict[str, tuple[Callable, Callable]] = {
    "exp": (jnp.exp, lambda s: s),
    "softplus": (jax.nn.softplus, lambda s: jnp.log(jax.nn.softplus(s))),
    "sigmoid": (lambda s: jax.nn.sigmoid(s + 2.0) + 1e-3, lambda s: jnp.log(jax.nn.sigmoid(s + 2.0) + 1e-3)),
    "tanh_exp": (lambda s: jnp.exp(2.0 * jnp.tanh(s / 2.0)), lambda s: 2.0 * jnp.tanh(s / 2.0)),
}


@dataclasses.dataclass(frozen=True)
class Affine(ElementwiseFamily):
    """``z = scale(s) x + t``, ``log|dz/dx| = log scale(s)``, ``theta = (s, t)``; ``x = (z - t) / scale(s)``.

    ``scale_fn`` (those of the reference code): ``"tanh_exp"`` ``exp(2 tanh(s / 2))`` (log-scale in
    (-2, 2); the default: it trains stably, where ``exp`` can overflow early in training);
    ``"exp"`` ``exp(s)`` (RealNVP, the paper's runs); ``"softplus"``; ``"sigmoid"`` ``sigmoid(s + 2)
    + 1e-3`` (Glow, scale in (0.001, 1.001)).
    """

    scale_fn: str = "tanh_exp"
    num_params: ClassVar[int] = 2

    def __post_init__(self):
        if self.scale_fn not in SCALE_FNS:
            raise ValueError(f"Affine: scale_fn must be one of {sorted(SCALE_FNS)}, got {self.scale_fn!r}.")

    def forward(self, x, theta):
        scale, log_scale = SCALE_FNS[self.scale_fn]
        return scale(theta[..., 0]) * x + theta[..., 1], log_scale(theta[..., 0])

    def inverse(self, z, theta):
        return (z - theta[..., 1]) / SCALE_FNS[self.scale_fn][0](theta[..., 0])


@dataclasses.dataclass(frozen=True)
class Additive(ElementwiseFamily):
    """``z = x + t``, ``log|dz/dx| = 0``, ``theta = (t,)`` (NICE); ``x = z - t``."""

    def forward(self, x, theta):
        return x + theta[..., 0], jnp.zeros_like(x)

    def inverse(self, z, theta):
        return z - theta[..., 0]


def elementwise_params(out: Array, shape: tuple[int, ...] | None, num_params: int, name: str, *,
                       what: str | None = None) -> Array:
    """A net's output as parameters ``(*shape, P)``: ``out`` of that shape, or ``(*shape[:-1],
    shape[-1] * P)`` in the reference code's *sequential* layout, ``theta[..., d, p] = out[..., d * P + p]``;
    ``shape=None``: any ``(..., D * P)``. ``what`` words the error."""
    p, got = int(num_params), tuple(jnp.shape(out))
    if shape is None:
        if not got or got[-1] % p:
            raise ValueError(f"{name}: expected a last axis that is a multiple of num_params={p}, got shape {got}.")
        shape = (*got[:-1], got[-1] // p)
    shape = tuple(shape)
    flat = (*shape[:-1], shape[-1] * p)
    if got == (*shape, p):
        return out
    if got == flat:
        return out.reshape(*shape, p)
    raise ValueError(
        f"{name}: {what or 'got an output of shape'} {got}; expected {flat} or {(*shape, p)} "
        f"({p} parameter(s) per transformed element)."
    )
