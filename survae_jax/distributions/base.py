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

    Every distribution of the library, every ``Flow`` included, follows this protocol, so that a
    flow can stand wherever a distribution can: as the base of another flow, the encoder or
    decoder of a :class:`~survae_jax.transforms.VAE`, or the ``q(z2|x)`` of an ``Augment``.

    Methods:
      log_prob(x, *, context=None, key=None) -> ``(B,)`` log-density in nats.
      sample(key, num_samples=None, *, context=None) -> ``(B, *event_shape)``; an
        unconditional distribution needs ``num_samples``; a conditional one draws one sample
        per row of ``context`` (``num_samples`` must then be ``None`` or ``context.shape[0]``).
      sample_and_log_prob(key, num_samples=None, *, context=None) -> ``(x, log_prob)``.

    ``key`` in ``log_prob`` is accepted by every distribution so that flows with stochastic
    layers (whose ``log_prob`` is a one-sample bound) share the protocol; exact distributions
    ignore it. Class attribute ``exact`` tells whether ``log_prob`` is exact.

    Raises (every subclass):
      ValueError: ``x`` whose shape is not ``(B, *event_shape)``; ``sample`` without
        ``num_samples`` (unconditional) or without ``context`` (conditional), or a
        ``num_samples`` that disagrees with ``context.shape[0]``.

    Source: Nielsen et al. (2020), Appendix H ("distributions and flows are interchangeable");
    the protocol of distrax ``Distribution`` (``log_prob``, ``sample``, ``sample_and_log_prob``).
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
        """Resolve the number of draws from ``num_samples`` and ``context``; raise on a mismatch."""
        if context is None:
            if self.conditional:
                raise ValueError(f"{self.name} is conditional: sample(...) needs context=.")
            if num_samples is None:
                raise ValueError(f"{self.name}.sample needs num_samples (an int).")
            return int(num_samples)
        n = context.shape[0]
        if num_samples is not None and int(num_samples) != n:
            raise ValueError(
                f"{self.name}.sample: num_samples={num_samples} but context has batch size {n}; "
                "a conditional distribution draws one sample per context row."
            )
        return n

    def _check_event(self, x: Array, event_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` unless ``x`` has shape ``(B, *event_shape)``."""
        if tuple(x.shape[1:]) != tuple(event_shape) or x.ndim != len(event_shape) + 1:
            raise ValueError(
                f"{self.name}: expected x of shape (B, {', '.join(map(str, event_shape))}), got {tuple(x.shape)}."
            )
