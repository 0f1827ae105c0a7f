"""A VAE as one stochastic layer (Appendix A, Eq. 4; Appendix H.1).

forward: ``z ~ q(z|x)``, ``V = log p(x|z) - log q(z|x)``; inverse: ``x ~ p(x|z)``. With
``log p(z)`` from the rest of the flow, ``log p(z) + V`` is the one-sample ELBO,
``E[log p(z) + V] = log p(x) - KL(q(z|x) || p(z|x))``.
"""

from __future__ import annotations

import jax

from survae_jax.functional.surjection import require_key
from survae_jax.functional.user import UserDistribution

Array = jax.Array


def _check(t: Array, name: str, what: str) -> None:
    if t.ndim < 2:
        raise ValueError(f"{name}: expected {what} of rank >= 2 (batch first), got shape {tuple(t.shape)}.")


def vae_forward(x: Array, decoder, encoder, *, key=None, context=None, name: str = "VAE") -> tuple[Array, Array]:
    """``(z, V)``: ``z ~ q(z|x)`` (``encoder``, context ``x``), ``V = log p(x|z) - log q(z|x)``."""
    k_enc, k_dec = jax.random.split(require_key(key, f"{name}.forward"))
    _check(x, name, "input")
    try:
        z, log_q = UserDistribution(encoder, name, "encoder q(z|x)").sample_and_log_prob(k_enc, context=x)
    except Exception as e:
        e.add_note(f"{name} takes the decoder p(x|z) first and the encoder q(z|x) second: were the two "
                   "swapped? Pass them as VAE(decoder=..., encoder=...).")
        raise
    if z.ndim < 1 or z.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: expected an encoder sample of shape ({x.shape[0]}, ...), got {tuple(z.shape)}.")
    log_px = UserDistribution(decoder, name, "decoder p(x|z)").log_prob(x, context=z, key=k_dec)
    return z, log_px - log_q


def vae_inverse(z: Array, decoder, encoder=None, *, key=None, context=None, name: str = "VAE") -> Array:
    """``x ~ p(x|z)`` (``decoder``, context ``z``)."""
    key = require_key(key, f"{name}.inverse")
    _check(z, name, "latent")
    return UserDistribution(decoder, name, "decoder p(x|z)").sample(key, context=z)
