"""Conditional distributions whose parameters are a net applied to the context: the ``q(s|x)``,
``p(k|z)``, ``q(z2|x)`` of the surjections (Tables 6 and 7) and a VAE's encoder and decoder
(Appendix H.1). Every method needs ``context`` ``(B, ...)`` and draws one sample per row."""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp

from survae_jax.distributions.base import Array, Distribution, sum_except_batch


class _Conditional(Distribution):
    conditional = True

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def _net(self, context: Array | None, num_samples=None) -> Array:
        if context is None:
            raise ValueError(f"{self.name} is conditional and needs context= (a (B, ...) tensor).")
        self._num_samples(num_samples, context)
        return self.net(context)


class ConditionalNormal(_Conditional):
    """``N(mu(c), diag(sigma(c)^2))``: ``net(c)`` ``(B, *event[:-1], 2 D)`` split on the last axis
    into ``mu`` and ``log sigma``; ``log p(x|c) = sum log N(x; mu, sigma)``.

    Source: the Gaussian encoder/decoder of a VAE (Kingma & Welling, 2014); Appendix H.1, H.3.
    """

    def params(self, context: Array, num_samples=None) -> tuple[Array, Array]:
        """``(mean, log_scale)``, each ``(B, *event_shape)``."""
        out = self._net(context, num_samples)
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

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        mean, log_scale = self.params(context, num_samples)
        x = mean + jnp.exp(log_scale) * jax.random.normal(key, mean.shape, mean.dtype)
        return x, self._log_prob(x, mean, log_scale)

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
        return type(self)._family(logits=self._net(context, num_samples)).sample(seed=key)


class ConditionalBernoulli(_ConditionalLogits):
    """Bernoulli on ``{0, 1}^D``, logits ``l = net(c)`` ``(B, *event)``:
    ``log p(x|c) = sum x log sigmoid(l) + (1 - x) log sigmoid(-l)``; samples ``int32``.

    Source: the sign classifier of the abs surjections (Appendix D; I.1).
    """

    _family = distrax.Bernoulli


class ConditionalCategorical(_ConditionalLogits):
    """Categorical on ``{0..K-1}`` per element, logits ``l = net(c)`` ``(B, *event, K)``:
    ``log p(x|c) = sum log_softmax(l)[x]``; samples ``(B, *event)`` integers.

    Source: the index classifier of the max surjections (Appendix E).
    """

    _family = distrax.Categorical
    _class_axes = 1
