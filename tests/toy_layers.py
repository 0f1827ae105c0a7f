"""Small hand-written layers for testing the property suite itself (tests/test_testing.py).

Correct ones (each kind: bijection, inference and generative surjection, stochastic layer,
conditional bijection, point-cloud mixing) must pass ``check_transform``; the deliberately
wrong ones in test_testing.py subclass them and break exactly one thing.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.transforms.base import (
    Bijection,
    GenerativeSurjection,
    InferenceSurjection,
    StochasticTransform,
)


class ElementwiseAffine(Bijection):
    """``z = x * exp(s) + t`` elementwise on the last axis, ``V = sum(s)`` per example."""

    def __init__(self, features: int, *, key):
        k1, k2 = jax.random.split(key)
        self.features = features
        self.log_scale = nnx.Param(0.3 * jax.random.normal(k1, (features,)))
        self.shift = nnx.Param(0.3 * jax.random.normal(k2, (features,)))

    def _check(self, x):
        self._check_input(x, min_ndim=2)
        if x.shape[-1] != self.features:
            raise ValueError(f"{self.name}: expected last axis {self.features}, got shape {x.shape}.")

    def _log_det(self, x):
        per_row = jnp.sum(self.log_scale[...]).astype(x.dtype)
        return jnp.full((x.shape[0],), per_row * (math.prod(x.shape[1:]) // self.features), x.dtype)

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        return x * jnp.exp(self.log_scale[...]) + self.shift[...], self._log_det(x)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return (z - self.shift[...]) * jnp.exp(-self.log_scale[...])


class PointMixing(Bijection):
    """Mix the points of a cloud ``(B, N, 2)``: ``z = W x`` along axis 1, ``V = 2 log|det W|``."""

    def __init__(self, num_points: int, *, key):
        self.num_points = num_points
        self.w = nnx.Param(jnp.eye(num_points) + 0.3 * jax.random.normal(key, (num_points, num_points)))

    def _check(self, x):
        self._check_input(x, event_shape=(self.num_points, None))

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        w = self.w[...].astype(x.dtype)
        v = x.shape[-1] * jnp.linalg.slogdet(w)[1]
        return jnp.einsum("nm,bmd->bnd", w, x), jnp.full((x.shape[0],), v, x.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return jnp.einsum("nm,bmd->bnd", jnp.linalg.inv(self.w[...].astype(z.dtype)), z)


class ContextShift(Bijection):
    """Conditional shift ``z = x + c @ A`` with ``c`` ``(B, C)``; ``V = 0``. Needs ``context``."""

    def __init__(self, features: int, context_features: int, *, key):
        self.features = features
        self.a = nnx.Param(jax.random.normal(key, (context_features, features)))

    def _shift(self, x, context):
        self._check_input(x, event_shape=(self.features,))
        if context is None:
            raise ValueError(f"{self.name} needs context=.")
        return context @ self.a[...].astype(x.dtype)

    def forward(self, x, *, key=None, context=None):
        return x + self._shift(x, context), jnp.zeros((x.shape[0],), x.dtype)

    def inverse(self, z, *, key=None, context=None):
        return z - self._shift(z, context)


class InferenceAbs(InferenceSurjection):
    """``z = |x|``, ``V = log p(s|z) = -D log 2``; inverse draws the signs uniformly (Table 7)."""

    def __init__(self, features: int):
        self.features = features

    def _check(self, x):
        self._check_input(x, event_shape=(self.features,))

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        return jnp.abs(x), jnp.full((x.shape[0],), -self.features * math.log(2.0), x.dtype)

    def _signs(self, key, z):
        return jnp.where(jax.random.bernoulli(key, 0.5, z.shape), 1.0, -1.0).astype(z.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return self._signs(self._require_key(key, "inverse"), z) * z


class GenerativeAbs(GenerativeSurjection):
    """Data ``x >= 0``: ``z = s x`` with ``s`` uniform signs, ``V = -log q(s|x) = D log 2`` (Table 6)."""

    def __init__(self, features: int):
        self.features = features

    def _check(self, x):
        self._check_input(x, event_shape=(self.features,))

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        key = self._require_key(key, "forward")
        s = jnp.where(jax.random.bernoulli(key, 0.5, x.shape), 1.0, -1.0).astype(x.dtype)
        return s * x, jnp.full((x.shape[0],), self.features * math.log(2.0), x.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        return jnp.abs(z)


class GaussianNoise(StochasticTransform):
    """A linear-Gaussian VAE layer: ``q(z|x) = N(a x, 1)``, ``p(x|z) = N(z / a, 1)``; V one sample."""

    def __init__(self, features: int):
        self.features = features
        self.a = nnx.Param(jnp.asarray(1.5))

    def _check(self, x):
        self._check_input(x, event_shape=(self.features,))

    @staticmethod
    def _log_normal(x, mean):
        return jnp.sum(-0.5 * (x - mean) ** 2 - 0.5 * math.log(2 * math.pi), axis=-1)

    def forward(self, x, *, key=None, context=None):
        self._check(x)
        a = self.a[...].astype(x.dtype)
        z = a * x + jax.random.normal(self._require_key(key, "forward"), x.shape, x.dtype)
        return z, self._log_normal(x, z / a) - self._log_normal(z, a * x)

    def inverse(self, z, *, key=None, context=None):
        self._check(z)
        a = self.a[...].astype(z.dtype)
        return z / a + jax.random.normal(self._require_key(key, "inverse"), z.shape, z.dtype)
