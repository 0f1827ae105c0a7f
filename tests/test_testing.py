"""The property suite itself: correct layers pass it, deliberately wrong layers fail it.

Each wrong layer subclasses a correct one from ``toy_layers.py`` and breaks one thing; the
test asserts that ``check_transform`` raises ``PropertyError`` naming the layer and that
property (and, where the fault is confined, only that property).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from survae_jax.distributions import StandardNormal
from survae_jax.flow import Flow
from survae_jax.testing import (
    PROPERTIES,
    PropertyError,
    TransformCase,
    check_bad_input,
    check_density,
    check_density_integrates,
    check_log_det,
    check_transform,
    integrate_density,
)
from survae_jax.transforms.base import Bijection
from survae_jax.transforms.bijections import Logit, Scale, Tanh
from survae_jax.transforms.surjections import AbsSurjection, SortSurjection
from survae_jax.transforms.surjections.slicing import Slice
from toy_layers import (
    ContextShift,
    ElementwiseAffine,
    GaussianNoise,
    GenerativeAbs,
    InferenceAbs,
    PointMixing,
)

KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (3, 4))


# ----------------------------------------------------------------------------- correct layers
CORRECT = [
    (lambda: ElementwiseAffine(4, key=KEY), X, ("round_trip", "log_det", "deterministic", "bad_input")),
    (lambda: InferenceAbs(4), X, ("right_inverse", "key_required", "deterministic")),
    (lambda: GenerativeAbs(4), jnp.abs(X), ("right_inverse", "key_required", "deterministic")),
    (lambda: GaussianNoise(4), X, ("key_required", "grad")),
]


@pytest.mark.parametrize(("make", "x", "owed"), CORRECT, ids=["bijection", "inference", "generative", "stochastic"])
def test_correct_layers_pass_every_property_of_their_kind(make, x, owed):
    report = check_transform(make(), x)
    assert all(report[p] == "passed" for p in owed), report
    assert all(v == "passed" or v.startswith(("not applicable", "not checked")) for v in report.values()), report
    ran = {p for p, v in report.items() if v == "passed"}
    assert {"shapes", "jit", "vmap", "grad", "float64", "bad_input"} <= ran


def test_images():
    images = jax.random.normal(jax.random.key(2), (2, 3, 3, 4))
    assert check_transform(ElementwiseAffine(4, key=KEY), images)["log_det"] == "passed"


def test_point_clouds_mixed_along_the_point_axis():
    clouds = jax.random.normal(jax.random.key(3), (3, 5, 2))
    report = check_transform(PointMixing(5, key=KEY), clouds, bad_input=lambda k: clouds[:, :4],
                             bad_latent=lambda k: clouds[:, :4])
    assert report["log_det"] == report["vmap"] == "passed"


def test_conditional_layer_case():
    case = TransformCase(
        "ContextShift",
        make=lambda k: ContextShift(4, 3, key=k),
        sample_input=lambda k: jax.random.normal(k, (3, 4)),
        context=lambda k: jax.random.normal(k, (3, 3)),
    )
    report = check_transform(case)
    assert all(v == "passed" or v.startswith("not applicable") for v in report.values()), report


# ----------------------------------------------------------------------------- wrong layers
class WrongSign(ElementwiseAffine):
    """V = -sum(s): the log-determinant with the wrong sign."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z, -v


class NotInverse(ElementwiseAffine):
    """inverse forgets the shift."""

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return z * jnp.exp(-self.log_scale[...])


class LeavesFibre(InferenceAbs):
    """inverse draws points whose |x| is not z."""

    def inverse(self, z, *, key=None, context=None):
        return super().inverse(z, key=key) * 1.01


class ForwardLeavesFibre(GenerativeAbs):
    """forward adds noise, so inverse(forward(x)) != x."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x, key=key)
        return z + 1e-3 * jax.random.normal(key, z.shape), v


class HiddenKey(GenerativeAbs):
    """Uses a fixed key when none is given: hidden randomness, no error."""

    def forward(self, x, *, key=None, context=None):
        return super().forward(x, key=jax.random.key(7) if key is None else key)


class IgnoresKey(GenerativeAbs):
    """Requires a key but always draws from the same fixed key."""

    def forward(self, x, *, key=None, context=None):
        self._require_key(key, "forward")
        return super().forward(x, key=jax.random.key(7))


class NoShapeCheck(ElementwiseAffine):
    """Checks the rank but not the last axis although its parameters have 4 entries: a last
    axis of 5 crashes in JAX's broadcasting (an error that does not name the layer)."""

    def _check(self, x):
        self._check_input(x, min_ndim=2)


class AcceptsScalar(Bijection):
    """A size-agnostic ``z = 2 x`` without a rank check: silently accepts an input without a
    batch axis (rank 0) and returns a scalar "V"."""

    def forward(self, x, *, key=None, context=None):
        return 2.0 * x, jnp.sum(jnp.full(x.shape, math.log(2.0), x.dtype), axis=tuple(range(1, x.ndim)))

    def inverse(self, z, *, key=None, context=None):
        return z / 2.0


class TruncatingInverse(AcceptsScalar):
    """Forward takes any last axis, but inverse keeps only the first 4 entries: inconsistent
    on other sizes (inverse(forward(x')) loses an entry)."""

    def forward(self, x, *, key=None, context=None):
        self._check_input(x, min_ndim=2)
        return super().forward(x)

    def inverse(self, z, *, key=None, context=None):
        self._check_input(z, min_ndim=2)
        return z[..., :4] / 2.0


class AnonymousError(ElementwiseAffine):
    """Refuses a wrong shape, but with a ValueError that does not name the layer."""

    def _check(self, x):
        if x.ndim < 2 or x.shape[-1] != self.features:
            raise ValueError(f"bad shape {x.shape}")


class WrongVAbs(InferenceAbs):
    """Inference abs with V = 0 instead of log p(s|z) = -D log 2: passes every default
    property (right_inverse checks fibres, not V); the density property catches it."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z, jnp.zeros_like(v)


class VectorV(ElementwiseAffine):
    """V per element (B, D) instead of per example (B,)."""

    def forward(self, x, *, key=None, context=None):
        z, _ = super().forward(x)
        return z, jnp.broadcast_to(self.log_scale[...], x.shape)


class Float32Only(ElementwiseAffine):
    """Casts to float32 inside: a silent downcast."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z.astype(jnp.float32), v.astype(jnp.float32)


class BatchNormLike(ElementwiseAffine):
    """Subtracts the batch mean: the answer for one example depends on the others."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z - jnp.mean(z, axis=0) * 0.5, v


class NanGrad(ElementwiseAffine):
    """V = 0 * sqrt(p) with p = 0: the value is right, the gradient is NaN."""

    def __init__(self, features, *, key):
        super().__init__(features, key=key)
        self.p = nnx.Param(jnp.zeros(()))

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z, v + 0.0 * jnp.sqrt(self.p[...])


class Counter(nnx.Variable):
    pass


class Mutates(ElementwiseAffine):
    """Counts its calls in a Variable: forward mutates the module."""

    def __init__(self, features, *, key):
        super().__init__(features, key=key)
        self.calls = Counter(jnp.zeros((), jnp.int32))

    def forward(self, x, *, key=None, context=None):
        self.calls[...] = self.calls[...] + 1
        return super().forward(x)


class KeyDependentBijection(ElementwiseAffine):
    """A 'deterministic' bijection whose output moves with the key."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return (z if key is None else z + jax.random.normal(key, ()) * 1e-2), v


class TracerDependent(ElementwiseAffine):
    """Behaves differently when traced (under jit/vmap) than eagerly."""

    def forward(self, x, *, key=None, context=None):
        z, v = super().forward(x)
        return z + (1.0 if isinstance(z, jax.core.Tracer) else 0.0), v


class ClaimsExact(GenerativeAbs):
    """A generative surjection that claims an exact V (a Flow would then call its ELBO exact)."""

    exact = True


WRONG = [
    ("log_det", lambda: WrongSign(4, key=KEY), X, {"log_det"}),
    ("round_trip", lambda: NotInverse(4, key=KEY), X, {"round_trip"}),
    ("right_inverse", lambda: LeavesFibre(4), X, {"right_inverse"}),
    ("right_inverse", lambda: ForwardLeavesFibre(4), jnp.abs(X), {"right_inverse"}),
    ("key_required", lambda: HiddenKey(4), jnp.abs(X), {"key_required"}),
    ("key_required", lambda: IgnoresKey(4), jnp.abs(X), {"key_required"}),
    ("bad_input", lambda: NoShapeCheck(4, key=KEY), X, {"bad_input"}),
    ("bad_input", lambda: AcceptsScalar(), X, {"bad_input"}),
    ("bad_input", lambda: TruncatingInverse(), X, {"bad_input"}),
    ("bad_input", lambda: AnonymousError(4, key=KEY), X, {"bad_input"}),
    ("shapes", lambda: VectorV(4, key=KEY), X, None),
    ("float64", lambda: Float32Only(4, key=KEY), X, {"float64", "log_det"}),
    ("vmap", lambda: BatchNormLike(4, key=KEY), X, None),
    ("grad", lambda: NanGrad(4, key=KEY), X, {"grad"}),
    ("shapes", lambda: Mutates(4, key=KEY), X, None),
    ("deterministic", lambda: KeyDependentBijection(4, key=KEY), X, None),
    ("jit", lambda: TracerDependent(4, key=KEY), X, None),
    ("shapes", lambda: ClaimsExact(4), jnp.abs(X), {"shapes"}),
]


@pytest.mark.parametrize(
    ("prop", "make", "x", "only"), WRONG, ids=[f"{p}-{i}" for i, (p, *_rest) in enumerate(WRONG)]
)
def test_wrong_layer_fails_with_the_property_named(prop, make, x, only):
    layer = make()
    with pytest.raises(PropertyError) as info:
        check_transform(layer, x, num_keys=20)
    err = info.value
    assert prop in err.properties
    assert f"property '{prop}'" in str(err)
    assert type(layer).__name__ in str(err)
    if only is not None:  # a confined fault breaks nothing else
        assert set(err.properties) == only, err


def test_single_check_and_case_options():
    with pytest.raises(PropertyError, match="property 'log_det'") as info:
        check_log_det(WrongSign(4, key=KEY), X)
    assert info.value.layer == "WrongSign" and info.value.properties == ("log_det",)
    # a skip with a reason silences that property (and is reported)
    report = check_transform(WrongSign(4, key=KEY), X, skip={"log_det": "demonstrating skip"})
    assert report["log_det"] == "skipped: demonstrating skip"
    with pytest.raises(ValueError, match="unknown property"):
        TransformCase("x", make=lambda k: None, sample_input=lambda k: X, skip={"nope": "why"})
    with pytest.raises(ValueError, match="needs a reason"):
        TransformCase("x", make=lambda k: None, sample_input=lambda k: X, skip={"jit": ""})
    with pytest.raises(TypeError, match="give x"):
        check_transform(WrongSign(4, key=KEY))
    assert set(PROPERTIES) >= {"log_det", "right_inverse", "bad_input"}
    with pytest.raises(ValueError, match="unknown property"):
        check_transform(WrongSign(4, key=KEY), X, properties=["nope"])
    # a subset runs only what was asked
    assert check_transform(WrongSign(4, key=KEY), X, properties=["round_trip"]) == {"round_trip": "passed"}
    # fail_fast stops at the first broken property (log_det comes before jit, vmap, ...)
    with pytest.raises(PropertyError) as info:
        check_transform(Float32Only(4, key=KEY), X, fail_fast=True)
    assert info.value.properties == ("log_det",)


def test_density_integrates_and_catches_a_wrong_log_det():
    base = StandardNormal((2,))
    assert abs(integrate_density(base, -7.0 * jnp.ones(2), 7.0 * jnp.ones(2), num=300) - 1.0) < 1e-5
    assert abs(check_density_integrates(Flow(base, [ElementwiseAffine(2, key=KEY)]), [-8, -8], [8, 8]) - 1) < 1e-3
    one_d = Flow(StandardNormal((1,)), [ElementwiseAffine(1, key=KEY)])
    assert abs(integrate_density(one_d, -9.0, 9.0, num=2000) - 1.0) < 1e-6
    with pytest.raises(PropertyError, match="density_integrates"):
        check_density_integrates(Flow(base, [WrongSign(2, key=KEY)]), [-8, -8], [8, 8])
    with pytest.raises(ValueError, match="exact"):
        integrate_density(Flow(base, [GaussianNoise(2)]), -1.0, 1.0)


def test_scalar_bounds_hold_for_every_axis():
    base = StandardNormal((2,))
    flow = Flow(base, [ElementwiseAffine(2, key=KEY)])
    per_axis = check_density_integrates(flow, [-8, -8], [8, 8], num=200)
    assert check_density_integrates(flow, -8, 8, num=200) == pytest.approx(per_axis, abs=1e-12)
    # Half the box on each axis (a standard normal base): a quarter of the mass, not a 1-D integral.
    assert integrate_density(base, 0.0, 8.0, num=400) == pytest.approx(0.25, abs=1e-4)
    assert integrate_density(base, 0.0, 8.0, num=400, dim=2) == pytest.approx(0.25, abs=1e-4)
    with pytest.raises(ValueError, match="must be 1-D or 2-D, got dim=3"):
        integrate_density(base, 0.0, 8.0, dim=3)


# ----------------------------------------------------------------------------- bad_input default
class Sinh(Bijection):
    """A user's elementwise bijection on any shape: ``z = sinh(x)``, ``V = sum log cosh(x)``."""

    def forward(self, x, *, key=None, context=None):
        self._check_input(x, min_ndim=1)
        v = jnp.sum(jnp.log(jnp.cosh(x)).reshape(x.shape[0], -1), axis=1)
        return jnp.sinh(x), v

    def inverse(self, z, *, key=None, context=None):
        self._check_input(z, min_ndim=1)
        return jnp.arcsinh(z)


UNIT = jax.random.uniform(jax.random.key(0), (16, 3))


@pytest.mark.parametrize("make", [Logit, lambda: Scale(2.0), Tanh, AbsSurjection, Sinh],
                         ids=["Logit", "Scale", "Tanh", "AbsSurjection", "user-Sinh"])
def test_size_agnostic_layers_pass_with_no_extra_arguments(make):
    """The default bad input (one more entry on the last axis) is a valid input for a layer
    that works on any size: accepted and handled consistently, it passes; no batch axis fails."""
    report = check_transform(make(), UNIT)
    assert report["bad_input"] == "passed"
    assert all(v == "passed" or v.startswith(("not applicable", "not checked")) for v in report.values()), report


def test_explicit_bad_input_stays_strict():
    # a size-agnostic layer accepts (3, 5) by default, but a case that names it as bad must be refused
    with pytest.raises(PropertyError, match="the case's bad_input"):
        check_bad_input(Sinh(), X, bad_input=lambda k: jnp.ones((3, 5)))
    with pytest.raises(PropertyError, match="the case's bad_latent"):
        check_bad_input(Sinh(), X, bad_latent=lambda k: jnp.ones((3, 5)))
    check_bad_input(ElementwiseAffine(4, key=KEY), X, bad_input=lambda k: jnp.ones((3, 5)))


# ----------------------------------------------------------------------------- V of surjections
X2 = jax.random.normal(jax.random.key(4), (3, 2))
# abs on R^2 maps onto the positive quadrant: the flow's density integrates to the standard
# normal base's mass there, 1/4
ABS_DENSITY = (StandardNormal((2,)), [-6.0, -6.0], [6.0, 6.0], 0.25)


def test_report_says_v_of_a_surjection_is_not_checked():
    report = check_transform(WrongVAbs(2), X2, properties=["log_det", "density", "shapes"])
    assert report["shapes"] == "passed"
    for p in ("log_det", "density"):
        assert "NOT checked by check_transform" in report[p]
        assert "check_density_integrates(Flow(base, [layer])" in report[p]
    assert report["density"].startswith("not checked")
    stochastic = check_transform(GaussianNoise(2), X2, properties=["log_det", "density"])
    assert all("NOT checked" in v and "not applicable" in v for v in stochastic.values()), stochastic


def test_density_property_catches_a_wrong_v_of_an_inference_surjection():
    assert check_transform(InferenceAbs(2), X2, density=ABS_DENSITY, properties=["density"]) == {"density": "passed"}
    check_density(AbsSurjection(), X2, density=ABS_DENSITY)
    check_density(ElementwiseAffine(2, key=KEY), X2, density=(StandardNormal((2,)), [-8, -8], [8, 8], 1.0))
    one_d = (StandardNormal((1,)), -7.0, 7.0, 0.5)  # abs in 1-D: the half line, mass 1/2
    check_density(AbsSurjection(), X2[:, :1], density=one_d)
    with pytest.raises(PropertyError, match="property 'density'") as info:
        check_transform(WrongVAbs(2), X2, density=ABS_DENSITY, num_keys=20)
    assert info.value.properties == ("density",) and "integrates to 1.0" in str(info.value)
    # the same by hand, as the report advises
    with pytest.raises(PropertyError, match="density_integrates"):
        check_density_integrates(Flow(ABS_DENSITY[0], [WrongVAbs(2)]), *ABS_DENSITY[1:3], expected=0.25)
    # misuse is reported, not silently passed
    with pytest.raises(PropertyError, match="D 1 or 2"):
        check_density(InferenceAbs(4), X, density=ABS_DENSITY)
    with pytest.raises(ValueError, match="density must be"):
        TransformCase("x", make=lambda k: None, sample_input=lambda k: X, density=(1, 2))
    assert check_transform(GenerativeAbs(2), jnp.abs(X2), density=ABS_DENSITY,
                           properties=["density"])["density"].startswith("not applicable")


@pytest.mark.parametrize(
    ("make", "density"),
    [
        # slicing keeps x1 (base N(0, 1)) and scores x2 by its standard normal decoder: mass 1
        (lambda: Slice(1, size=2), (StandardNormal((1,)), [-7.0, -7.0], [7.0, 7.0], 1.0)),
        # sorting maps R^2 onto {z1 <= z2}, half of the standard normal's mass
        (SortSurjection, (StandardNormal((2,)), [-7.0, -7.0], [7.0, 7.0], 0.5)),
    ],
    ids=["Slice", "SortSurjection"],
)
def test_density_property_on_the_project_s_inference_surjections(make, density):
    check_density(make(), X2, density=density)
