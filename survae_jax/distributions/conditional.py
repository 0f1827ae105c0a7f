"""Conditional distributions whose parameters are a net applied to the context: the ``q(s|x)``,
``p(k|z)``, ``q(z2|x)`` of the surjections (Tables 6 and 7) and a VAE's encoder and decoder
(Appendix H.1). Every method needs ``context`` ``(B, ...)``.

Sample shapes (sample axis first, as distrax and FlowJAX): ``sample(key, context=c)`` draws one
sample per context row, ``(B, *event)``; ``sample(key, n, context=c)`` draws ``n`` per row,
``(n, B, *event)``, and ``sample_and_log_prob`` then gives log-densities ``(n, B)``.
``mean(context=c)`` and ``mode(context=c)`` are ``(B, *event)`` (e.g. the decoder means a VAE's
image figure shows)."""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.distributions.base import Array, Distribution, sum_except_batch


class _Conditional(Distribution):
    conditional = True

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def _net(self, context: Array | None) -> Array:
        if context is None:
            raise ValueError(f"{self.name} is conditional and needs context= (a (B, ...) tensor).")
        return self.net(context)

    def _sample_shape(self, num_samples) -> tuple[int, ...]:
        """``()``: one sample per context row; ``(n,)``: ``n`` per row, sample axis first."""
        if num_samples is None:
            return ()
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(
                f"{self.name}.sample: num_samples must be None (one sample per context row) or an int >= 1 "
                f"(that many per row, shape (n, B, *event)), got {num_samples!r}."
            )
        return (int(num_samples),)


def _sum_event(v: Array, lead: int) -> Array:
    """Sum a per-element log-density over the event axes (every axis from ``lead`` on)."""
    return jnp.sum(v, axis=tuple(range(lead, v.ndim)))


class ConditionalNormal(_Conditional):
    """``N(mu(c), diag(sigma(c)^2))``: ``net(c)`` ``(B, *event[:-1], 2 D)`` split on the last axis
    into ``mu`` and ``log sigma``; ``log p(x|c) = sum log N(x; mu, sigma)``.

    ``mean`` and ``mode`` are ``mu(c)``.

    Source: the Gaussian encoder/decoder of a VAE (Kingma & Welling, 2014); Appendix H.1, H.3.
    """

    def params(self, context: Array) -> tuple[Array, Array]:
        """``(mean, log_scale)``, each ``(B, *event_shape)``."""
        out = self._net(context)
        if out.shape[-1] % 2:
            raise ValueError(
                f"{self.name}: the net's last axis must hold 2 * D values (mean, log-scale), got {out.shape}."
            )
        mean, log_scale = jnp.split(out, 2, axis=-1)
        return mean, log_scale

    def _log_prob(self, x, mean, log_scale):
        if x.shape != mean.shape:
            raise ValueError(f"{self.name}: expected x of shape {mean.shape}, got {x.shape}.")
        return sum_except_batch(distrax.Normal(mean, jnp.exp(log_scale)).log_prob(x))

    def log_prob(self, x, *, context=None, key=None):
        return self._log_prob(x, *self.params(context))

    def mean(self, *, context=None) -> Array:
        """``mu(c)`` ``(B, *event_shape)``."""
        return self.params(context)[0]

    def mode(self, *, context=None) -> Array:
        """``mu(c)`` ``(B, *event_shape)``."""
        return self.params(context)[0]

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        shape = self._sample_shape(num_samples)
        mean, log_scale = self.params(context)
        x = mean + jnp.exp(log_scale) * jax.random.normal(key, shape + mean.shape, mean.dtype)
        if not shape:
            return x, self._log_prob(x, mean, log_scale)
        return x, _sum_event(distrax.Normal(mean, jnp.exp(log_scale)).log_prob(x), 2)

    def sample(self, key, num_samples=None, *, context=None):
        return self.sample_and_log_prob(key, num_samples, context=context)[0]


class _ConditionalLogits(_Conditional):
    """Discrete values with logits ``net(context)``; ``_class_axes`` trailing logit axes are classes."""

    _family = None
    _class_axes = 0

    def logits(self, context: Array) -> Array:
        """The logits for ``context``."""
        return self._net(context)

    def log_prob(self, x, *, context=None, key=None):
        logits = self.logits(context)
        expected = logits.shape[: logits.ndim - self._class_axes]
        if x.shape != expected:
            raise ValueError(f"{self.name}: expected x of shape {expected}, got {x.shape}.")
        return sum_except_batch(type(self)._family(logits=logits).log_prob(x))

    def sample(self, key, num_samples=None, *, context=None):
        shape = self._sample_shape(num_samples)
        return type(self)._family(logits=self._net(context)).sample(seed=key, sample_shape=shape)

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        shape = self._sample_shape(num_samples)
        dist = type(self)._family(logits=self._net(context))
        x = dist.sample(seed=key, sample_shape=shape)
        return x, _sum_event(dist.log_prob(x), 1 + len(shape))


class ConditionalBernoulli(_ConditionalLogits):
    """Bernoulli on ``{0, 1}^D``, logits ``l = net(c)`` ``(B, *event)``:
    ``log p(x|c) = sum x log sigmoid(l) + (1 - x) log sigmoid(-l)``; samples ``int32``;
    ``mean = sigmoid(l)`` (float), ``mode = [l > 0]`` (``int32``, ties to 0).

    Source: the sign classifier of the abs surjections (Appendix D; I.1); the binary image
    decoder of a VAE (Kingma & Welling 2014, Appendix C.1).
    """

    _family = distrax.Bernoulli

    def mean(self, *, context=None) -> Array:
        """``sigmoid(l)`` ``(B, *event)``."""
        return jax.nn.sigmoid(self.logits(context))

    def mode(self, *, context=None) -> Array:
        """``[l > 0]`` ``(B, *event)`` ``int32``."""
        return (self.logits(context) > 0).astype(jnp.int32)


class ConditionalCategorical(_ConditionalLogits):
    """Categorical on ``{0..K-1}`` per element, logits ``l = net(c)`` ``(B, *event, K)``:
    ``log p(x|c) = sum log_softmax(l)[x]``; samples ``(B, *event)`` integers;
    ``mode = argmax_k l_k`` (``int32``), ``mean = sum_k k softmax(l)_k`` (the expected index).

    Source: the index classifier of the max surjections (Appendix E).
    """

    _family = distrax.Categorical
    _class_axes = 1

    def mean(self, *, context=None) -> Array:
        """``sum_k k softmax(l)_k`` ``(B, *event)``."""
        logits = self.logits(context)
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * jnp.arange(logits.shape[-1], dtype=logits.dtype), axis=-1)

    def mode(self, *, context=None) -> Array:
        """``argmax_k l_k`` ``(B, *event)`` ``int32``."""
        return jnp.argmax(self.logits(context), axis=-1).astype(jnp.int32)
