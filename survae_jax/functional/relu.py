"""The ReLU surjection ``z = max(x, 0)`` elementwise (Tables 6 and 7, row "ReLU").

``split(x) = (max(x, 0), m)`` with ``m = -x`` where ``z = 0`` (else 0); ``merge(z, m) = z`` where
``z != 0``, ``-m`` where ``z = 0``. Default fibre: on the fibre of 0, the negative half-line,
``x = -m`` with ``m ~ HN(sigma)``, ``sigma = 1`` or ``exp(scale_net(z))`` per element:
``log p(m|z) = sum_{i: z_i = 0} log HN(m_i; sigma_i)`` (the standard normal renormalised to the
fibre; a plain ``N(0, 1)`` would put half its mass off it). At ``x_i = 0`` the term is
``log HN(0)``: finite. Trap: ``z`` has a point mass at 0, so the base must give ``P(z_i = 0)``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import sum_except_batch
from survae_jax.functional.max import half_normal_log_prob, half_normal_sample
from survae_jax.functional.surjection import Fibre, Surjective, generative_pair, inference_pair

Array = jax.Array


class HalfNormalBelowZero(Fibre):
    """``p(m|z) = prod_{i: z_i = 0} HN(m_i; sigma_i)``, ``log sigma = 0`` or ``scale_net(z)``."""

    def __init__(self, scale_net, name):
        self.scale_net, self.name = scale_net, name

    def log_scale(self, context: Array) -> Array:
        if self.scale_net is None:
            return jnp.zeros((), context.dtype)
        try:
            out = self.scale_net(context)
        except Exception as e:
            e.add_note(f"{self.name}: raised by scale_net on a tensor of shape {tuple(context.shape)}.")
            raise
        if out.shape != context.shape:
            raise ValueError(f"{self.name}: scale_net must return log-scales of shape {tuple(context.shape)}, "
                             f"got {tuple(out.shape)}.")
        return out

    def log_prob(self, m, *, context, key=None):
        lp = half_normal_log_prob(m, self.log_scale(context))
        return sum_except_batch(jnp.where(context == 0, lp, jnp.zeros((), lp.dtype)))

    def sample(self, key, *, context):
        return half_normal_sample(key, context.shape, context.dtype, self.log_scale(context))


def relu_surjection(scale_net: Callable[[Array], Array] | None = None, name: str = "ReLUSurjection") -> Surjective:
    """The ReLU on ``(B, ...)`` tensors."""

    def check(t: Array) -> None:
        if t.ndim < 2:
            raise ValueError(f"{name}: expected a tensor of rank >= 2 (batch first), got shape {tuple(t.shape)}.")
        if not jnp.issubdtype(t.dtype, jnp.floating):
            raise ValueError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}.")

    def split(x):
        check(x)
        zero = jnp.zeros((), x.dtype)
        z = jnp.maximum(x, zero)
        return z, jnp.where(z == 0, -x, zero)

    def merge(z, m):
        check(z)
        return jnp.where(z == 0, -m, z)

    return Surjective(name, split, merge, HalfNormalBelowZero(scale_net, name), check_latent=check, image_check=True)


relu_forward, relu_inverse = inference_pair(relu_surjection)
generative_relu_forward, generative_relu_inverse = generative_pair(relu_surjection)
