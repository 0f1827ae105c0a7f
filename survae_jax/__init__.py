"""survae_jax: SurVAE flows (Nielsen et al., NeurIPS 2020) in JAX and Flax NNX.

A :class:`Flow` is a base distribution and a chain of layers; each layer's ``forward`` maps
data to latent (X -> Z) and returns ``(z, V)``, its likelihood contribution ``V`` in nats.
Layers live in :mod:`survae_jax.transforms`, distributions in :mod:`survae_jax.distributions`,
conditioner nets in :mod:`survae_jax.nn`, the public property suite in
:mod:`survae_jax.testing`, and the paper's experiments in :mod:`survae_jax.experiments`.
The training loop is :func:`train` (module :mod:`survae_jax.training`), test log-likelihoods
:func:`evaluate`, and a trained model is kept with :func:`save_model` / :func:`load_model`.

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
    x = jax.random.normal(jax.random.key(0), (256, 2)) * jax.numpy.array([1.0, 0.5])
    log_p = jax.jit(lambda f, x: f.log_prob(x))(flow, x)   # (256,) nats, exact
    result = sj.train(flow, x, config=sj.TrainConfig(steps=20, batch_size=64, progress=False))
    test_nats = -sj.evaluate(flow, x).mean()                # flow was trained in place
"""

from survae_jax import distributions, nn, transforms
from survae_jax import training
from survae_jax.checkpoint import load_model, save_model
from survae_jax.evaluation import evaluate
from survae_jax.flow import ConditionalFlow, Flow
from survae_jax.training import TrainConfig, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "ConditionalFlow",
    "train",
    "evaluate",
    "TrainConfig",
    "TrainResult",
    "save_model",
    "load_model",
    "distributions",
    "nn",
    "transforms",
    "training",
    "__version__",
]
