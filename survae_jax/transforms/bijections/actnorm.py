"""``ActNorm`` and its explicit data-dependent initialisation ``initialize_actnorm``."""

from __future__ import annotations

import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.functional.compose import split_key
from survae_jax.functional.linear import actnorm_forward, actnorm_init, actnorm_inverse
from survae_jax.transforms.base import Array, Bijection, Transform


class ActNormInitialized(nnx.Variable):
    """State (not a ``Param``; saved) holding a bool: :func:`initialize_actnorm` has set the layer."""


class ActNorm(Bijection):
    """``z = (x - loc) exp(log_scale)``, ``x = z exp(-log_scale) + loc``, ``V = n sum(log_scale)``,
    with ``loc``, ``log_scale`` ``(num_features,)`` along ``axis`` and ``n`` the positions per
    feature (``H * W`` for ``(B, H, W, C)``, ``N`` for ``(B, N, 2)`` with ``axis=-1``).

    The identity until :func:`initialize_actnorm` sets ``loc`` to the per-feature mean and ``log_scale``
    to ``-log(std + eps)`` of a batch; the state ``initialized`` records it (restored: not redone).
    ``axis`` is counted with the batch axis (``-1``: channels; ``1``: the points of ``(B, N, 2)``);
    ``eps`` is added to the std. Source: Glow (Kingma & Dhariwal, 2018), Section 3.1; Appendix I.2.
    """

    functional = (actnorm_forward, actnorm_inverse)

    def __init__(self, num_features: int, *, axis: int = -1, eps: float = 1e-6, param_dtype=jnp.float32):
        if axis == 0:
            raise ValueError("ActNorm: axis 0 is the batch axis; normalise an event axis.")
        self.num_features, self.axis, self.eps = int(num_features), int(axis), float(eps)
        self.loc = nnx.Param(jnp.zeros((self.num_features,), param_dtype))
        self.log_scale = nnx.Param(jnp.zeros((self.num_features,), param_dtype))
        self.initialized = ActNormInitialized(jnp.array(False))

    def functional_args(self):
        return {"loc": self.loc[...], "log_scale": self.log_scale[...], "axis": self.axis, "name": self.name}

    def initialize(self, x: Array, *, keep_if_initialized: bool = False) -> None:
        """Set ``loc``, ``log_scale`` from the batch ``x`` (:func:`~survae_jax.functional.actnorm_init`)
        and mark initialised; with ``keep_if_initialized`` an initialised layer keeps its values
        (chosen by ``jnp.where``: the same under ``nnx.jit`` as eagerly)."""
        new = actnorm_init(x, axis=self.axis, eps=self.eps, num_features=self.num_features, name=self.name)
        keep = self.initialized[...] if keep_if_initialized else jnp.array(False)
        for var, value in zip((self.loc, self.log_scale), new):
            var[...] = jnp.where(keep, var[...], value.astype(var[...].dtype))
        self.initialized[...] = jnp.array(True)


def _chain(obj) -> tuple[list[Transform], object | None]:
    """The layers of ``obj`` (a Flow, a Compose, a sequence or one layer) and its base, if any."""
    if hasattr(obj, "transforms"):
        return list(obj.transforms), getattr(obj, "base", None)
    if isinstance(obj, Transform):
        return [obj], None
    if isinstance(obj, (Sequence, nnx.List)):
        return list(obj), None
    raise TypeError(
        f"initialize_actnorm: expected a Flow, a sequence of transforms or a transform, got {type(obj).__name__}."
    )


def initialize_actnorm(flow_or_transforms, x: Array, *, key: Array | None = None, context: Array | None = None):
    """Initialise every ``ActNorm`` on the data path from the batch ``x`` it receives; returns
    ``flow_or_transforms`` (a Flow, a sequence of layers or one layer), updated in place.

    ``x`` goes through the chain (X -> Z; into ``Compose`` and ``Scan`` layers and a ``Flow`` base) with
    ``key`` and ``context``. An initialised ActNorm (e.g. restored) keeps its values: idempotent,
    eagerly and under ``nnx.jit``. ActNorms off the path (inside a net) are not reached: a
    ``UserWarning`` counts the uninitialised ones. Source: Glow, Section 3.1.
    """
    if not _actnorms(flow_or_transforms):
        return flow_or_transforms  # nothing to initialise (any module, e.g. a model without ActNorm)
    _, reached = _walk(flow_or_transforms, x, key, context)
    off_path = [a for a in _actnorms(flow_or_transforms) if not any(a is r for r in reached)]
    if off_path:  # counted with jax.debug.callback: the same warning eagerly and under nnx.jit
        left = sum(jnp.logical_not(a.initialized[...]).astype(jnp.int32) for a in off_path)
        jax.debug.callback(_warn_off_path, left)
    return flow_or_transforms


def _warn_off_path(left) -> None:
    if int(left):
        warnings.warn(
            f"initialize_actnorm: {int(left)} ActNorm layer(s) off the data path (inside another "
            "layer's net or distribution) were not reached and stay the identity; initialise them "
            "with ActNorm.initialize(batch) on the batch they see.",
            stacklevel=2,
        )


def _actnorms(obj) -> list[ActNorm]:
    """Every ActNorm inside ``obj`` (a module, or a sequence of modules)."""
    roots = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    found = []
    for root in roots:
        if isinstance(root, nnx.Module):
            found += [m for _, m in nnx.iter_graph(root) if isinstance(m, ActNorm)]
    return found


def _walk(chain, x, key, context) -> tuple[Array, list[ActNorm]]:
    """Push ``x`` through ``chain`` (X -> Z, into Compose layers and a Flow base), initialising
    each ActNorm met; ``(z, the ActNorms met)``."""
    transforms, base = _chain(chain)
    if hasattr(chain, "_context"):  # ConditionalFlow embeds the context first
        context = chain._context(context)
    keys = [None] * (len(transforms) + 1) if key is None else list(jax.random.split(key, len(transforms) + 1))
    reached = []
    for t, k in zip(transforms, keys):
        if isinstance(t, ActNorm):
            t.initialize(x, keep_if_initialized=True)
            reached.append(t)
        if hasattr(t, "transforms"):
            x, inner = _walk(t, x, k, context)
            reached += inner
        elif hasattr(t, "unstack"):  # a Scan: block by block, with the keys of its forward
            blocks = t.unstack()
            for b, kb in zip(blocks, split_key(k, len(blocks))):
                x, _ = _walk(b, x, kb, context)
            t.restack(blocks)
            reached += _actnorms(t)
        else:
            x, _ = t.forward(x, key=k, context=context)
    if hasattr(base, "transforms") and hasattr(base, "base"):
        x, inner = _walk(base, x, keys[-1], context)
        reached += inner
    return x, reached
