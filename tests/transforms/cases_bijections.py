"""The bijections of ``survae_jax.transforms.bijections`` as ``TransformCase``s for the registry.

Each case is tiny (batch 2-3, a handful of features) so that the whole property suite (round
trip, V against ``slogdet(jacfwd)`` in float64, jit, vmap, grad, float64, bad input) stays fast.
Nets are built without zero-init so that the couplings are not the identity and V is not 0.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.functional import Affine, ElementwiseFamily
from survae_jax.nn import MADE, MLP, DenseNet
from survae_jax.testing import TransformCase
from survae_jax.transforms import Compose, Invert, Scan
from survae_jax.transforms.bijections import (
    ActNorm,
    AdditiveAutoregressive,
    AdditiveCoupling,
    AffineAutoregressive,
    AffineCoupling,
    AutoregressiveBijection,
    Conv1x1,
    Coupling,
    Logit,
    LogisticMixtureCoupling,
    Permute,
    RQSCoupling,
    Reverse,
    Scale,
    Shift,
    Sigmoid,
    Softplus,
    SoftplusInverse,
    Squeeze2d,
    Tanh,
    initialize_actnorm,
)


class FlatPointNet(nnx.Module):
    """Test conditioner for a point-axis split: ``(B, n, 2) -> flatten -> MLP -> (B, m, 2 P)``."""

    def __init__(self, n: int, m: int, p: int, *, rngs: nnx.Rngs):
        self.n, self.m, self.p = n, m, p
        self.mlp = MLP(2 * n, 2 * m * p, hidden=(16,), activation=jnp.tanh, rngs=rngs)

    def __call__(self, x):
        if x.ndim != 3 or x.shape[1:] != (self.n, 2):
            raise ValueError(f"FlatPointNet: expected (B, {self.n}, 2), got {tuple(x.shape)}.")
        return self.mlp(x.reshape(x.shape[0], -1)).reshape(x.shape[0], self.m, 2 * self.p)


@dataclasses.dataclass(frozen=True)
class SinhFamily(ElementwiseFamily):
    """A user-written family: ``z = a sinh(x) + b`` with ``a = exp(theta_0)``, ``theta = (theta_0, b)``."""

    num_params: ClassVar[int] = 2

    def forward(self, x, theta):
        return jnp.exp(theta[..., 0]) * jnp.sinh(x) + theta[..., 1], theta[..., 0] + jnp.log(jnp.cosh(x))

    def inverse(self, z, theta):
        return jnp.arcsinh((z - theta[..., 1]) * jnp.exp(-theta[..., 0]))


def _normal(*shape):
    return lambda k: jax.random.normal(k, shape)


def _uniform(lo, hi, *shape):
    return lambda k: jax.random.uniform(k, shape, minval=lo, maxval=hi)


def _scalar(k):
    """No batch axis at all: every layer must refuse it."""
    return jnp.zeros(())


def _mlp(i, o, key, **kw):
    return MLP(i, o, hidden=(16,), activation=jnp.tanh, rngs=nnx.Rngs(key), **kw)


def _made(d, p, key, order=None, context=None):
    return MADE(d, (8,), p, order=order, context_features=context, activation=jnp.tanh, rngs=nnx.Rngs(key))


def _actnorm(n, axis, shape):
    def make(key):
        a = ActNorm(n, axis=axis)
        x = 3.0 + 2.0 * jax.random.normal(key, (16, *shape[1:]))
        return initialize_actnorm(a, x)

    return make


def _elementwise(name, layer, sample):
    return TransformCase(name, make=lambda k: layer(), sample_input=sample, bad_input=_scalar, bad_latent=_scalar)


CASES: list[TransformCase] = [
    # ------------------------------------------------------------------ couplings
    *[
        TransformCase(
            f"AffineCoupling-{fn}-vector",
            make=lambda k, fn=fn: AffineCoupling(_mlp(2, 4, k), scale_fn=fn),
            sample_input=_normal(3, 4),
        )
        for fn in ("exp", "softplus", "sigmoid", "tanh_exp")
    ],
    TransformCase(
        "AffineCoupling-2d-listing1",
        make=lambda k: AffineCoupling(MLP(1, 2, rngs=nnx.Rngs(k))),
        sample_input=_normal(3, 2),
    ),
    TransformCase(
        "AffineCoupling-num_condition-odd",
        make=lambda k: AffineCoupling(_mlp(2, 6, k), num_condition=2),
        sample_input=_normal(3, 5),
    ),
    TransformCase(
        "AffineCoupling-image-channels",
        make=lambda k: AffineCoupling(DenseNet(2, 4, mid_channels=8, depth=1, growth=4, rngs=nnx.Rngs(k))),
        sample_input=_normal(2, 4, 4, 4),
        # an untrained DenseNet gives shifts of order 10: float32 round-off of (z - t) / scale
        # is then ~1e-5 absolute; the float64 checks hold it to 1e-6 relative
        rtol=1e-4,
        atol=1e-4,
    ),
    TransformCase(
        "AffineCoupling-points-coordinates",
        make=lambda k: AffineCoupling(_mlp(1, 2, k), axis=-1),
        sample_input=_normal(2, 5, 2),
    ),
    TransformCase(
        "AffineCoupling-points-axis1",
        make=lambda k: AffineCoupling(FlatPointNet(3, 3, 2, rngs=nnx.Rngs(k)), axis=1),
        sample_input=_normal(2, 6, 2),
    ),
    TransformCase(
        "AffineCoupling-conditional",
        make=lambda k: AffineCoupling(_mlp(2 + 3, 4, k), conditional=True),
        sample_input=_normal(3, 4),
        context=_normal(3, 3),
    ),
    TransformCase(
        "Coupling-user-family",
        make=lambda k: Coupling(_mlp(2, 6, k), SinhFamily(), num_condition=2),
        sample_input=_normal(3, 5),
    ),
    TransformCase(
        "AdditiveCoupling-vector",
        make=lambda k: AdditiveCoupling(_mlp(2, 2, k)),
        sample_input=_normal(3, 4),
    ),
    TransformCase(
        "AdditiveCoupling-conditional-image",
        make=lambda k: AdditiveCoupling(
            DenseNet(2 + 1, 2, mid_channels=8, depth=1, growth=4, rngs=nnx.Rngs(k)), conditional=True
        ),
        sample_input=_normal(2, 4, 4, 4),
        context=_normal(2, 4, 4, 1),
    ),
    # ------------------------------------------------------------------ spline and mixture couplings
    # inputs N(0, 2^2) with tail_bound 3 (1.5 for the small spline): some entries in the tails;
    # the conditional cases use the default settings (8 bins, 4 components)
    TransformCase(
        "RQSCoupling-bins3-odd",
        make=lambda k: RQSCoupling(_mlp(2, 3 * 8, k), num_bins=3, tail_bound=1.5, num_condition=2),
        sample_input=lambda k: 2.0 * jax.random.normal(k, (3, 5)),
    ),
    TransformCase(
        "RQSCoupling-all-tails",
        make=lambda k: RQSCoupling(_mlp(2, 2 * 23, k), tail_bound=0.5),
        sample_input=lambda k: jnp.array([[0.1, -0.2, 2.0, -3.0], [0.0, 1.0, -1e4, 0.75]]),
    ),
    TransformCase(
        "RQSCoupling-conditional",
        make=lambda k: RQSCoupling(_mlp(2 + 3, 2 * 23, k), conditional=True),
        sample_input=lambda k: 2.0 * jax.random.normal(k, (3, 4)),
        context=_normal(3, 3),
    ),
    TransformCase(
        "LogisticMixtureCoupling-K2-exp-odd",
        make=lambda k: LogisticMixtureCoupling(_mlp(2, 3 * 8, k), num_components=2, scale_fn="exp", num_condition=2),
        sample_input=_normal(3, 5),
    ),
    TransformCase(
        "LogisticMixtureCoupling-conditional",
        make=lambda k: LogisticMixtureCoupling(_mlp(2 + 3, 2 * 14, k), conditional=True),
        sample_input=_normal(3, 4),
        context=_normal(3, 3),
    ),
    # ------------------------------------------------------------------ autoregressive (MAF)
    TransformCase(
        "AffineAutoregressive-natural",
        make=lambda k: AffineAutoregressive(_made(4, 2, k)),
        sample_input=_normal(3, 4),
    ),
    TransformCase(
        "AffineAutoregressive-exp-conditional-permuted",
        make=lambda k: AffineAutoregressive(_made(4, 2, k, (3, 1, 0, 2), context=3), conditional=True,
                                            scale_fn="exp"),
        sample_input=_normal(3, 4),
        context=_normal(3, 3),
    ),
    TransformCase(
        "AdditiveAutoregressive-natural",
        make=lambda k: AdditiveAutoregressive(_made(5, 1, k)),
        sample_input=_normal(3, 5),
    ),
    TransformCase(
        "AdditiveAutoregressive-conditional-reversed",
        make=lambda k: AdditiveAutoregressive(_made(4, 1, k, (3, 2, 1, 0), context=2), conditional=True),
        sample_input=_normal(3, 4),
        context=_normal(3, 2),
    ),
    TransformCase(
        "AutoregressiveBijection-user-family",
        make=lambda k: AutoregressiveBijection(_made(3, 2, k, (1, 2, 0)), SinhFamily()),
        sample_input=_normal(3, 3),
    ),
    TransformCase(
        "Invert-AffineAutoregressive-iaf",
        make=lambda k: Invert(AutoregressiveBijection(_made(4, 2, k, (1, 3, 0, 2)), Affine("softplus"))),
        sample_input=_normal(3, 4),
    ),
    # ------------------------------------------------------------------ ActNorm
    TransformCase("ActNorm-vector", make=_actnorm(4, -1, (3, 4)), sample_input=_normal(3, 4)),
    TransformCase("ActNorm-image", make=_actnorm(3, -1, (2, 4, 4, 3)), sample_input=_normal(2, 4, 4, 3)),
    TransformCase("ActNorm-points-axis1", make=_actnorm(5, 1, (2, 5, 2)), sample_input=_normal(2, 5, 2),
                  bad_input=_normal(2, 4, 2), bad_latent=_normal(2, 4, 2)),
    # ------------------------------------------------------------------ linear / reshapes
    TransformCase("Conv1x1-dense", make=lambda k: Conv1x1(4, rngs=nnx.Rngs(k)), sample_input=_normal(2, 3, 3, 4)),
    TransformCase("Conv1x1-lu", make=lambda k: Conv1x1(4, lu=True, rngs=nnx.Rngs(k)),
                  sample_input=_normal(2, 3, 3, 4)),
    TransformCase("Conv1x1-vector-lu", make=lambda k: Conv1x1(3, lu=True, rngs=nnx.Rngs(k)),
                  sample_input=_normal(3, 3)),
    TransformCase("Squeeze2d", make=lambda k: Squeeze2d(2), sample_input=_normal(2, 4, 4, 2),
                  bad_input=_normal(2, 3, 4, 2)),
    TransformCase("Permute", make=lambda k: Permute(size=4, rngs=nnx.Rngs(k)), sample_input=_normal(3, 4)),
    TransformCase("Reverse", make=lambda k: Reverse(4), sample_input=_normal(3, 4)),
    TransformCase("Reverse-points-axis1", make=lambda k: Reverse(5, axis=1), sample_input=_normal(2, 5, 2),
                  bad_input=_normal(2, 4, 2), bad_latent=_normal(2, 4, 2)),
    # ------------------------------------------------------------------ fixed affine
    TransformCase("Scale-vector", make=lambda k: Scale(jnp.array([0.5, -2.0, 3.0, 1.5])),
                  sample_input=_normal(3, 4)),
    TransformCase("Scale-scalar", make=lambda k: Scale(2.5), sample_input=_normal(2, 3, 3, 2),
                  bad_input=_scalar, bad_latent=_scalar),
    TransformCase("Shift-vector", make=lambda k: Shift(jnp.array([1.0, -2.0, 0.5, 0.0])),
                  sample_input=_normal(3, 4)),
    # ------------------------------------------------------------------ elementwise nonlinear
    _elementwise("Sigmoid", Sigmoid, _normal(3, 4)),
    _elementwise("Logit", Logit, _uniform(0.05, 0.95, 3, 4)),
    _elementwise("Logit-eps", lambda: Logit(eps=0.05), _uniform(0.0, 1.0, 3, 4)),
    _elementwise("Softplus", Softplus, _normal(3, 4)),
    _elementwise("SoftplusInverse", SoftplusInverse, _uniform(0.1, 3.0, 3, 4)),
    _elementwise("Tanh", Tanh, _normal(3, 4)),
    # ------------------------------------------------------------------ deep chains
    # three untrained random couplings in a row: float32 round-off of the round trip ~2e-5; float64 holds 1e-6
    TransformCase("Scan-coupling-steps", make=lambda k: _scan_steps(k, 3), sample_input=_normal(3, 4),
                  rtol=1e-4, atol=1e-4),
]


def _scan_steps(key, n):
    """``n`` flow steps [ActNorm, affine coupling, Permute] stacked by ``Scan``."""
    keys = jax.random.split(key, 2 * n)
    x = 3.0 + 2.0 * jax.random.normal(keys[0], (16, 4))
    steps = [Compose([initialize_actnorm(ActNorm(4), x), AffineCoupling(_mlp(2, 4, keys[2 * i])),
                      Permute(size=4, rngs=nnx.Rngs(keys[2 * i + 1]))]) for i in range(n)]
    return Scan(steps)
