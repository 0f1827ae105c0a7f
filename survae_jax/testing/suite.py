"""Dispatch on a layer's kind: which properties it owes, and ``check_transform`` that runs them."""

from __future__ import annotations

import inspect
from typing import Iterable

from survae_jax.testing import common, properties
from survae_jax.testing.case import PROPERTIES, Bound, PropertyError, TransformCase, bind

_PROPERTY_FUNCTIONS = {
    "shapes": common.prop_shapes,
    "round_trip": properties.prop_round_trip,
    "log_det": properties.prop_log_det,
    "density": properties.prop_density,
    "right_inverse": properties.prop_right_inverse,
    "deterministic": properties.prop_deterministic,
    "key_required": properties.prop_key_required,
    "jit": common.prop_jit,
    "vmap": common.prop_vmap,
    "grad": common.prop_grad,
    "float64": common.prop_float64,
    "bad_input": common.prop_bad_input,
}


def kind_of(transform) -> str:
    """The layer's kind from its flags: ``"bijection"``, ``"generative surjection"``,
    ``"inference surjection"`` or ``"stochastic"`` (both directions stochastic).

    The flags map as (``stochastic_forward``, ``stochastic_inverse``): (F, F) bijection,
    (T, F) generative surjection, (F, T) inference surjection, (T, T) stochastic.

    Raises:
      AttributeError: ``transform`` lacks the flags (not a ``Transform``).

    Source: the four kinds of layer of SurVAE flows (Nielsen et al. 2020): bijections,
    stochastic transformations, generative and inference surjections; docs/design.md 'How a layer
    is checked'.
    """
    f, i = bool(transform.stochastic_forward), bool(transform.stochastic_inverse)
    return {
        (False, False): "bijection",
        (True, False): "generative surjection",
        (False, True): "inference surjection",
        (True, True): "stochastic",
    }[(f, i)]


_DENSITY_CALL = (
    "check_density_integrates(Flow(base, [layer]), lo, hi, expected=<mass of the base on the layer's image>) "
    "(exact layers, 1-D/2-D data), or give the case density=(base, lo, hi, expected)"
)


def v_not_checked(transform) -> str | None:
    """Why ``V`` of this layer is not checked by :func:`check_transform` without ``density=``,
    and how to check it; ``None`` for a bijection (``log_det`` checks its ``V``).

    Returns a one-line explanation (str) or ``None``.

    Raises:
      AttributeError: ``transform`` lacks the kind flags (see :func:`kind_of`).

    Source: this library (docs/design.md 'How a layer is checked': quadrature for exact layers,
    ELBO/IWBO bounds for stochastic ones).
    """
    kind = kind_of(transform)
    if kind == "bijection":
        return None
    if kind == "inference surjection":
        return (
            f"V of an inference surjection is NOT checked by check_transform; check it with {_DENSITY_CALL}"
        )
    return (
        f"V of {'a stochastic layer' if kind == 'stochastic' else 'a generative surjection'} is a one-sample "
        "stochastic estimate and is NOT checked by check_transform "
        "(quadrature needs an exact density); check it through bounds on a case with a closed-form "
        "log p(x): Flow(base, [layer]).elbo(x) <= log p(x), and iwbo rising towards log p(x) as "
        "num_samples grows"
    )


def not_applicable(transform, case: TransformCase | None = None) -> dict[str, str]:
    """``{property: reason}`` for the properties the layer's kind does not owe.

    ``density`` is owed only by exact layers; a bijection owes it only when ``case`` gives
    ``density=`` (its ``V`` is checked exactly by ``log_det``).

    Args:
      transform: the layer (its kind comes from :func:`kind_of`).
      case: its :class:`TransformCase` (optional; only ``case.density`` is read).

    Raises:
      AttributeError: ``transform`` lacks the kind flags (see :func:`kind_of`).

    Source: this library (docs/design.md 'How a layer is checked'; right inverses from Appendix B).
    """
    kind = kind_of(transform)
    a_kind = {"inference surjection": "an inference surjection", "stochastic": "a stochastic layer"}.get(
        kind, f"a {kind}"
    )
    out = {}
    if kind != "bijection":
        out["round_trip"] = f"{a_kind} is not invertible; right_inverse checks its fibre instead"
        out["log_det"] = f"{a_kind} has no Jacobian determinant. {v_not_checked(transform)}"
    if kind in ("generative surjection", "stochastic"):
        out["density"] = (
            f"{a_kind} has no exact density to integrate (Flow.log_prob is a stochastic bound). "
            f"{v_not_checked(transform)}"
        )
    elif kind == "bijection" and (case is None or case.density is None):
        out["density"] = (
            "log_det checks a bijection's V exactly (give density=(base, lo, hi, expected) to integrate a flow too)"
        )
    if kind not in ("generative surjection", "inference surjection"):
        out["right_inverse"] = f"applies to surjections, not to {a_kind}"
    if kind == "stochastic":
        out["deterministic"] = "both directions are stochastic"
    if kind == "bijection":
        out["key_required"] = "a bijection needs no key"
    return out


def not_checked(transform, case: TransformCase) -> dict[str, str]:
    """``{property: reason}`` for properties the layer owes but the case gives no data for
    (``density`` without ``density=``); :func:`check_transform` reports them as
    ``"not checked: <reason>"``.

    Args:
      transform: the layer; case: its :class:`TransformCase` (``case.density`` is read).

    Raises:
      AttributeError: ``transform`` lacks the kind flags (see :func:`kind_of`).

    Source: this library (docs/design.md 'How a layer is checked').
    """
    if case.density is not None or "density" in not_applicable(transform, case):
        return {}
    return {"density": f"no density=(base, lo, hi, expected) given, so {v_not_checked(transform)}"}


def _run(b: Bound, prop: str) -> None:
    try:
        _PROPERTY_FUNCTIONS[prop](b)
    except AssertionError as e:
        raise PropertyError(b.label, {prop: str(e)}) from e
    except Exception as e:  # noqa: BLE001 - a crash inside a check is that property breaking
        raise PropertyError(b.label, {prop: f"raised {type(e).__name__}: {str(e)[:500]}"}) from e


def check_property(prop: str, target, x=None, *, key=None, context=None, **case_kwargs) -> None:
    """Run one property of :data:`PROPERTIES` on a case, or on a transform and its input ``x``.

    Args:
      prop: a name from :data:`PROPERTIES`.
      target: a :class:`TransformCase`, or a transform (then ``x`` is required).
      x: a data batch ``(B, *event)`` for ``target.forward`` (only with a transform).
      key: PRNG key for building the case and for the layer's draws (default ``key(0)``).
      context: conditioning tensor ``(B, ...)`` (overrides the case's).
      **case_kwargs: :class:`TransformCase` fields (tolerances, ``bad_input``, ``num_keys``...).

    Raises:
      PropertyError: the property broke; the message names the layer and the property.
      ValueError: an unknown property name.

    Source: this library (docs/design.md 'How a layer is checked').
    """
    if prop not in _PROPERTY_FUNCTIONS:
        raise ValueError(f"check_property: unknown property {prop!r}; known: {PROPERTIES}.")
    _run(bind(target, x, key=key, context=context, **case_kwargs), prop)


def check_transform(
    target,
    x=None,
    *,
    key=None,
    context=None,
    properties: Iterable[str] | None = None,
    fail_fast: bool = False,
    **case_kwargs,
) -> dict[str, str]:
    """Run every property the layer's kind owes; one call checks a user's own layer.

    Which properties run (see :data:`PROPERTIES`): all kinds get ``shapes``, ``jit``, ``vmap``,
    ``grad``, ``float64`` and ``bad_input``; bijections add ``round_trip`` and ``log_det``
    (V against ``slogdet(jax.jacfwd)`` in float64); surjections add ``right_inverse`` (Appendix
    B, ``num_keys`` keys); deterministic directions are checked by ``deterministic``, stochastic
    ones by ``key_required``. The kind comes from the layer's class flags
    ``stochastic_forward``/``stochastic_inverse``.

    **V of a non-bijection is not checked** unless you ask: ``right_inverse`` checks the
    fibres, not the likelihood contribution, so an inference surjection with a wrong ``V``
    passes every default property. For an exact layer (inference surjection) on 1-D/2-D data
    pass ``density=(base, lo, hi, expected)`` (property ``density``), or call
    ``check_density_integrates(Flow(base, [layer]), lo, hi, expected=<mass of the base on the
    layer's image>)`` yourself; for generative surjections and stochastic layers check the
    bounds (``Flow.elbo`` <= a closed-form ``log p(x)``, ``Flow.iwbo`` rising towards it).
    The report says so in its ``log_det`` and ``density`` entries.

    The default ``bad_input`` accepts a size-agnostic layer (elementwise maps take any last
    axis) and still fails a layer that crashes on, or silently accepts, a wrong shape; see
    :class:`TransformCase` ``bad_input``.

    Example::

        from survae_jax.testing import check_transform
        check_transform(MyLayer(...), x)            # x: (B, D) batch inside the domain

    Args:
      target: a :class:`TransformCase`, or a transform (then give ``x``).
      x: a data batch ``(B, *event)`` (with a transform only).
      key: PRNG key (default ``jax.random.key(0)``).
      context: conditioning tensor ``(B, ...)`` for conditional layers.
      properties: run only these (default: every property the kind owes).
      fail_fast: stop at the first broken property.
      **case_kwargs: :class:`TransformCase` fields: ``skip``, tolerances, ``bad_input``,
        ``density=(base, lo, hi, expected)``...

    Returns:
      ``{property: "passed" | "skipped: <reason>" | "not applicable: <reason>" |
      "not checked: <reason>"}`` (``"not checked"``: the property applies but the case gives
      no data for it, e.g. ``density`` without ``density=``).

    Raises:
      PropertyError: one or more properties broke; ``err.properties`` lists them and the
        message names the layer and gives each property's failure.
      ValueError: an unknown name in ``properties``, or bad :class:`TransformCase` fields.
      TypeError: a transform without ``x``, or a case with ``x``.

    Source: the property suite of this library (docs/design.md 'How a layer is checked'); the
    registry-of-constructors design of FlowJAX's bijection tests; right inverses from the
    SurVAE paper's Appendix B (Nielsen et al. 2020).
    """
    b = bind(target, x, key=key, context=context, **case_kwargs)
    wanted = PROPERTIES if properties is None else tuple(properties)
    for p in wanted:
        if p not in _PROPERTY_FUNCTIONS:
            raise ValueError(f"check_transform: unknown property {p!r}; known: {PROPERTIES}.")
    na = not_applicable(b.transform, b.case)
    nc = not_checked(b.transform, b.case)
    report, failures = {}, {}
    for p in wanted:
        if p in na:
            report[p] = f"not applicable: {na[p]}"
        elif p in nc:
            report[p] = f"not checked: {nc[p]}"
        elif p in b.case.skip:
            report[p] = f"skipped: {b.case.skip[p]}"
        else:
            try:
                _run(b, p)
                report[p] = "passed"
            except PropertyError as e:
                failures.update(e.failures)
                report[p] = "FAILED"
                if fail_fast:
                    break
    if failures:
        raise PropertyError(b.label, failures)
    return report


def _single(prop: str):
    doc = inspect.cleandoc(_PROPERTY_FUNCTIONS[prop].__doc__ or "")

    def check(target, x=None, *, key=None, context=None, **case_kwargs) -> None:
        check_property(prop, target, x, key=key, context=context, **case_kwargs)

    check.__name__ = check.__qualname__ = f"check_{prop}"
    check.__doc__ = (
        f"{doc}\n\n"
        "Args: ``target`` (a TransformCase, or a transform with ``x`` ``(B, *event)``), ``key``,\n"
        "``context``, and TransformCase fields as keywords (tolerances...).\n\n"
        f"Raises: PropertyError naming the layer and the property ``{prop!r}``.\n\n"
        "Source: this library's property suite (docs/design.md 'How a layer is checked')."
    )
    return check


# one public check_<property> per property, in the order of PROPERTIES (each one's __name__ says which)
(check_shapes, check_round_trip, check_log_det, check_density, check_right_inverse, check_deterministic,
 check_key_required, check_jit, check_vmap, check_grad, check_float64, check_bad_input) = map(_single, PROPERTIES)
