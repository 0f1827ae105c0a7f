"""Inference rounding surjection ``RoundingSurjection`` (Table 7, "Rounding"): ``z = floor(x)``.

Its generative twin (data discrete, latent continuous) is dequantization: see
``survae_jax.transforms.surjections.dequantization``.
Direction: ``forward`` is data -> latent (X -> Z).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import InferenceSurjection
from survae_jax.transforms.surjections import _conditioning as cond

Array = jax.Array


def add_below_next_integer(k: Array, u: Array) -> Array:
    """``k + u`` for integer-valued ``k`` and ``u`` in ``[0, 1)``, kept strictly below ``k + 1``.

    Shapes: ``k`` and ``u`` floating arrays of the same (or broadcastable) shape, e.g.
    ``(B, D)``; the result has their broadcast shape and dtype.

    In floating point ``k + u`` can round up to ``k + 1`` (float32: ``2 + (1 - 2**-24) == 3``),
    which would leave the fibre ``[k, k + 1)`` of ``floor``; such sums are moved to the largest
    float below ``k + 1``. Exact otherwise. Used by rounding and dequantization so that
    ``floor(k + u) == k`` always holds for ``u`` in ``[0, 1]``.

    Raises: nothing; no values are checked (the layers check ``u`` first). A ``u`` outside
    ``[0, 1]`` is not corrected beyond the clamp below ``k + 1``.

    Source: the fibre ``[k, k + 1)`` of ``floor`` in Nielsen et al. (2020), Tables 6 and 7
    ("Rounding").
    """
    return jnp.minimum(k + u, jnp.nextafter(k + 1, k))


_DECODER_HINT = (
    "The decoder p(u|z) must put its samples in [0, 1): list Logit() data side first in its "
    "flow (sampling runs the sigmoid), not Sigmoid()."
)


class RoundingSurjection(InferenceSurjection):
    """Inference rounding surjection (Table 7, "Rounding"): ``z = floor(x)`` elementwise.

    Forward (X -> Z, deterministic): ``z = floor(x)``, a float tensor of integer values; an
    input on an integer stays there (``floor(3.0) = 3.0``, ``floor(-2.0) = -2.0``,
    ``floor(-0.5) = -1.0``).

    Inverse (Z -> X, stochastic): ``x = z + u`` with ``u ~ p(u|z)`` on ``[0, 1)^D``, so that
    ``x`` lies in the fibre ``[z, z + 1)`` (a sum that would round up to ``z + 1`` is kept just
    below it).

    Likelihood contribution (Table 7, written there ``log p(z|x)``; the density of ``x`` on
    the fibre of ``z``): ``V = log p(x|z) = log p(u = x - z | z)`` in nats, shape ``(B,)``,
    exact (Appendix B). With the default, parameter-free uniform ``p(u|z) = U[0, 1)^D``,
    ``V = 0``.

    Args:
      decoder: optional learned ``p(u|z)``: a distribution over ``[0, 1)^D`` with the shape of
        ``x``, e.g. ``ConditionalFlow(ConditionalNormal(net), [Logit()])`` (layers are listed
        data side first: ``Logit`` maps ``u`` to the Gaussian base, and sampling runs its
        inverse, the sigmoid; ``Sigmoid()`` there would be the wrong way round); a conditional
        one gets ``context=z``. ``None`` for the uniform.

    Shapes: ``x`` and ``z`` ``(B, ...)``, ``V`` ``(B,)``.

    Raises:
      ValueError: a non-floating or rank-0/1 input, ``inverse`` without ``key``, a decoder
        sample whose shape differs from ``z``'s, or (when the sample is concrete, not under
        ``jit``/``vmap``) a decoder sample with an entry outside ``[0, 1]`` or NaN.

    Values: the fractional part ``u = x - z`` is rounded below 1 (``x = -1e-10`` in float32
    gives ``z = -1`` and ``x - z`` rounds to ``1.0``; it is then the largest float below 1). A
    decoder sample of exactly 1 is moved below 1; under ``jit`` one outside ``[0, 1]`` cannot
    raise, is not corrected, and ``floor(x)`` then differs from ``z`` (NaN stays NaN).
    A learned decoder that puts ``u`` below the float spacing of ``z`` (a saturated sigmoid
    near 0, large ``|z|``) loses it in ``z + u``: ``x = z`` and ``forward`` then evaluates
    ``p(u = 0 | z)``, which a logit-based decoder reports as infinite. Keep such decoders
    off saturation (or work in float64).

    Source: Nielsen et al. (2020), Table 7.
    """

    def __init__(self, decoder=None):
        self.decoder = decoder

    def forward(self, x, *, key=None, context=None):
        """``z = floor(x)``; ``V = log p(x - z | z)`` ``(B,)`` nats (0 for the uniform default)."""
        self._check_input(x, min_ndim=2)
        z = jnp.floor(x)
        if self.decoder is None:
            return z, jnp.zeros((x.shape[0],), x.dtype)
        one = jnp.ones((), x.dtype)
        u = jnp.minimum(x - z, jnp.nextafter(one, jnp.zeros((), x.dtype)))
        return z, cond.log_prob(self.decoder, u, z, key, layer=self.name)

    def inverse(self, z, *, key=None, context=None):
        """``x = z + u``, ``u ~ p(u|z)`` on ``[0, 1)``; needs ``key``."""
        key = self._require_key(key, "inverse")
        self._check_input(z, min_ndim=2, what="latent")
        if self.decoder is None:
            u = jax.random.uniform(key, z.shape, z.dtype)
        else:
            u = cond.sample(self.decoder, key, z.shape[0], z, layer=self.name)
            cond.check_like(self.name, "decoder sample", u, z)
            cond.in_unit_interval(self.name, "decoder sample u", u, _DECODER_HINT)
        return add_below_next_integer(z, u.astype(z.dtype))
