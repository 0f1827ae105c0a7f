"""The absolute-value surjection ``z = |x|`` (Tables 6 and 7, row "Abs"; Appendix D).

``split(x) = (|x|, b)`` with sign bits ``b = 1[x >= 0]`` (``sign(0) = +1``: the set ``x = 0`` has
measure zero, so the choice changes no density and leaves no NaN); ``merge(z, b) = (2b - 1) z``.
Default fibre: fair coins, ``log p(b|z) = -n log 2`` for ``n`` abs'd elements per example.
With ``features`` only ``x[..., features]`` gets the abs; the other entries pass through.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from survae_jax.functional.checks import check_tensor
from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair

Array = jax.Array


class FairSigns(Fibre):
    """``p(b|z) = 2^-n``: independent fair sign bits (``int32``) of the abs'd part's shape."""

    def __init__(self, features: tuple[int, ...] | None):
        self.features = features

    def log_prob(self, b, *, context, key=None):
        return jnp.full((b.shape[0],), -math.prod(b.shape[1:]) * math.log(2.0), context.dtype)

    def sample(self, key, *, context):
        return jax.random.bernoulli(key, 0.5, _take(context, self.features).shape).astype(jnp.int32)


def _take(x: Array, features) -> Array:
    return x if features is None else x[..., jnp.asarray(features)]


def _put(x: Array, part: Array, features) -> Array:
    return part if features is None else x.at[..., jnp.asarray(features)].set(part)


def abs_surjection(features: Sequence[int] | None = None, name: str = "AbsSurjection") -> Surjective:
    """The abs operation on ``(B, ..., D)`` tensors, on every entry or on ``x[..., features]``."""
    if features is not None:
        features = tuple(int(i) for i in features)
        if not features or len(set(features)) != len(features):
            raise ValueError(f"{name}: features must be distinct indices on the last axis, got {features}.")

    def check(x: Array) -> None:
        check_tensor(x, name, min_ndim=2)
        if features is not None:
            d = x.shape[-1]
            if any(not -d <= i < d for i in features):
                raise ValueError(
                    f"{name}: features {features} out of range for a last axis of length {d} "
                    f"(input shape {tuple(x.shape)})."
                )
            if len({i % d for i in features}) != len(features):
                raise ValueError(
                    f"{name}: features {features} name the same element twice for a last axis "
                    f"of length {d} (input shape {tuple(x.shape)})."
                )

    def split(x):
        check(x)
        part = _take(x, features)
        return _put(x, jnp.abs(part), features), (part >= 0).astype(jnp.int32)

    def merge(z, b):
        check(z)
        part = _take(z, features)
        if tuple(b.shape) != tuple(part.shape):
            raise ValueError(f"{name}: sign bits must have shape {tuple(part.shape)}, got {tuple(b.shape)}.")
        return _put(z, jnp.where(b == 1, part, -part), features)

    return Surjective(name, split, merge, FairSigns(features), check_latent=check, image_check=True)


abs_forward, abs_inverse = inference_pair(abs_surjection)
generative_abs_forward, generative_abs_inverse = generative_pair(abs_surjection)
