"""``MLP``: the fully connected conditioner of the 2-D experiments (Appendix H.4, Listing 1)."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.nn.init import check_init, dense_init

Array = jax.Array


class MLP(nnx.Module):
    """A multilayer perceptron ``(..., in_features) -> (..., out_features)``.

    ``h_0 = x``, ``h_{k+1} = activation(W_k h_k + b_k)`` for each hidden width, and a final
    linear layer without activation. Works on any leading shape, so it serves vectors
    ``(B, D)`` and per-point features of point clouds ``(B, N, 2)`` alike.

    Conditional use: ``mlp(x, context)`` concatenates ``context`` to ``x`` on the last axis
    first (so ``in_features`` counts both), which is how a conditional coupling calls its net.

    Args:
      in_features: size of the input's last axis (with the context's, if any).
      out_features: size of the output's last axis.
      hidden: the hidden widths, e.g. ``(200, 100)`` (the reference code's toy default).
      activation: an elementwise function, ``jax.nn.relu`` by default.
      zero_init_last: zero the last layer's weights and bias, so that the net outputs 0 at
        initialisation (a coupling then starts as the identity).
      init: the other layers' initial weights: ``"lecun"`` (Flax's default: lecun-normal
        weights, zero biases) or ``"uniform"`` (weights and biases ``U(+-1/sqrt(fan_in))``, as
        PyTorch's ``nn.Linear``; see :func:`survae_jax.nn.init.dense_init`).
      rngs: ``nnx.Rngs`` for the initial weights.

    Raises:
      ValueError: an input whose last axis is not ``in_features`` (after concatenating the
        context), or a context whose leading shape differs from ``x``'s.

    Parameters are float32; a float64 input is computed in float64 (the weights are promoted).
    Source: Nielsen et al. (2020), Appendix H.4, Listing 1 (``MLP(1, 2, hidden_units=[200, 100])``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (200, 100),
        activation: Callable[[Array], Array] = jax.nn.relu,
        *,
        zero_init_last: bool = False,
        init: str = "lecun",
        rngs: nnx.Rngs,
    ):
        check_init(init, "MLP")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        widths = [self.in_features, *(int(h) for h in hidden)]
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs, **dense_init(init, a, "MLP")) for a, b in zip(widths[:-1], widths[1:])]
        )
        last = dense_init(init, widths[-1], "MLP")
        if zero_init_last:
            last = dict(kernel_init=nnx.initializers.zeros_init(), bias_init=nnx.initializers.zeros_init())
        self.out = nnx.Linear(widths[-1], self.out_features, rngs=rngs, **last)

    def __call__(self, x: Array, context: Array | None = None) -> Array:
        """Apply the net to ``x`` ``(..., D)`` (and ``context`` ``(..., Dc)``); return ``(..., out_features)``."""
        if context is not None:
            if context.shape[:-1] != x.shape[:-1]:
                raise ValueError(
                    f"MLP: context must share x's leading shape {tuple(x.shape[:-1])}, "
                    f"got context of shape {tuple(context.shape)}."
                )
            x = jnp.concatenate([x, context.astype(x.dtype)], axis=-1)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"MLP: expected input of shape (..., {self.in_features}), got {tuple(x.shape)}."
            )
        h = x
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.out(h)
