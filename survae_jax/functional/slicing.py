"""Slicing (Tables 6 and 7, row "Slicing"; Appendix H.3).

``split(x) = (x1, x2)`` along ``axis``, ``x1`` the first ``num_keep`` entries; ``merge(z, x2) =
concat(z, x2)``. Default fibre ``p(x2|z) = N(0, I)``, independent of ``z``; sampling it needs
``size``, the input's length along ``axis``. A learned ``dist`` (``p(x2|z)``, context ``z``, or
for the dual ``q(z2|x)``, context ``x``) may be any distribution. Inference (``Slice``):
``z = x1``, ``V = log p(x2|z)``, exact; generative (``Augment``): ``z = concat(x, z2)``,
``z2 ~ q(z2|x)``, ``V = -log q(z2|x)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from survae_jax.distributions.standard import StandardNormal
from survae_jax.functional.checks import check_tensor, event_axis
from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair
from survae_jax.functional.user import UserDistribution

Array = jax.Array


class NormalRest(Fibre):
    """``p(x2|z) = N(0, I)`` with ``size - num_keep`` entries along ``axis``."""

    def __init__(self, num_keep: int, axis: int, size: int | None, name: str):
        self.num_keep, self.axis, self.size, self.name = num_keep, axis, size, name

    def log_prob(self, x2, *, context, key=None):
        return StandardNormal(x2.shape[1:]).log_prob(x2)

    def sample(self, key, *, context):
        if self.size is None:
            raise ValueError(
                f"{self.name}.inverse with the default standard-normal p(x2|z) needs the input size "
                f"along axis {self.axis}: build Slice(num_keep, size=D)."
            )
        shape = list(context.shape)
        shape[self.axis] = self.size - self.num_keep
        return StandardNormal(shape[1:], context.dtype).sample(key, context=context)


def slice_surjection(num_keep: int, dist=None, *, axis: int = -1, size: int | None = None,
                     name: str = "Slice", role: str = "decoder") -> Surjective:
    """Keep the first ``num_keep`` entries of ``(B, ..., D, ...)`` along ``axis``."""
    if int(num_keep) < 1:
        raise ValueError(f"{name}: the number of kept entries must be >= 1, got {num_keep}.")
    if axis == 0:
        raise ValueError(f"{name}: axis 0 is the batch axis; slice an event axis.")
    if size is not None and int(size) <= int(num_keep):
        raise ValueError(f"{name}: size must exceed num_keep={num_keep}, got size={size}.")

    def check(t: Array, kept: bool) -> int:
        check_tensor(t, name, min_ndim=2)
        ax = event_axis(t, axis, name)
        n = t.shape[ax]
        if kept and n != num_keep:
            want = str(num_keep)
        elif not kept and (n <= num_keep or (size is not None and n != size)):
            want = str(size) if size is not None else f"more than {num_keep}"
        else:
            return ax
        raise ValueError(f"{name}: expected {want} entries along axis {axis}, got shape {tuple(t.shape)}.")

    def split(x):
        return tuple(jnp.split(x, [num_keep], axis=check(x, False)))

    def merge(z, x2):
        ax = check(z, True)
        if x2.ndim != z.ndim or any(a != b for i, (a, b) in enumerate(zip(x2.shape, z.shape)) if i != ax):
            expected = tuple("*" if i == ax else s for i, s in enumerate(z.shape))
            raise ValueError(f"{name}: expected the {role} sample of shape {expected}, got {tuple(x2.shape)}.")
        return jnp.concatenate([z, x2.astype(jnp.result_type(z, x2))], axis=ax)

    fibre = NormalRest(int(num_keep), axis, size, name) if dist is None else UserDistribution(dist, name, role)
    return Surjective(name, split, merge, fibre, check_latent=lambda z: check(z, True))


slice_forward, slice_inverse = inference_pair(slice_surjection)
augment_forward, augment_inverse = generative_pair(
    functools.partial(slice_surjection, name="Augment", role="encoder"), "augment")
