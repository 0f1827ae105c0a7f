"""``VAE``: a variational autoencoder as one composable stochastic layer (Appendix A, H.1)."""

from __future__ import annotations

import jax

from survae_jax.transforms.base import StochasticTransform

Array = jax.Array


class VAE(StochasticTransform):
    """A VAE layer: encoder ``q(z|x)`` and decoder ``p(x|z)``, both conditional distributions.

    Forward (X -> Z, stochastic): ``z ~ q(z|x)`` (``encoder.sample_and_log_prob(context=x)``).

    Inverse (Z -> X, stochastic): ``x ~ p(x|z)`` (``decoder.sample(context=z)``).

    Likelihood contribution (Appendix A, Eq. 4; Appendix H.1):
    ``V = log p(x|z) - log q(z|x)`` in nats, shape ``(B,)``. With ``log p(z)`` from the rest
    of the flow, ``log p(z) + V`` is the one-sample ELBO, whose expectation is
    ``log p(x) - KL(q(z|x) || p(z|x)) <= log p(x)``; ``Flow.iwbo`` tightens it.

    Args:
      decoder: ``p(x|z)``, a conditional distribution or conditional flow (called with
        ``context=z``), e.g. ``ConditionalNormal(net)`` or ``ConditionalBernoulli(net)``.
      encoder: ``q(z|x)``, a conditional distribution or conditional flow (``context=x``).

    Argument order: the decoder comes first, as in the reference code's ``VAE(decoder,
    encoder)``: a layer is named by its generative direction (what ``inverse`` does). Pass them
    by keyword, ``VAE(decoder=..., encoder=...)``, to make it plain. Swapped arguments are
    caught on the first ``forward``, when the would-be encoder refuses ``x`` (its net expects
    a latent); the error then says so.

    Example (binarised MNIST, Appendix H.1, as ``survae_jax.experiments.vae``)::

        Flow(StandardNormal((20,)), [VAE(decoder=ConditionalBernoulli(dec_net),   # z (B, 20) -> logits (B, 28, 28, 1)
                                         encoder=ConditionalNormal(enc_net))])    # x -> (B, 40): mean, log-scale

    Shapes: ``x`` ``(B, ...)`` (floats, or integers for a discrete decoder) -> ``z``
    ``(B, ...)`` as the encoder gives it; ``V`` ``(B,)``.

    Raises:
      ValueError: an unconditional encoder or decoder (at construction), a missing ``key``, an
        input of rank < 2, an encoder sample whose batch size differs from ``x``'s, or an
        input/latent that the encoder or decoder refuses (their error, prefixed with ``VAE``).

    Source: Nielsen et al. (2020), Appendix A (Eq. 4) and H.1; Kingma & Welling (2014).
    """

    def __init__(self, decoder, encoder):
        for role, dist in (("decoder", decoder), ("encoder", encoder)):
            if not getattr(dist, "conditional", False):
                raise ValueError(
                    f"VAE: the {role} must be a conditional distribution or conditional flow "
                    f"(it is called with context=), got {type(dist).__name__}."
                )
        self.decoder = decoder
        self.encoder = encoder

    def forward(self, x, *, key=None, context=None):
        """``z ~ q(z|x)``; ``V = log p(x|z) - log q(z|x)`` ``(B,)`` nats; needs ``key``."""
        key = self._require_key(key, "forward")
        self._check_input(x, min_ndim=2, floating=False)
        k_enc, k_dec = jax.random.split(key)
        try:
            z, log_q = self.encoder.sample_and_log_prob(k_enc, context=x)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{self.name}: the encoder refused an input of shape {tuple(x.shape)}: {e} "
                "(VAE takes the decoder p(x|z) first and the encoder q(z|x) second: "
                "were the two swapped? Pass them as VAE(decoder=..., encoder=...).)"
            ) from e
        if z.ndim < 1 or z.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self.name}: expected an encoder sample of shape ({x.shape[0]}, ...), got {tuple(z.shape)}."
            )
        try:
            log_px = self.decoder.log_prob(x, context=z, key=k_dec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.name}: the decoder refused an input of shape {tuple(x.shape)}: {e}") from e
        return z, log_px - log_q

    def inverse(self, z, *, key=None, context=None):
        """``x ~ p(x|z)``; needs ``key``."""
        key = self._require_key(key, "inverse")
        self._check_input(z, min_ndim=2, floating=False, what="latent")
        try:
            return self.decoder.sample(key, context=z)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.name}: the decoder refused a latent of shape {tuple(z.shape)}: {e}") from e
