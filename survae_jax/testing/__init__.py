"""``survae_jax.testing``: the property suite every transform goes through, public.

Check your own layer with one call::

    from survae_jax.testing import check_transform
    report = check_transform(MyLayer(...), x)   # x: a (B, ...) batch inside the layer's domain

or describe it once as a :class:`TransformCase` (how to build it, what to feed it, which
properties cannot apply and why) and run ``check_transform(case)``. A broken property raises
:class:`PropertyError` (an ``AssertionError``) whose message names the layer and the property.

Properties (:data:`PROPERTIES`), dispatched on the layer's kind flags
(``stochastic_forward``, ``stochastic_inverse``; ``forward`` = X -> Z, data to latent):

=================  ==============================================================  ==========
property           what is checked                                                 kinds
=================  ==============================================================  ==========
shapes             V ``(B,)`` finite in x's dtype; inverse gives the data shape;    all
                   the module's state is not mutated
round_trip         ``inverse(forward(x)) == x``                                    bijection
log_det            V == ``slogdet(jax.jacfwd(forward))`` per example, float64      bijection
density            opt-in, ``density=(base, lo, hi, expected)``: the density of    exact,
                   ``Flow(base, [layer])`` integrates to ``expected`` on [lo, hi]   1-D/2-D
right_inverse      generative: ``inverse(forward(x, key=k)) == x``;                surjections
                   inference: ``forward(inverse(z, key=k)) == z``; 100 keys, exact
deterministic      deterministic directions ignore the key (V too)                 not stochastic
key_required       ``key=None`` on a stochastic direction raises ValueError          not bijection
                   naming the layer; different keys give different draws
jit                ``jax.jit`` equals eager                                        all
vmap               vmap over single examples equals the batch call                 all
grad               gradients w.r.t. every ``nnx.Param`` (and x) are finite         all
float64            float64 in, float64 out (under ``jax.enable_x64``)              all
bad_input          no batch axis (rank 0) raises ValueError naming the layer; one  all
                   more entry on the last axis is refused the same way or handled
                   consistently (size-agnostic layers); a case's own bad_input/
                   bad_latent must be refused
=================  ==============================================================  ==========

**V of a non-bijection is not checked by** :func:`check_transform` **by default.**
``log_det`` needs a Jacobian, and ``right_inverse`` checks fibres, not likelihoods: an
inference surjection whose ``V`` is 0 instead of ``-D log 2`` passes every default property.
For an exact layer (an inference surjection) on 1-D/2-D data, check ``V`` with
``check_density_integrates(Flow(base, [layer]), lo, hi, expected=<mass of the base on the
layer's image>)``, or give ``density=(base, lo, hi, expected)`` to run the ``density``
property; for generative surjections and stochastic layers (one-sample ``V``) check the
bounds against a closed-form ``log p(x)``. The report's ``log_det`` and ``density`` entries
say this for each layer (``"not checked: ..."`` when ``density`` is not given).

Flow level: :func:`check_density_integrates` integrates ``exp(log_prob)`` of an exact 1-D or
2-D flow on a grid (midpoint rule) and compares with the expected mass.

Source: SurVAE Flows (Nielsen et al., 2020), Appendix A (change of variables) and Appendix B
(the stochastic right-inverse check); the FlowJAX test registry.
"""

from survae_jax.testing.case import PROPERTIES, PropertyError, TransformCase
from survae_jax.testing.density import check_density_integrates, integrate_density
from survae_jax.testing.properties import to_float64
from survae_jax.testing.suite import (
    check_bad_input,
    check_density,
    check_deterministic,
    check_float64,
    check_grad,
    check_jit,
    check_key_required,
    check_log_det,
    check_property,
    check_right_inverse,
    check_round_trip,
    check_shapes,
    check_transform,
    check_vmap,
    kind_of,
    not_applicable,
    not_checked,
    v_not_checked,
)

__all__ = [
    "PROPERTIES",
    "PropertyError",
    "TransformCase",
    "check_transform",
    "check_property",
    "check_shapes",
    "check_round_trip",
    "check_log_det",
    "check_density",
    "check_right_inverse",
    "check_deterministic",
    "check_key_required",
    "check_jit",
    "check_vmap",
    "check_grad",
    "check_float64",
    "check_bad_input",
    "check_density_integrates",
    "integrate_density",
    "kind_of",
    "not_applicable",
    "not_checked",
    "v_not_checked",
    "to_float64",
]
