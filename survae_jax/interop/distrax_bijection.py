"""A distrax (or TFP, through distrax) bijector as a survae_jax ``Bijection`` (this module imports distrax).

distrax's ``forward`` maps latent to data (it samples: ``Transformed(base, b).sample =
b.forward(base.sample)``), survae_jax's ``forward`` maps data to latent. So the layer's
``forward`` is the bijector's inverse and its ``inverse`` is the bijector's forward:

    z, V = b.inverse_and_log_det(x)      V = log|det dz/dx|, summed over the event
    x    = b.forward(z)                  (and V = -b.forward_log_det_jacobian(z) on the latent side)
"""

from __future__ import annotations

from typing import Any

import distrax
import jax
import jax.numpy as jnp
from flax import nnx
from tensorflow_probability.substrates import jax as tfp

from survae_jax.distributions.base import sum_except_batch
from survae_jax.transforms.base import Bijection, Fixed

Array = jax.Array


class _Static:
    """A treedef or a builder kept as static module metadata, compared by identity (a distrax
    bijector's treedef holds lists and callables, which are not hashable)."""

    def __init__(self, value):
        self.value = value


def _call(name: str, what: str, fn, arg):
    """``fn(arg)``; a shape error inside the bijector re-raised naming the layer, and an output
    that changes the batch size or the number of elements (a parameter broadcast against a
    wrong-shape input) refused."""
    try:
        out = fn(arg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: the bijector's {what} failed on an input of shape {tuple(jnp.shape(arg))}: "
                         f"{type(e).__name__}: {e}") from e
    y = out[0] if isinstance(out, tuple) else out
    if jnp.ndim(y) < 1 or jnp.shape(y)[0] != arg.shape[0] or jnp.size(y) != arg.size:
        raise ValueError(f"{name}: the bijector's {what} mapped an input of shape {tuple(arg.shape)} to "
                         f"{tuple(jnp.shape(y))}; a bijection keeps the batch size and the number of elements "
                         "(is the event shape the one the bijector was built for?).")
    return out


def _v(name: str, log_det, y: Array, event_ndims: int) -> Array:
    """The log-det of ``y`` ``(B, ...)`` as ``V`` ``(B,)``: broadcast to the batch axes of ``y``
    (all but its last ``event_ndims``), then summed over all of them but the first."""
    batch = tuple(y.shape[: y.ndim - event_ndims])
    try:
        log_det = jnp.broadcast_to(log_det, batch)
    except ValueError as e:
        raise ValueError(f"{name}: the bijector's log-det has shape {tuple(jnp.shape(log_det))}, which does not "
                         f"broadcast to the batch axes {batch} of an input {tuple(y.shape)}.") from e
    return sum_except_batch(log_det)


def _check(name: str, x, event_ndims: int, side: str) -> Array:
    x = jnp.asarray(x)
    if x.ndim < event_ndims + 1:
        raise ValueError(f"{name}: expected {side} of shape (B, ...) with at least {event_ndims} event "
                         f"axes after the batch axis, got shape {tuple(x.shape)}.")
    return x


def distrax_forward(x: Array, bijector, *, key=None, context=None, name: str = "DistraxBijection"):
    """``(z, V)``: ``z, V = bijector.inverse_and_log_det(x)``, ``V`` summed over every axis of
    ``x`` but the batch axis (an elementwise bijector, ``event_ndims_in = 0``, gives a log-det per
    entry). ``x``: ``(B, *event)`` with at least ``event_ndims_out`` event axes."""
    x = _check(name, x, bijector.event_ndims_out, "x")
    z, log_det = _call(name, "inverse_and_log_det", bijector.inverse_and_log_det, x)
    return z, _v(name, log_det, x, bijector.event_ndims_out).astype(jnp.result_type(z, log_det))


def distrax_inverse(z: Array, bijector, *, key=None, context=None, name: str = "DistraxBijection") -> Array:
    """``x = bijector.forward(z)``."""
    z = _check(name, z, bijector.event_ndims_in, "z")
    return _call(name, "forward", bijector.forward, z)


def distrax_inverse_and_log_det(z: Array, bijector, *, key=None, context=None, name: str = "DistraxBijection"):
    """``(x, V)`` from the latent side: ``x, L = bijector.forward_and_log_det(z)``, ``V = -sum L``."""
    z = _check(name, z, bijector.event_ndims_in, "z")
    x, log_det = _call(name, "forward_and_log_det", bijector.forward_and_log_det, z)
    return x, -_v(name, log_det, z, bijector.event_ndims_in).astype(jnp.result_type(x, log_det))


distrax_inverse.and_log_det = distrax_inverse_and_log_det


class DistraxBijection(Bijection):
    """A distrax bijector ``b`` (or a TFP bijector, converted by ``distrax.as_bijector``) as a layer.

    ``forward``: ``z = b^{-1}(x)``, ``V = sum log|det d b^{-1}(x) / dx|`` (distrax's
    ``inverse_and_log_det``, summed over the event: a scalar bijector such as ``Tanh`` on ``(B,
    D)`` gives a log-det per entry, an ``event_ndims = 1`` one such as ``MaskedCoupling`` one per
    row); ``inverse``: ``x = b(z)``. Shapes: ``(B, *event)``, at least the bijector's event
    axes after the batch axis; any other shape the bijector accepts goes through.

    Two ways to hold ``b``:

    * ``DistraxBijection(b)``: ``b``'s arrays (the leaves of its pytree: shifts, scales, knots,
      and the arrays of an ``nnx`` conditioner) become fixed module state (saved by
      ``save_model``, cast by float64 checks, traced by ``jax.jit``), not ``nnx.Param``s:
      several bijectors keep derived arrays (``RationalQuadraticSpline``'s knot positions,
      ``ScalarAffine``'s ``1 / scale``) that must not be trained apart. Its Python settings and
      callables (a conditioner function, ``MaskedCoupling``'s inner bijector builder) stay as
      they are.
    * ``DistraxBijection(make, params)``: trainable. ``params`` (a pytree of arrays) becomes
      ``nnx.Param``s and ``b = make(params)`` is rebuilt on every call, so ``sj.train`` and
      ``jax.grad`` reach them, e.g. ``DistraxBijection(lambda p: distrax.RationalQuadraticSpline(
      p, -4.0, 4.0), jnp.zeros((2, 3 * 8 + 1)))``.

    Trap: a wrong shape reaches the bijector; its ``TypeError``/``ValueError`` is re-raised as
    a ``ValueError`` naming this layer, and so is an output whose batch size or number of
    elements differs from the input's (a ``(B, 1)`` input broadcast against ``(2,)``
    parameters). Values outside the bijector's domain give what it gives (NaN or ``inf``; a
    ``Flow`` turns a non-finite latent into ``log p = -inf``).

    Source: distrax ``Bijector`` (``forward_and_log_det``, ``inverse_and_log_det``,
    ``event_ndims_in``); distrax ``Inverse`` for the direction swap.
    """

    functional = (distrax_forward, distrax_inverse)

    def __init__(self, bijector, params: Any = None):
        if params is None:
            if callable(bijector) and not _is_bijector(bijector):
                raise TypeError(f"DistraxBijection: got the callable {bijector!r} without params; give a bijector, "
                                "or a builder and its params: DistraxBijection(make, params).")
            b = _as_bijector(bijector)
            leaves, treedef = jax.tree_util.tree_flatten(b)
            # floating arrays are state; integer leaves (e.g. a TFP Chain's event-ndims bookkeeping)
            # stay static, so that Python branches on them keep working under jit
            state = [jnp.issubdtype(jnp.result_type(a), jnp.inexact) for a in leaves]
            self.arrays = nnx.List([Fixed(jnp.asarray(a)) for a, keep in zip(leaves, state) if keep])
            self._tree = _Static((treedef, tuple(None if keep else a for a, keep in zip(leaves, state))))
            self._make = None
            self.label = type(b).__name__
        else:
            if not callable(bijector):
                raise TypeError(f"DistraxBijection: with params, the first argument must be a builder "
                                f"params -> bijector, got {type(bijector).__name__}.")
            leaves, treedef = jax.tree_util.tree_flatten(params)
            self.arrays = nnx.List([nnx.Param(jnp.asarray(a)) for a in leaves])
            self._tree = _Static((treedef, (None,) * len(leaves)))
            self._make = _Static(bijector)
            self.label = type(_as_bijector(bijector(params))).__name__

    @property
    def bijector(self):
        """The distrax bijector, rebuilt from the module's (possibly traced) arrays."""
        treedef, fixed = self._tree.value
        arrays = iter(a[...] for a in self.arrays)
        tree = jax.tree_util.tree_unflatten(treedef, [next(arrays) if f is None else f for f in fixed])
        return tree if self._make is None else _as_bijector(self._make.value(tree))

    def functional_args(self) -> dict:
        return {"bijector": self.bijector, "name": f"{self.name}({self.label})"}


def _is_bijector(b) -> bool:
    return isinstance(b, (distrax.Bijector, tfp.bijectors.Bijector))


def _as_bijector(b):
    if not _is_bijector(b):
        raise TypeError(f"DistraxBijection: expected a distrax or TFP bijector, got {type(b).__name__}.")
    return distrax.as_bijector(b)


def from_distrax(bijector, params: Any = None) -> DistraxBijection:
    """A distrax or TFP bijector as a survae_jax layer, directions converted (see :class:`DistraxBijection`).

    ``Flow(base, [..., from_distrax(b), ...])`` has ``log p(x) = log p_base(z) + log|det d b^{-1}(x)/dx| + ...``,
    so ``Flow(base, [from_distrax(b)]).log_prob`` equals ``distrax.Transformed(base, b).log_prob``.
    ``from_distrax(make, params)`` makes the bijector's parameters trainable.
    """
    return DistraxBijection(bijector, params)
