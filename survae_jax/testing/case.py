"""``TransformCase`` (one layer to check) and ``PropertyError`` (what a failed check raises)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax

Array = jax.Array

#: Every property the suite knows, in the order :func:`check_transform` runs them.
PROPERTIES: tuple[str, ...] = (
    "shapes",
    "round_trip",
    "log_det",
    "density",
    "right_inverse",
    "deterministic",
    "key_required",
    "jit",
    "vmap",
    "grad",
    "float64",
    "bad_input",
)


class PropertyError(AssertionError):
    """A transform broke a property of the suite.

    The message names the case (or layer), the layer's class and every broken property, e.g.
    ``"[WrongSign] WrongSign broke property 'log_det': V differs from slogdet(jacfwd) ..."``.

    Attributes:
      layer: the case name (the layer's class name when checked without a case).
      properties: the names of the broken properties (see :data:`PROPERTIES`).
      failures: ``{property: message}``.

    What the suite raises; a subclass of ``AssertionError`` so pytest reports it as a test failure.

    Source: this library (docs/design.md 'How a layer is checked').
    """

    def __init__(self, layer: str, failures: Mapping[str, str]):
        self.layer = layer
        self.failures = dict(failures)
        self.properties = tuple(self.failures)
        lines = [f"[{layer}] broke {len(self.failures)} propert{'y' if len(self.failures) == 1 else 'ies'}:"]
        lines += [f"  property '{p}': {m}" for p, m in self.failures.items()]
        super().__init__("\n".join(lines))


def _normalise_skip(skip) -> dict[str, str]:
    if skip is None:
        return {}
    items = skip.items() if isinstance(skip, Mapping) else skip
    out = {}
    for item in items:
        if isinstance(item, str):
            raise ValueError(
                f"TransformCase.skip: give (property, reason) pairs or a dict, got the bare name {item!r}."
            )
        prop, reason = item
        if prop not in PROPERTIES:
            raise ValueError(f"TransformCase.skip: unknown property {prop!r}; known: {PROPERTIES}.")
        if not reason:
            raise ValueError(f"TransformCase.skip: property {prop!r} needs a reason.")
        out[prop] = str(reason)
    return out


@dataclasses.dataclass(frozen=True)
class TransformCase:
    """One layer to put through the property suite: how to build it and what to feed it.

    Args:
      name: a readable id, e.g. ``"AffineCoupling-exp-vector"`` (used in test ids and messages).
      make: ``make(key) -> Transform``; builds the layer (draw any parameters from ``key``).
        Initialise data-dependent layers (ActNorm) inside ``make``.
      sample_input: ``sample_input(key) -> x``, a data-side batch ``(B, *event)`` inside the
        layer's domain (positive for a log, in (0, 1) for a logit, integers for rounding...).
        Keep it tiny: ``B = 2..4``.
      context: optional ``context(key) -> c`` ``(B, ...)`` for conditional layers.
      bad_input: optional ``bad_input(key) -> x`` that ``forward`` must reject with a
        ``ValueError`` naming the layer (strict: accepting it, or any other exception, is a
        failure). Give one for a layer whose shape limits the default does not reach (e.g. a
        wrong number of points on axis 1). Without it the default applies: (a) an input with
        no batch axis (rank 0, ``x.reshape(-1)[0]``) must be rejected with a ``ValueError``
        naming the layer, and (b) ``x`` with one more entry on the last axis must be either
        rejected the same way, or handled consistently, as a size-agnostic (elementwise) layer
        does: ``z`` keeps the batch size ``B``, ``V`` is ``(B,)``, ``inverse`` returns the
        input's shape and, for a bijection, ``inverse(forward(x')) == x'``. (a) runs whether
        or not ``bad_input`` is given.
      bad_latent: the same for ``inverse`` (the default uses the forward output ``z``:
        ``z.reshape(-1)[0]``, and ``z`` with one more entry on the last axis, for which
        ``forward(inverse(z'))`` must give back ``z'``'s shape, and ``z'`` for a bijection).
      density: optional ``(base, lo, hi, expected)``: turns on the ``density`` property for an
        exact layer (bijection or inference surjection) on ``(B, D)`` data with ``D`` 1 or 2:
        ``exp(Flow(base, [layer]).log_prob)`` integrated over the box ``[lo, hi]`` of data space
        (midpoint rule, ``density_num`` points per axis) must equal ``expected`` within
        ``density_atol``. ``expected`` is the base's mass on the layer's image (1 for a
        bijection onto the whole space; 1/4 for abs on 2-D data with a standard normal base,
        whose image is the positive quadrant). This is the only check of a surjection's ``V``
        in the suite; without it ``V`` of a non-bijection is not checked.
      density_num, density_atol: grid points per axis (default 400) and absolute tolerance
        (default ``1e-3``) of the ``density`` property.
      skip: properties (names from :data:`PROPERTIES`) that cannot apply, with the reason:
        ``{"log_det": "..."}`` or ``(("log_det", "..."),)``. A bare name without a reason, or an
        unknown name, raises ``ValueError``.
      rtol, atol: tolerances of the float32 comparisons (round trip, jit against eager, vmap
        against the batch call).
      log_det_rtol, log_det_atol: tolerances of ``V`` against ``slogdet(jacfwd)`` in float64
        (default relative ``1e-6``).
      right_inverse_atol: tolerance of the stochastic right-inverse check (default 0: exact).
      num_keys: number of keys of the right-inverse check (default 100, Appendix B).

    Raises:
      ValueError: ``skip`` holds a bare name, an unknown property or an empty reason;
        ``num_keys < 2``; ``density`` is not a 4-tuple ``(base, lo, hi, expected)``.

    Source: the registry of constructors of FlowJAX's bijection tests; the theory-as-tests of
    the SurVAE reference code (surjections checked as right inverses, Appendix B).
    """

    name: str
    make: Callable[[Array], Any]
    sample_input: Callable[[Array], Array]
    context: Callable[[Array], Array] | None = None
    bad_input: Callable[[Array], Array] | None = None
    bad_latent: Callable[[Array], Array] | None = None
    density: tuple | None = None
    skip: Any = None
    rtol: float = 1e-5
    atol: float = 1e-5
    log_det_rtol: float = 1e-6
    log_det_atol: float = 1e-9
    right_inverse_atol: float = 0.0
    num_keys: int = 100
    density_num: int = 400
    density_atol: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "skip", _normalise_skip(self.skip))
        if self.num_keys < 2:
            raise ValueError(f"TransformCase {self.name}: num_keys must be >= 2, got {self.num_keys}.")
        if self.density is not None and (not isinstance(self.density, (tuple, list)) or len(self.density) != 4):
            raise ValueError(
                f"TransformCase {self.name}: density must be (base, lo, hi, expected), got {self.density!r}."
            )

    def __repr__(self) -> str:  # short, so that pytest ids and messages stay readable
        return f"TransformCase({self.name!r})"


@dataclasses.dataclass
class Bound:
    """A case made concrete: the layer, its input, context and key (internal to the suite)."""

    case: TransformCase
    transform: Any
    x: Array
    context: Array | None
    key: Array

    @property
    def label(self) -> str:
        cls = type(self.transform).__name__
        return self.case.name if self.case.name == cls else f"{self.case.name} ({cls})"


def bind(target, x=None, *, key=None, context=None, **case_kwargs) -> Bound:
    """Turn a :class:`TransformCase`, or a transform plus an input, into a :class:`Bound`.

    A :class:`Bound` is returned as it is (so a test builds a case's layer once).

    Raises:
      TypeError: a transform without ``x``, or a case with ``x``.
    """
    if isinstance(target, Bound):
        return target
    key = jax.random.key(0) if key is None else key
    if isinstance(target, TransformCase):
        if x is not None:
            raise TypeError("check: give a TransformCase alone, or a transform and x, not both.")
        if case_kwargs:
            target = dataclasses.replace(target, **case_kwargs)
        k_make, k_x, k_c, k_run = jax.random.split(key, 4)
        t = target.make(k_make)
        xs = target.sample_input(k_x)
        c = context if context is not None else (None if target.context is None else target.context(k_c))
        return Bound(target, t, xs, c, k_run)
    if x is None:
        raise TypeError(f"check: give x, a batch (B, ...) for {type(target).__name__}.forward.")
    case = TransformCase(
        name=case_kwargs.pop("name", type(target).__name__),
        make=lambda k: target,
        sample_input=lambda k: x,
        context=None if context is None else (lambda k: context),
        **case_kwargs,
    )
    return Bound(case, target, x, context, key)
