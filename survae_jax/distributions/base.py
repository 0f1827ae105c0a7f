"""The distribution protocol shared by base distributions, conditional distributions and flows."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array


def sum_except_batch(v: Array) -> Array:
    """Sum ``(B, ...)`` over every axis but the batch axis; returns ``(B,)`` (``B = 0`` too).

    The one reduction that turns per-element log-densities or log-Jacobians into a per-example
    value in nats (a distribution's ``log_prob``, a layer's ``V``).
    """
    return jnp.sum(v, axis=tuple(range(1, v.ndim)))


class Distribution(nnx.Module):
    """A (possibly conditional) distribution over batched tensors ``(B, *event_shape)``.

    Every distribution, every ``Flow`` included, follows this protocol, so that a flow can stand
    wherever a distribution can (base of another flow, encoder or decoder of a VAE, fibre
    distribution of a surjection). One context convention: every method takes ``context`` and an
    unconditional distribution ignores its values.

    - ``log_prob(x, *, context=None, key=None) -> (B,)`` nats; ``key`` is used only by flows
      with stochastic layers (a one-sample bound); exact distributions ignore it.
    - ``sample(key, num_samples=None, *, context=None) -> (B, *event_shape)``: ``num_samples``
      draws, or with ``context`` one draw per context row (``B = context.shape[0]``); a
      conditional distribution needs ``context``.
    - ``sample_and_log_prob(key, num_samples=None, *, context=None) -> (x, log_prob(x))``.

    ``exact``: whether ``log_prob`` is exact; ``conditional``: whether ``context`` is required.

    Source: Nielsen et al. (2020), Appendix H; the protocol of distrax ``Distribution``.
    """

    exact: ClassVar[bool] = True
    conditional: ClassVar[bool] = False

    def log_prob(self, x: Array, *, context: Array | None = None, key: Array | None = None) -> Array:
        raise NotImplementedError

    def sample(self, key: Array, num_samples: int | None = None, *, context: Array | None = None) -> Array:
        raise NotImplementedError

    def sample_and_log_prob(
        self, key: Array, num_samples: int | None = None, *, context: Array | None = None
    ) -> tuple[Array, Array]:
        """Draw ``x`` and return it with ``log_prob(x)``; shapes ``(B, *event)`` and ``(B,)``."""
        x = self.sample(key, num_samples, context=context)
        return x, self.log_prob(x, context=context)

    # ----------------------------------------------------------------- helpers
    @property
    def name(self) -> str:
        """The class name, used in error messages."""
        return type(self).__name__

    def _num_samples(self, num_samples: int | None, context: Array | None) -> int:
        """The number of draws: ``num_samples``, or one per ``context`` row; raise on a mismatch."""
        if context is None:
            if self.conditional:
                raise ValueError(f"{self.name} is conditional: sample(...) needs context=.")
            if num_samples is None:
                raise ValueError(f"{self.name}.sample needs num_samples (an int) or context=.")
            return int(num_samples)
        n = context.shape[0]
        if num_samples is not None and int(num_samples) != n:
            raise ValueError(
                f"{self.name}.sample: num_samples={num_samples} but context has batch size {n}; "
                "with context, one sample is drawn per context row."
            )
        return n

    def _check_event(self, x: Array, event_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` unless ``x`` has shape ``(B, *event_shape)``."""
        if tuple(x.shape[1:]) != tuple(event_shape) or x.ndim != len(event_shape) + 1:
            raise ValueError(
                f"{self.name}: expected x of shape (B, {', '.join(map(str, event_shape))}), got {tuple(x.shape)}."
            )
