"""Conditional distributions whose parameters come from a net applied to the context.

These are the ``q(s|x)``, ``p(k|z)``, ``q(z2|x)`` of the surjections (Tables 6 and 7 of the
SurVAE appendix) and the encoder/decoder of a VAE layer (Appendix H.1).
"""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp

from survae_jax.distributions.base import Array, Distribution, sum_except_batch


def _require_context(dist: Distribution, context: Array | None) -> Array:
    if context is None:
        raise ValueError(f"{dist.name} is conditional and needs context= (a (B, ...) tensor).")
    return context


class ConditionalNormal(Distribution):
    """Diagonal normal ``N(mu(c), diag(sigma(c)^2))`` with ``(mu, log sigma)`` from ``net(c)``.

    ``net`` maps the context ``(B, ...)`` to ``(B, *event_shape[:-1], 2 * D_last)``; the last
    axis is split in half into the mean and the log-scale. Log-density in nats, summed over the
    event.

    Args:
      net: a callable (usually an ``nnx.Module``) from context to parameters.

    Raises:
      ValueError: no context, or ``x`` whose shape differs from the mean's.

    Source: the amortised Gaussian encoder/decoder of a VAE (Kingma & Welling, 2014), used as
    ``q(z|x)``/``p(x|z)`` in Appendix H.1 and as ``q(z2|x)`` of ``Augment`` (Appendix H.3).
    """

    conditional = True

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def params(self, context: Array) -> tuple[Array, Array]:
        """Return ``(mean, log_scale)``, each ``(B, *event_shape)``, for ``context``."""
        out = self.net(_require_context(self, context))
        if out.shape[-1] % 2:
            raise ValueError(
                f"{self.name}: the net's last axis must hold 2 * D values (mean, log-scale), got {out.shape}."
            )
        mean, log_scale = jnp.split(out, 2, axis=-1)
        return mean, log_scale

    def log_prob(self, x, *, context=None, key=None):
        mean, log_scale = self.params(context)
        if x.shape != mean.shape:
            raise ValueError(f"{self.name}: expected x of shape {mean.shape}, got {x.shape}.")
        return sum_except_batch(distrax.Normal(mean, jnp.exp(log_scale)).log_prob(x))

    def sample(self, key, num_samples=None, *, context=None):
        self._num_samples(num_samples, _require_context(self, context))
        mean, log_scale = self.params(context)
        return mean + jnp.exp(log_scale) * jax.random.normal(key, mean.shape, mean.dtype)

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        self._num_samples(num_samples, _require_context(self, context))
        mean, log_scale = self.params(context)
        x = mean + jnp.exp(log_scale) * jax.random.normal(key, mean.shape, mean.dtype)
        return x, sum_except_batch(distrax.Normal(mean, jnp.exp(log_scale)).log_prob(x))


class _ConditionalLogits(Distribution):
    """A conditional distribution over discrete values with logits ``net(context)``.

    Subclasses name the distrax family and how many trailing logit axes are not event axes.
    """

    conditional = True
    _family = None
    _class_axes = 0

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def logits(self, context: Array) -> Array:
        """Return the logits for ``context`` (shape: see the class docstring)."""
        return self.net(_require_context(self, context))

    def log_prob(self, x, *, context=None, key=None):
        logits = self.logits(context)
        expected = logits.shape[: logits.ndim - self._class_axes]
        if x.shape != expected:
            raise ValueError(f"{self.name}: expected x of shape {expected}, got {x.shape}.")
        return sum_except_batch(type(self)._family(logits=logits).log_prob(x))

    def sample(self, key, num_samples=None, *, context=None):
        self._num_samples(num_samples, _require_context(self, context))
        return type(self)._family(logits=self.logits(context)).sample(seed=key)


class ConditionalBernoulli(_ConditionalLogits):
    """Bernoulli over ``{0, 1}^D`` with logits ``net(c)`` of shape ``(B, *event_shape)``.

    ``log p(x|c) = sum x * log sigmoid(l) + (1 - x) * log sigmoid(-l)`` in nats, summed over the
    event. Samples are integers (``int32``).

    Args:
      net: a callable (usually an ``nnx.Module``) from context ``(B, ...)`` to logits.

    Raises:
      ValueError: no context, or ``x`` whose shape differs from the logits'.

    Source: the learned sign classifier ``p(s|z)`` / ``q(s|x)`` of the abs surjections,
    Appendix D and I.1 (anti-symmetric AbsFlow).
    """

    _family = distrax.Bernoulli
    _class_axes = 0


class ConditionalCategorical(_ConditionalLogits):
    """Categorical over ``{0, ..., K-1}`` per element, logits ``net(c)`` of shape ``(B, *event, K)``.

    ``log p(x|c) = sum log_softmax(l)[x]`` in nats, summed over the event; samples are integers
    ``(B, *event)``.

    Args:
      net: a callable (usually an ``nnx.Module``) from context ``(B, ...)`` to logits.

    Raises:
      ValueError: no context, or ``x`` whose shape is not the logits' shape without ``K``.

    Source: the learned index classifier ``p(k|z)`` / ``q(k|x)`` of the max surjections,
    Appendix E.
    """

    _family = distrax.Categorical
    _class_axes = 1
