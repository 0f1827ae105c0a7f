"""``VAE``: a variational autoencoder as one stochastic layer; the maths is
:mod:`survae_jax.functional.vae`."""

from __future__ import annotations

from survae_jax.functional.vae import vae_forward, vae_inverse
from survae_jax.transforms.base import StochasticTransform


class VAE(StochasticTransform):
    """Encoder ``q(z|x)`` and decoder ``p(x|z)`` as one layer (Appendix A, Eq. 4; Appendix H.1).

    - forward: ``z ~ q(z|x)``; inverse: ``x ~ p(x|z)``;
    - ``V = log p(x|z) - log q(z|x)``: ``log p(z) + V`` is the one-sample ELBO; both are
      conditional distributions or flows (e.g. ``ConditionalNormal(net)``).

    Shapes: ``x (B, ...)`` (integers too, for a discrete decoder) -> ``z (B, ...)``.

    Argument order: the decoder comes first, ``VAE(decoder, encoder)``, as in the reference code
    (a layer is named by its generative direction); pass both by keyword to make it plain. Swapped
    arguments show on the first ``forward``: the would-be encoder refuses ``x`` and its error
    carries a note saying so. E.g. on binarised MNIST (``survae_jax.experiments.vae``)::

        Flow(StandardNormal((20,)), [VAE(decoder=ConditionalBernoulli(dec_net),  # z (B, 20) -> logits (B, 28, 28, 1)
                                         encoder=ConditionalNormal(enc_net))])   # x -> (B, 40): mean, log-scale

    Source: Nielsen et al. (2020), Appendix A and H.1; Kingma & Welling (2014).
    """

    def __init__(self, decoder, encoder):
        for role, dist in (("decoder", decoder), ("encoder", encoder)):
            if not getattr(dist, "conditional", False):
                raise ValueError(
                    f"VAE: the {role} must be a conditional distribution or conditional flow "
                    f"(it is called with context=), got {type(dist).__name__}."
                )
        self.decoder, self.encoder = decoder, encoder

    functional = (vae_forward, vae_inverse)

    def functional_args(self):
        return {"decoder": self.decoder, "encoder": self.encoder, "name": self.name}
