"""Conditional distributions whose parameters come from a net applied to the context.

These are the ``q(s|x)``, ``p(k|z)``, ``q(z2|x)`` of the surjections (Tables 6 and 7 of the
SurVAE appendix) and the encoder/decoder of a VAE layer (Appendix H.1).

Sample shapes (the convention of distrax and FlowJAX: the sample axis first): with a context
``c`` of shape ``(B, ...)``, ``sample(key, context=c)`` draws one sample per context row,
``(B, *event)``; ``sample(key, n, context=c)`` draws ``n`` per row, ``(n, B, *event)``, and
``sample_and_log_prob`` then returns log-densities ``(n, B)``. ``mean(context=c)`` and
``mode(context=c)`` are ``(B, *event)`` (e.g. the decoder means of a VAE's image figure).
"""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.distributions.base import Array, Distribution, sum_except_batch


def _require_context(dist: Distribution, context: Array | None) -> Array:
    if context is None:
        raise ValueError(f"{dist.name} is conditional and needs context= (a (B, ...) tensor).")
    return context


def _sample_shape(dist: Distribution, num_samples: int | None) -> tuple[int, ...]:
    """``()`` for one sample per context row, ``(n,)`` for ``n`` per row; raise for a bad ``n``."""
    if num_samples is None:
        return ()
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(
            f"{dist.name}.sample: num_samples must be None (one sample per context row) or an int >= 1 "
            f"(that many per row, shape (n, B, *event)), got {num_samples!r}."
        )
    return (int(num_samples),)


def _sum_event(v: Array, lead: int) -> Array:
    """Sum a per-element log-density over the event axes (every axis from ``lead`` on)."""
    return jnp.sum(v, axis=tuple(range(lead, v.ndim)))


class ConditionalNormal(Distribution):
    """Diagonal normal ``N(mu(c), diag(sigma(c)^2))`` with ``(mu, log sigma)`` from ``net(c)``.

    ``net`` maps the context ``(B, ...)`` to ``(B, *event_shape[:-1], 2 * D_last)``; the last
    axis is split in half into the mean and the log-scale. Log-density in nats, summed over the
    event.

    Args:
      net: a callable (usually an ``nnx.Module``) from context to parameters.

    ``mean(context=c)`` and ``mode(context=c)`` are ``mu(c)``; ``sample(key, n, context=c)`` is
    ``(n, B, *event)`` (see the module docstring).

    Raises:
      ValueError: no context, ``x`` whose shape differs from the mean's, or ``num_samples``
        that is neither ``None`` nor an int >= 1.

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

    def mean(self, *, context=None) -> Array:
        """``mu(c)`` ``(B, *event_shape)``."""
        return self.params(context)[0]

    def mode(self, *, context=None) -> Array:
        """The mode of a normal is its mean, ``mu(c)`` ``(B, *event_shape)``."""
        return self.mean(context=context)

    def sample(self, key, num_samples=None, *, context=None):
        return self.sample_and_log_prob(key, num_samples, context=context)[0]

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        shape = _sample_shape(self, num_samples)
        mean, log_scale = self.params(context)
        x = mean + jnp.exp(log_scale) * jax.random.normal(key, shape + mean.shape, mean.dtype)
        return x, _sum_event(distrax.Normal(mean, jnp.exp(log_scale)).log_prob(x), 1 + len(shape))


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
        shape = _sample_shape(self, num_samples)
        return type(self)._family(logits=self.logits(context)).sample(seed=key, sample_shape=shape)

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        shape = _sample_shape(self, num_samples)
        dist = type(self)._family(logits=self.logits(context))
        x = dist.sample(seed=key, sample_shape=shape)
        return x, _sum_event(dist.log_prob(x), 1 + len(shape))


class ConditionalBernoulli(_ConditionalLogits):
    """Bernoulli over ``{0, 1}^D`` with logits ``net(c)`` of shape ``(B, *event_shape)``.

    ``log p(x|c) = sum x * log sigmoid(l) + (1 - x) * log sigmoid(-l)`` in nats, summed over the
    event. Samples are integers (``int32``), ``(B, *event)`` or ``(n, B, *event)`` with
    ``num_samples=n``. ``mean(context=c) = sigmoid(l)`` (the pixel probabilities a VAE's figure
    shows), ``mode(context=c) = [l > 0]`` (``int32``; ties at ``l = 0`` go to 0).

    Args:
      net: a callable (usually an ``nnx.Module``) from context ``(B, ...)`` to logits.

    Raises:
      ValueError: no context, ``x`` whose shape differs from the logits', or ``num_samples``
        that is neither ``None`` nor an int >= 1.

    Source: the learned sign classifier ``p(s|z)`` / ``q(s|x)`` of the abs surjections,
    Appendix D and I.1 (anti-symmetric AbsFlow); the binary image decoder of a VAE (Kingma &
    Welling 2014, Appendix C.1).
    """

    _family = distrax.Bernoulli
    _class_axes = 0

    def mean(self, *, context=None) -> Array:
        """``sigmoid(l)`` ``(B, *event_shape)``, the probability of a 1."""
        return jax.nn.sigmoid(self.logits(context))

    def mode(self, *, context=None) -> Array:
        """``[l > 0]`` ``(B, *event_shape)`` ``int32``."""
        return (self.logits(context) > 0).astype(jnp.int32)


class ConditionalCategorical(_ConditionalLogits):
    """Categorical over ``{0, ..., K-1}`` per element, logits ``net(c)`` of shape ``(B, *event, K)``.

    ``log p(x|c) = sum log_softmax(l)[x]`` in nats, summed over the event; samples are integers
    ``(B, *event)``, or ``(n, B, *event)`` with ``num_samples=n``. ``mode(context=c)`` is
    ``argmax_k l_k`` (``int32``), ``mean(context=c)`` the expected class index
    ``sum_k k softmax(l)_k`` (float), both ``(B, *event)``.

    Args:
      net: a callable (usually an ``nnx.Module``) from context ``(B, ...)`` to logits.

    Raises:
      ValueError: no context, ``x`` whose shape is not the logits' shape without ``K``, or
        ``num_samples`` that is neither ``None`` nor an int >= 1.

    Source: the learned index classifier ``p(k|z)`` / ``q(k|x)`` of the max surjections,
    Appendix E.
    """

    _family = distrax.Categorical
    _class_axes = 1

    def mean(self, *, context=None) -> Array:
        """``sum_k k softmax(l)_k`` ``(B, *event)``, the expected class index."""
        logits = self.logits(context)
        k = jnp.arange(logits.shape[-1], dtype=logits.dtype)
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * k, axis=-1)

    def mode(self, *, context=None) -> Array:
        """``argmax_k l_k`` ``(B, *event)`` ``int32``."""
        return jnp.argmax(self.logits(context), axis=-1).astype(jnp.int32)
