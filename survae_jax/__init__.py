"""survae_jax: SurVAE flows (Nielsen et al., NeurIPS 2020) in JAX and Flax NNX.

A :class:`Flow` is a base distribution and a chain of layers; each layer's ``forward`` maps
data to latent (X -> Z) and returns ``(z, V)``, its likelihood contribution ``V`` in nats.
Layers live in :mod:`survae_jax.transforms`, distributions in :mod:`survae_jax.distributions`,
conditioner nets in :mod:`survae_jax.nn`, the public property suite in
:mod:`survae_jax.testing`, and the paper's experiments in :mod:`survae_jax.experiments`.

Quick start::

    import jax
    from flax import nnx
    import survae_jax as sj

    rngs = nnx.Rngs(0)
    flow = sj.Flow(sj.distributions.StandardNormal((2,)), [
        sj.transforms.AffineCoupling(sj.nn.MLP(1, 2, rngs=rngs)),
        sj.transforms.Reverse(2),
        sj.transforms.AffineCoupling(sj.nn.MLP(1, 2, rngs=rngs)),
    ])
    log_p = jax.jit(lambda f, x: f.log_prob(x))(flow, x)   # (B,) nats, exact
"""

from survae_jax import distributions, nn, transforms
from survae_jax.flow import ConditionalFlow, Flow

__version__ = "0.1.0"

__all__ = ["Flow", "ConditionalFlow", "distributions", "nn", "transforms", "__version__"]
