"""``ActNorm`` and its explicit data-dependent initialisation ``initialize_actnorm``."""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.transforms.base import Array, Bijection, Transform


class ActNormInitialized(nnx.Variable):
    """State (not a trained parameter) holding whether an ``ActNorm`` has been initialised.

    Holds a scalar bool array, shape ``()``: ``False`` at construction, ``True`` once
    :func:`initialize_actnorm` has set ``loc`` and ``log_scale`` from data. An ``nnx.Variable``
    but not an ``nnx.Param``, so optimisers filtering on ``nnx.Param`` leave it alone, and it is
    saved and restored with the rest of the state (checkpoint round trips keep it).

    Raises: nothing of its own (a plain state container).

    Source: Glow (Kingma & Dhariwal, 2018), Section 3.1 (data-dependent initialisation).
    """


def _broadcast_shape(ndim: int, axis: int, n: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = n
    return tuple(shape)


class ActNorm(Bijection):
    """Activation normalisation: a per-feature affine map along one axis.

    Forward (X -> Z): ``z = (x - loc) * exp(log_scale)``, ``loc`` and ``log_scale`` of shape
    ``(num_features,)`` broadcast along ``axis``. V = ``(number of positions) * sum(log_scale)``
    nats, where the number of positions is the product of the event sizes other than ``axis``
    (``H * W`` for images ``(B, H, W, C)``, ``N`` for point clouds ``(B, N, 2)`` with
    ``axis=-1``). Inverse (Z -> X): ``x = z * exp(-log_scale) + loc``.

    Data-dependent initialisation is an explicit step, not a flag flipped on first call: run
    :func:`initialize_actnorm` once, outside ``jit``, on a batch of data; it sets ``loc`` to
    the per-feature mean and ``log_scale`` to ``-log(std + eps)`` so that ``z`` has zero mean
    and unit variance per feature, and sets the state ``initialized`` to ``True``. The flag is
    part of the module's state (``nnx.state``), so a checkpoint round trip (``nnx.split`` /
    ``nnx.merge``, orbax) keeps it and :func:`initialize_actnorm` does not run again. Before
    initialisation the layer is the identity (``loc = 0``, ``log_scale = 0``).

    Args:
      num_features: the length of ``axis``.
      axis: the feature axis, counted with the batch axis (``-1``: features of ``(B, D)``,
        channels of NHWC ``(B, H, W, C)``, coordinates of ``(B, N, 2)``; ``1``: the points of
        ``(B, N, 2)``). Not 0.
      eps: added to the standard deviation at initialisation (a constant feature would
        otherwise give ``log_scale = +inf``).
      param_dtype: dtype of the parameters (float32); the maths runs in the input's dtype.

    Raises:
      ValueError: rank < 2, a non-floating input, or ``axis`` of a length other than
        ``num_features``.

    Source: Glow (Kingma & Dhariwal, 2018), Section 3.1; Appendix I.2 (ActNorm between steps).
    """

    def __init__(self, num_features: int, *, axis: int = -1, eps: float = 1e-6, param_dtype=jnp.float32):
        if axis == 0:
            raise ValueError("ActNorm: axis 0 is the batch axis; normalise an event axis.")
        self.num_features = int(num_features)
        self.axis = int(axis)
        self.eps = float(eps)
        self.loc = nnx.Param(jnp.zeros((self.num_features,), param_dtype))
        self.log_scale = nnx.Param(jnp.zeros((self.num_features,), param_dtype))
        self.initialized = ActNormInitialized(jnp.array(False))

    def _axis(self, x: Array) -> int:
        self._check_input(x, min_ndim=2)
        axis = self.axis % x.ndim
        if axis == 0 or x.shape[axis] != self.num_features:
            raise ValueError(
                f"{self.name}: expected axis {self.axis} of length {self.num_features} (not the batch "
                f"axis), got input of shape {tuple(x.shape)}."
            )
        return axis

    def _params(self, x: Array, axis: int) -> tuple[Array, Array]:
        shape = _broadcast_shape(x.ndim, axis, self.num_features)
        return (self.loc[...].astype(x.dtype).reshape(shape),
                self.log_scale[...].astype(x.dtype).reshape(shape))

    def forward(self, x, *, key=None, context=None):
        axis = self._axis(x)
        loc, log_scale = self._params(x, axis)
        positions = math.prod(x.shape[1:]) // self.num_features
        v = positions * jnp.sum(log_scale)
        return (x - loc) * jnp.exp(log_scale), jnp.broadcast_to(v, (x.shape[0],))

    def inverse(self, z, *, key=None, context=None):
        axis = self._axis(z)
        loc, log_scale = self._params(z, axis)
        return z * jnp.exp(-log_scale) + loc

    def initialize(self, x: Array) -> None:
        """Set ``loc``, ``log_scale`` from the batch ``x`` and mark initialised (outside jit).

        Called by :func:`initialize_actnorm`; runs even when already initialised (the walk in
        :func:`initialize_actnorm` is the one that skips initialised layers).
        """
        axis = self._axis(x)
        reduce = tuple(i for i in range(x.ndim) if i != axis)
        mean = jnp.mean(x, axis=reduce)
        std = jnp.std(x, axis=reduce)
        self.loc[...] = mean.astype(self.loc[...].dtype)
        self.log_scale[...] = (-jnp.log(std + self.eps)).astype(self.log_scale[...].dtype)
        self.initialized[...] = jnp.array(True)


def _chain(obj) -> tuple[list[Transform], object | None]:
    """The transforms of ``obj`` (a Flow, a sequence or one transform) and its base, if a Flow."""
    if isinstance(obj, Transform):
        return [obj], None
    if hasattr(obj, "transforms") and hasattr(obj, "base"):
        return list(obj.transforms), obj.base
    if isinstance(obj, Sequence) or isinstance(obj, nnx.List):
        return list(obj), None
    raise TypeError(
        f"initialize_actnorm: expected a Flow, a sequence of transforms or a transform, got {type(obj).__name__}."
    )


def initialize_actnorm(flow_or_transforms, x: Array, *, key: Array | None = None, context: Array | None = None):
    """Data-dependent initialisation of every ``ActNorm`` on the data path, once, outside jit.

    Pushes the batch ``x`` ``(B, ...)`` through the chain in the forward direction (X -> Z);
    each :class:`ActNorm` met whose ``initialized`` state is ``False`` is initialised from the
    batch it receives (:meth:`ActNorm.initialize`), then the batch goes on through it. Layers
    already initialised (for instance restored from a checkpoint) are left unchanged, so the
    call is idempotent. When ``flow_or_transforms`` is a ``Flow`` whose base is itself a
    ``Flow``, the walk continues into the base. ActNorms hidden inside other layers' nets are
    not reached.

    Args:
      flow_or_transforms: a ``Flow``, a sequence of transforms, or one transform; updated in
        place (NNX modules are mutable outside jit).
      x: a batch of data ``(B, ...)``; use a large batch (the statistics are per feature).
      key: a PRNG key, needed when a layer before an ActNorm is stochastic.
      context: passed to every layer, as in ``Flow.forward``.

    Returns:
      ``flow_or_transforms``, initialised. An object without any ``ActNorm`` (any module) is
      returned unchanged, so a training loop can call this on every model.

    Warns:
      UserWarning: some ActNorm inside the object is off the data path (e.g. in a VAE encoder)
        and was left uninitialised.

    Raises:
      ValueError: called on traced values (inside ``jit``/``vmap``), or a layer's own checks.
      TypeError: an argument that is none of the accepted kinds.

    Source: Glow (Kingma & Dhariwal, 2018), Section 3.1 (data-dependent initialisation).
    """
    if isinstance(x, jax.core.Tracer):
        raise ValueError("initialize_actnorm: run it once outside jit/vmap, on a concrete batch.")
    if not _actnorms(flow_or_transforms):
        return flow_or_transforms  # nothing to initialise (any module, e.g. a model without ActNorm)
    _walk(flow_or_transforms, x, key, context)
    left = [a for a in _actnorms(flow_or_transforms) if not bool(a.initialized[...])]
    if left:
        warnings.warn(
            f"initialize_actnorm: {len(left)} ActNorm layer(s) off the data path (inside another "
            "layer's net or distribution) were not reached and stay the identity; initialise them "
            "with ActNorm.initialize(batch) on the batch they see.",
            stacklevel=2,
        )
    return flow_or_transforms


def _actnorms(obj) -> list[ActNorm]:
    """Every ActNorm inside ``obj`` (a module, or a sequence of modules)."""
    roots = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    found = []
    for root in roots:
        if isinstance(root, nnx.Module):
            found += [m for _, m in nnx.iter_graph(root) if isinstance(m, ActNorm)]
    return found


def _walk(flow_or_transforms, x, key, context) -> None:
    """Push ``x`` through the chain (X -> Z), initialising each uninitialised ActNorm met."""
    transforms, base = _chain(flow_or_transforms)
    if hasattr(flow_or_transforms, "_context"):  # ConditionalFlow embeds the context first
        context = flow_or_transforms._context(context)
    keys = [None] * len(transforms) if key is None else list(jax.random.split(key, len(transforms) + 1))
    for i, t in enumerate(transforms):
        if isinstance(t, ActNorm) and not bool(t.initialized[...]):
            t.initialize(x)
        x, _ = t.forward(x, key=keys[i], context=context)
    if base is not None and hasattr(base, "transforms") and hasattr(base, "base"):
        _walk(base, x, None if key is None else keys[-1], context)
