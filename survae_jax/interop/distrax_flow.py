"""A survae_jax flow as a ``distrax.Distribution`` (this module imports distrax)."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

from survae_jax.interop._common import check_context, check_flow, event_spec, flatten, inexact_parts, rows

Array = jax.Array


class DistraxFlow(distrax.Distribution):
    """A survae_jax flow seen as a ``distrax.Distribution`` over ``event_shape`` (no batch shape).

    ``log_prob(value)`` takes ``value`` of shape ``sample_shape + event_shape`` (any
    ``sample_shape``, ``()`` included) and returns ``sample_shape``; ``sample(seed=,
    sample_shape=)`` returns ``sample_shape + event_shape``; ``sample_and_log_prob`` both
    (for an exact flow with ``V`` summed on the sampling path, as ``Flow.sample_and_log_prob``).
    It is a distrax ``Jittable``: it can be passed to ``jax.jit`` and used inside
    ``distrax.Transformed``, ``distrax.MixtureOfTwo``, ``distrax.Independent`` and the rest.

    **Exact or bound.** ``exact`` is ``flow.exact``. When ``True`` (bijections and inference
    surjections only), ``log_prob`` is the exact ``log p(x) = log p(z) + sum_l V_l`` and no key
    is used. When ``False`` (a generative surjection such as ``Augment`` or a dequantization, or
    a stochastic layer such as ``VAE``; ``inexact`` names them), ``log_prob`` is a **one-sample
    ELBO**, a random lower bound of ``log p(x)`` in expectation, drawn with a key:
    ``log_prob(value, key=k)``, or else the ``key`` given at construction. The construction key
    is reused on every call, so repeated calls give the same draw (a fixed-noise bound, fine
    for evaluation, biased as a training signal: pass a fresh key per call there). Without any
    key ``log_prob`` of an inexact flow raises ``ValueError``. ``sample`` never needs more than
    its ``seed``.

    **Context.** A conditional flow (``flow.conditional``, e.g. a ``ConditionalFlow``) is
    refused without ``context``; with ``context`` (the context of one example, no batch axis)
    this is ``p(x | context)``, the context repeated for every value and sample. A flow whose
    layers use a context while its base does not is handled the same way: pass ``context=``.
    For many contexts, build one distribution per context (it is cheap: no compilation).

    Args:
      flow: a ``survae_jax.Flow`` (or any survae_jax ``Distribution``), left as it is: later
        training of ``flow`` shows in this distribution.
      key: the key ``log_prob`` of an inexact flow uses when called without one (ignored by an
        exact flow).
      context: the context of one example for a conditional flow.

    Attributes:
      flow, key, context: as given.
      exact: ``flow.exact``: whether ``log_prob`` is the exact log-density.
      inexact: the names of the layers (and base) that make ``log_prob`` a bound; ``()`` when exact.

    Raises:
      TypeError: ``flow`` is not a survae_jax distribution.
      ValueError: a conditional flow without ``context``, or a flow whose ``sample`` cannot be
        traced (its event shape is read from ``jax.eval_shape`` of one sample).

    Source: the distrax ``Distribution`` protocol (``_sample_n``, ``log_prob``, ``event_shape``).
    """

    def __init__(self, flow, *, key: Array | None = None, context: Array | None = None):
        who = "to_distrax"
        check_flow(flow, who)
        self.flow = flow
        self.key = key
        self.context = check_context(flow, context, who)
        self.exact = bool(getattr(flow, "exact", True))
        self.inexact = tuple(inexact_parts(flow))
        self._event_shape = event_spec(flow, self.context, who)[0]

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self._event_shape

    @property
    def name(self) -> str:
        return f"DistraxFlow({type(self.flow).__name__})"

    def _key(self, key):
        key = self.key if key is None else key
        if key is None and not self.exact:
            raise ValueError(
                f"{self.name}.log_prob: the flow is not exact ({', '.join(self.inexact)} give a bound), so "
                "log_prob is a one-sample ELBO that needs a key: log_prob(value, key=k), or to_distrax(flow, key=k).")
        return key

    def log_prob(self, value, *, key: Array | None = None) -> Array:
        """``log p(value)`` of shape ``sample_shape`` (``value``: ``sample_shape + event_shape``);
        a one-sample ELBO with ``key`` (or the construction key) for an inexact flow."""
        key = self._key(key)
        x, lead = flatten(value, self.event_shape, f"{self.name}.log_prob")
        lp = self.flow.log_prob(x, context=rows(self.context, x.shape[0]), key=key)
        return lp.reshape(lead)

    def _sample_n(self, key, n: int) -> Array:
        c = rows(self.context, n)
        return self.flow.sample(key, n if c is None else None, context=c)

    def _sample_n_and_log_prob(self, key, n: int):
        c = rows(self.context, n)
        return self.flow.sample_and_log_prob(key, n if c is None else None, context=c)
