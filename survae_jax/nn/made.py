"""``MADE``: the masked autoencoder conditioner of autoregressive flows, and its ``MaskedDense`` layer."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.nn.init import check_init, dense_init
from survae_jax.transforms.base import Fixed

Array = jax.Array


class MaskedDense(nnx.Module):
    """A dense layer whose kernel is multiplied by a fixed 0/1 mask: ``y = x (W * M) + b``.

    ``x``: ``(..., in_features)``, ``y``: ``(..., out_features)``; ``M[i, k] = 1`` connects input
    ``i`` to output ``k``. ``M`` is saved with the model (a :class:`~survae_jax.transforms.base.Fixed`
    array, never trained); a masked-out weight gets a zero gradient. Float32 parameters; a float64
    input is computed in float64.

    Args:
      in_features, out_features: sizes of the input's and the output's last axis.
      mask: ``(in_features, out_features)``, booleans or 0/1.
      use_bias: add ``b``.
      kernel_init, bias_init: initialisers of ``W`` (default lecun normal, as ``nnx.Linear``)
        and ``b`` (default zeros).
      rngs: ``nnx.Rngs`` for the initial weights.

    Source: Germain et al. (2015), MADE (masked weights ``W * M``).
    """

    def __init__(self, in_features: int, out_features: int, mask, *, use_bias: bool = True,
                 kernel_init: Callable | None = None, bias_init: Callable | None = None, rngs: nnx.Rngs):
        self.in_features, self.out_features = int(in_features), int(out_features)
        mask = np.asarray(mask)
        if mask.shape != (self.in_features, self.out_features):
            raise ValueError(f"MaskedDense: expected a mask of shape {(self.in_features, self.out_features)}, "
                             f"got {mask.shape}.")
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("MaskedDense: the mask must hold only 0/1 or booleans.")
        kernel_init = kernel_init or nnx.initializers.lecun_normal()
        bias_init = bias_init or nnx.initializers.zeros_init()
        self.kernel = nnx.Param(kernel_init(rngs.params(), (self.in_features, self.out_features), jnp.float32))
        self.bias = nnx.Param(bias_init(rngs.params(), (self.out_features,), jnp.float32)) if use_bias else None
        self.mask = Fixed(jnp.asarray(mask, bool))

    def __call__(self, x: Array) -> Array:
        if jnp.ndim(x) < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"MaskedDense: expected input of shape (..., {self.in_features}), "
                             f"got {tuple(jnp.shape(x))}.")
        dtype = jnp.result_type(x, self.kernel[...])
        w = jnp.where(self.mask[...], self.kernel[...], 0).astype(dtype)
        y = x.astype(dtype) @ w
        return y if self.bias is None else y + self.bias[...].astype(dtype)


def made_degrees(features: int, hidden: Sequence[int], order=None) -> list[np.ndarray]:
    """The MADE degrees: ``[m_in (D,), m_1 (H_1,), ...]``, ``m_in[d] = order[d] + 1`` (1..D) and
    hidden unit ``k`` of every layer ``(k mod max(D - 1, 1)) + 1`` (1..D-1, cycled, so each hidden
    degree is used and no unit is dead); ``order=None``: ``0, 1, ..., D - 1`` (natural).

    Source: Germain et al. (2015), MADE (degrees); the cyclic hidden degrees are the "sequential"
    assignment of the MAF code (Papamakarios et al. 2017).
    """
    d = int(features)
    if d < 1:
        raise ValueError(f"MADE: features must be >= 1, got {features}.")
    order = np.arange(d) if order is None else np.asarray(order)
    if order.shape != (d,) or sorted(order.tolist()) != list(range(d)):
        raise ValueError(f"MADE: order must be a permutation of range({d}), got {np.asarray(order).tolist()}.")
    degrees = [order.astype(np.int64) + 1]
    for h in hidden:
        if int(h) < 1:
            raise ValueError(f"MADE: hidden widths must be >= 1, got {tuple(hidden)}.")
        degrees.append(np.arange(int(h)) % max(d - 1, 1) + 1)
    return degrees


class MADE(nnx.Module):
    """Masked autoencoder: ``(..., D) -> (..., D, P)`` parameters, each row autoregressive.

    With ranks ``order`` (a permutation of ``0..D-1``; natural ``0, 1, ..., D - 1`` by default),
    ``out[..., d, :]`` depends only on the inputs ``x_j`` with ``order[j] < order[d]`` (the first
    one in the order, ``order[d] = 0``, on none: its output is a learned constant, plus the
    context term), so the Jacobian ``d out[..., d, p] / d x_j`` is strictly lower triangular
    after sorting both axes by ``order``. Degrees (:func:`made_degrees`): input ``d`` has
    ``m(d) = order[d] + 1``; hidden units ``1..D-1`` cycled; a hidden unit ``k`` sees unit ``j``
    of the layer below when ``m(k) >= m(j)``, output ``(d, p)`` sees hidden unit ``j`` when
    ``order[d] + 1 > m(j)``.

    ``h_1 = act(x (W_1 * M_1) + c V_1 + b_1)``, ``h_{l+1} = act(h_l (W_{l+1} * M_{l+1}) + b_{l+1})``,
    ``out = h_L (W_o * M_o) + c V_o + b_o``, reshaped from ``(..., D * P)`` (unit ``d * P + p``,
    the sequential layout) to ``(..., D, P)``. The context ``c`` ``(..., context_features)`` enters
    the first layer's units (hence every hidden unit) and the outputs through the unmasked ``V_1``
    and ``V_o``. Trap: without ``V_o`` the first output in the order, which sees no hidden unit,
    would ignore the context (the conditional density of that entry would not be conditional).

    Args:
      features: ``D``.
      hidden: hidden widths, e.g. ``(512, 512)``; a width below ``D - 1`` leaves some degrees out
        (still autoregressive, fewer connections); ``()`` is one masked linear map.
      num_params: ``P``, parameters per element (``family.num_params``).
      order: the ranks above, or ``None`` (natural).
      context_features: size of the context's last axis; ``None``: unconditional.
      activation: elementwise, ``jax.nn.relu`` by default.
      zero_init_last: zero the output layer, so the net outputs 0 at initialisation (an affine
        autoregressive layer then starts as the identity).
      init: the other weights' initialisation, ``"lecun"`` or ``"uniform"`` (as ``MLP``;
        ``fan_in`` counts masked inputs too, as PyTorch's masked layers do).
      rngs: ``nnx.Rngs`` for the initial weights.

    Call ``made(x)`` or ``made(x, context)``; a missing or unexpected context, or a last axis
    other than ``D``, raises ``ValueError`` naming ``MADE``.

    Source: Germain et al. (2015), MADE; Papamakarios et al. (2017), MAF (conditional MADE,
    Section 3.4).
    """

    def __init__(self, features: int, hidden: Sequence[int], num_params: int, *, order=None,
                 context_features: int | None = None, activation: Callable[[Array], Array] = jax.nn.relu,
                 zero_init_last: bool = False, init: str = "lecun", rngs: nnx.Rngs):
        check_init(init, "MADE")
        if int(num_params) < 1:
            raise ValueError(f"MADE: num_params must be >= 1, got {num_params}.")
        if context_features is not None and int(context_features) < 1:
            raise ValueError(f"MADE: context_features must be >= 1 or None, got {context_features}.")
        self.features, self.num_params = int(features), int(num_params)
        self.context_features = None if context_features is None else int(context_features)
        self.activation = activation
        degrees = made_degrees(self.features, tuple(hidden), order)
        self.order = Fixed(jnp.asarray(degrees[0] - 1, jnp.int32))
        out_degrees = np.repeat(degrees[0], self.num_params)  # unit d * P + p has degree order[d] + 1
        layers = []
        for below, above in zip(degrees[:-1], degrees[1:]):
            layers.append(MaskedDense(len(below), len(above), above[None, :] >= below[:, None], rngs=rngs,
                                      **dense_init(init, len(below), "MADE")))
        self.hidden = nnx.List(layers)
        last = dense_init(init, len(degrees[-1]), "MADE")
        if zero_init_last:
            last = dict(kernel_init=nnx.initializers.zeros_init(), bias_init=nnx.initializers.zeros_init())
        self.out = MaskedDense(len(degrees[-1]), len(out_degrees), out_degrees[None, :] > degrees[-1][:, None],
                               rngs=rngs, **last)
        context_hidden = context_out = None
        if self.context_features is not None:
            context_init = dense_init(init, self.context_features, "MADE")
            context_init = {k: v for k, v in context_init.items() if k == "kernel_init"}  # no biases
            if len(degrees) > 1:
                context_hidden = nnx.Linear(self.context_features, len(degrees[1]), use_bias=False, rngs=rngs,
                                            **context_init)
            context_out = nnx.Linear(self.context_features, len(out_degrees), use_bias=False, rngs=rngs,
                                     **(dict(kernel_init=last["kernel_init"]) if zero_init_last else context_init))
        self.context_hidden, self.context_out = nnx.data(context_hidden), nnx.data(context_out)

    def __call__(self, x: Array, context: Array | None = None) -> Array:
        """``(..., D)`` (and ``context`` ``(..., context_features)``) -> ``(..., D, P)``."""
        if jnp.ndim(x) < 1 or x.shape[-1] != self.features:
            raise ValueError(f"MADE: expected input of shape (..., {self.features}), got {tuple(jnp.shape(x))}.")
        if (context is None) != (self.context_features is None):
            want = "no context" if self.context_features is None else f"a context (..., {self.context_features})"
            raise ValueError(f"MADE: expected {want}, got {'none' if context is None else tuple(context.shape)}.")
        extra = {}
        if context is not None:
            if jnp.ndim(context) < 1 or context.shape[:-1] != x.shape[:-1] \
                    or context.shape[-1] != self.context_features:
                raise ValueError(f"MADE: expected a context of shape {(*x.shape[:-1], self.context_features)}, "
                                 f"got {tuple(jnp.shape(context))}.")
            for i, lin in ((0, self.context_hidden), (len(self.hidden), self.context_out)):
                if lin is not None:
                    dtype = jnp.result_type(x, context, lin.kernel[...])
                    extra[i] = context.astype(dtype) @ lin.kernel[...].astype(dtype)
        layers = [*self.hidden, self.out]
        h = x
        for i, layer in enumerate(layers):
            h = layer(h)
            if i in extra:
                h = h + extra[i]
            if i < len(layers) - 1:
                h = self.activation(h)
        return h.reshape(*h.shape[:-1], self.features, self.num_params)
