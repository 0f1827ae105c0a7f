"""Surjections written once: an inference surjection and the generic dual that gives Table 6.

A surjective operation is described by its fibres (Appendix B): ``split(x) -> (z, s)`` maps data
to the latent ``z = f(x)`` and the coordinate ``s`` of ``x`` on the fibre ``f^{-1}(z)`` (the sign
bits of abs, the argmax and the gaps of max, the permutation of sort, the dropped part of a
slice, the fractional part of rounding); ``merge(z, s) -> x`` puts them back together; a fibre
distribution ``p(s|z)`` says where on the fibre ``x`` lies; ``log_volume(z, s)`` is
``log|det d(z, s)/dx|`` (0 for abs, max, sort, slicing; ``D num_bits log 2`` for dequantization).

Inference surjection (Table 7), deterministic ``forward``:

- forward: ``(z, s) = split(x)``, ``V = log p(s|z) + log_volume``, exact (Appendix B, by the
  change of variables ``p(x) = p(z) p(s|z) |det d(z, s)/dx|``);
- inverse: ``s ~ p(s|z)``, ``x = merge(z, s)``; ``split(merge(z, s))[0] == z``.
Its generative dual (Table 6) swaps the roles, as ``Invert`` does for a bijection, and negates V:

- forward: ``s ~ q(s|x)``, ``z = merge(x, s)``, ``V = -log q(s|x) - log_volume``, a one-sample
  bound term (Appendix A, Eq. 4); with ``image_check``, ``V = -inf`` for an ``x`` outside the
  image of ``split`` (``p(x) = 0``: a negative ``x`` of abs or ReLU, an unsorted one of sort),
  found as ``split(x)[0] != x`` (exact for these three, whose ``split`` keeps an ``x`` of its
  image bit for bit);
- inverse: ``x = split(z)[0]``; ``inverse(forward(x)) == x``.

A fibre distribution has ``log_prob(s, *, context, key)``, ``sample(key, *, context)`` and
``sample_and_log_prob(key, *, context)``, one ``s`` per row of ``context`` (``z`` for ``p(s|z)``,
``x`` for ``q(s|x)``): the library's distributions and flows, or a plain object.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Surjective:
    """One surjective operation (see the module docstring); ``name`` words the errors, ``fibre``
    is the default ``p(s|z)``, ``log_volume=None`` means 0, ``check_latent(z)`` refuses a
    latent-side tensor of the wrong shape or dtype before a fibre is sampled for it, and
    ``image_check`` makes the dual give ``V = -inf`` where ``split(x)[0] != x``."""

    name: str
    split: Callable[[Array], tuple[Array, Any]]
    merge: Callable[[Array, Any], Array]
    fibre: Any
    log_volume: Callable[[Array, Any], Array] | None = None
    check_latent: Callable[[Array], None] | None = None
    image_check: bool = False

    def volume(self, z: Array, s: Any) -> Array | float:
        return 0.0 if self.log_volume is None else self.log_volume(z, s)

    def checked(self, z: Array) -> Array:
        return z if self.check_latent is None or self.check_latent(z) else z


def require_key(key: Array | None, where: str) -> Array:  # ``key``, or a ValueError naming ``where``
    if key is None:
        raise ValueError(f"{where} is stochastic and needs a PRNG key: call it with key=jax.random.key(...).")
    return key


def _promote(v: Array, like: Array) -> Array:  # promoted with a floating ``like``, never downcast
    return v.astype(jnp.result_type(v.dtype, like.dtype)) if jnp.issubdtype(like.dtype, jnp.floating) else v


class Fibre:
    """Base of the parameter-free fibres: subclasses give ``log_prob(s, *, context, key=None) -> (B,)``
    and ``sample(key, *, context)``; ``sample_and_log_prob`` comes from the two."""

    exact = True

    def sample_and_log_prob(self, key, *, context):
        return (s := self.sample(key, context=context)), self.log_prob(s, context=context)


def inference_forward(op: Surjective, x: Array, fibre=None, *, key=None, context=None):
    """``(z, V)`` with ``(z, s) = split(x)`` and ``V = log p(s|z) + log_volume`` (Table 7)."""
    fibre = op.fibre if fibre is None else fibre
    z, s = op.split(x)
    v = fibre.log_prob(s, context=z, key=key) + op.volume(z, s)
    return z, _promote(v, z)


def inference_inverse(op: Surjective, z: Array, fibre=None, *, key=None, context=None):
    """``x = merge(z, s)`` with ``s ~ p(s|z)`` drawn from ``key``."""
    key, fibre = require_key(key, f"{op.name}.inverse"), op.fibre if fibre is None else fibre
    return op.merge(z, fibre.sample(key, context=op.checked(z)))


def generative_forward(op: Surjective, x: Array, fibre=None, *, key=None, context=None):
    """``(z, V)`` with ``s ~ q(s|x)``, ``z = merge(x, s)``, ``V = -log q(s|x) - log_volume`` (Table 6),
    ``-inf`` where ``x`` is outside the image of ``split`` (``image_check``)."""
    key, fibre = require_key(key, f"{op.name}.forward"), op.fibre if fibre is None else fibre
    s, log_q = fibre.sample_and_log_prob(key, context=op.checked(x))
    z = op.merge(x, s)
    v = _promote(-(log_q + op.volume(x, s)), z)
    if op.image_check:
        v = jnp.where(jnp.all((op.split(x)[0] == x).reshape(x.shape[0], -1), axis=1), v, -jnp.inf)
    return z, v


def generative_inverse(op: Surjective, z: Array, fibre=None, *, key=None, context=None):
    """``x = split(z)[0]``: deterministic."""
    return op.split(z)[0]


def _named(forward, inverse, make_op, base: str | None, prefix: str, what: str):
    """Name the pair (``base``, else after ``make_op``: ``abs_surjection`` -> ``abs_forward``); document its config."""
    op_name = getattr(make_op, "__name__", None) or make_op.func.__name__
    config = ", ".join(str(p) for p in inspect.signature(make_op).parameters.values())
    for fn, direction in ((forward, "forward"), (inverse, "inverse")):
        fn.__name__ = fn.__qualname__ = f"{base or prefix + op_name.removesuffix('_surjection')}_{direction}"
        fn.__doc__ = f"{what} {direction} of :func:`{op_name}` (the maths); keyword config: ``{config}``."
    return forward, inverse


def inference_pair(make_op: Callable[..., Surjective], name: str | None = None):
    """The public pair ``(forward, inverse)`` of the inference surjection ``make_op(**config)``;
    both take ``(tensor, fibre=None, *, key=None, context=None, **config)``."""

    def forward(x, fibre=None, *, key=None, context=None, **config):
        return inference_forward(make_op(**config), x, fibre, key=key, context=context)

    def inverse(z, fibre=None, *, key=None, context=None, **config):
        return inference_inverse(make_op(**config), z, fibre, key=key, context=context)

    return _named(forward, inverse, make_op, name, "", "Inference surjection (Table 7):")


def generative_pair(make_op: Callable[..., Surjective], name: str | None = None):
    """The public pair ``(forward, inverse)`` of the generative dual of ``make_op(**config)``."""

    def forward(x, fibre=None, *, key=None, context=None, **config):
        return generative_forward(make_op(**config), x, fibre, key=key, context=context)

    def inverse(z, fibre=None, *, key=None, context=None, **config):
        return generative_inverse(make_op(**config), z, fibre, key=key, context=context)

    return _named(forward, inverse, make_op, name, "generative_", "Generative surjection (Table 6), the dual:")
