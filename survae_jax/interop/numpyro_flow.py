"""An exact survae_jax flow as a ``numpyro.distributions.Distribution`` (this module imports numpyro)."""

from __future__ import annotations

import math

import jax
from numpyro.distributions import Distribution, constraints

from survae_jax.interop._common import check_context, check_flow, event_spec, flatten, inexact_parts, rows

Array = jax.Array


class NumpyroFlow(Distribution):
    """An exact survae_jax flow as a numpyro distribution over ``event_shape`` (batch shape ``()``).

    ``log_prob(value)``: ``value`` of shape ``sample_shape + event_shape`` gives the exact
    ``log p(x) = log p(z) + sum_l V_l``, shape ``sample_shape``; ``sample(key, sample_shape)``
    gives ``sample_shape + event_shape``. So a flow can be a prior, ``numpyro.sample("z",
    to_numpyro(flow))``, the base of a guide (``TransformedDistribution(to_numpyro(flow),
    AffineTransform(loc, scale))`` with learned ``loc``, ``scale``), or a likelihood
    (``obs=``); ``expand`` and ``plate`` give it a batch shape as for any numpyro distribution.
    The flow's own parameters are constants to numpyro (train the flow with survae_jax first).

    Only exact flows (bijections and inference surjections) are accepted: numpyro's inference
    (NUTS, SVI's ELBO) needs the log-density itself, and a one-sample ELBO in its place would
    make a wrong posterior without any error. A flow with a generative surjection or a
    stochastic layer is refused with an error naming those layers.

    ``support`` is ``real`` on every event axis unless given: a flow whose data live on a
    smaller set (a ``Logit`` on the data side) has ``log_prob = -inf`` outside it,
    which NUTS treats as a rejected proposal; pass the true ``support`` (a numpyro constraint)
    to let numpyro transform to it instead.

    A conditional flow needs ``context`` (the context of one example, no batch axis): the
    distribution is then ``p(x | context)``.

    Args:
      flow: an exact ``survae_jax.Flow`` (or another exact survae_jax ``Distribution``).
      context: the context of one example, for a conditional flow.
      support: a numpyro constraint; default ``independent(real, len(event_shape))``.
      validate_args: numpyro's argument validation.

    Raises:
      TypeError: ``flow`` is not a survae_jax distribution.
      ValueError: an inexact flow (the message names its inexact layers), a conditional flow
        without ``context``, or a flow whose ``sample`` cannot be traced.

    Source: the numpyro ``Distribution`` protocol; FlowJAX's numpyro bridge does the same for
    bijective flows.
    """

    arg_constraints: dict = {}
    pytree_data_fields = ("flow", "context")
    pytree_aux_fields = ("_support",)

    def __init__(self, flow, *, context: Array | None = None, support=None, validate_args=None):
        who = "to_numpyro"
        check_flow(flow, who)
        parts = inexact_parts(flow)
        if parts:
            raise ValueError(
                f"{who}: numpyro needs an exact log-density, but in {type(flow).__name__} {', '.join(parts)} "
                "give only a bound (ELBO). Use to_distrax(flow, key=...) for a bound, or a flow of bijections "
                "and inference surjections.")
        self.flow = flow
        self.context = check_context(flow, context, who)
        event_shape = event_spec(flow, self.context, who)[0]
        if support is None:
            support = constraints.independent(constraints.real, len(event_shape)) if event_shape else constraints.real
        self._support = support
        super().__init__(batch_shape=(), event_shape=event_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()) -> Array:
        sample_shape = tuple(sample_shape)
        n = math.prod(sample_shape)
        c = rows(self.context, n)
        x = self.flow.sample(key, n if c is None else None, context=c)
        return x.reshape(sample_shape + self.event_shape)

    def log_prob(self, value) -> Array:
        x, lead = flatten(value, self.event_shape, f"NumpyroFlow({type(self.flow).__name__}).log_prob")
        return self.flow.log_prob(x, context=rows(self.context, x.shape[0])).reshape(lead)
