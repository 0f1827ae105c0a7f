"""A hand-written JAX peer of the toy2d baseline flow: one fused train step, no library code.

Same architecture as ``survae_jax.experiments.toy2d.build_baseline``: 4 affine couplings on
``(B, 2)`` points, conditioner MLP 1 -> 200 -> 100 -> 2 with ReLU, a coordinate swap between
couplings, standard normal base, Adam (optax). Used by ``benchmarks/run.py`` as the speed peer.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def init_params(key, num_couplings=4, hidden=(200, 100)):
    """Weights of ``num_couplings`` MLPs ``1 -> hidden -> 2`` (last layer zero)."""
    params = []
    for k in jax.random.split(key, num_couplings):
        widths = [1, *hidden, 2]
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            k, sub = jax.random.split(k)
            last = i == len(widths) - 2
            w = jnp.zeros((a, b)) if last else jax.random.normal(sub, (a, b)) / math.sqrt(a)
            layers.append((w, jnp.zeros((b,))))
        params.append(layers)
    return params


def log_prob(params, x, scale_fn="exp"):
    """Exact log-density ``(B,)`` of the coupling flow, nats."""
    total = jnp.zeros(x.shape[0])
    for i, layers in enumerate(params):
        h = x[:, :1]
        for j, (w, b) in enumerate(layers):
            h = h @ w + b
            if j < len(layers) - 1:
                h = jax.nn.relu(h)
        s, t = h[:, 0], h[:, 1]
        if scale_fn == "exp":
            z2, ld = jnp.exp(s) * x[:, 1] + t, s
        else:
            sc = jax.nn.softplus(s)
            z2, ld = sc * x[:, 1] + t, jnp.log(sc)
        x = jnp.stack([x[:, 0], z2], axis=1)
        total = total + ld
        if i < len(params) - 1:
            x = x[:, ::-1]
    return total - 0.5 * jnp.sum(x**2, axis=1) - math.log(2 * math.pi)


def make_step(optimizer, batch_size, scale_fn="exp"):
    """``step(params, opt_state, data, key) -> (params, opt_state, loss)``; random batches."""

    def step(params, opt_state, data, key):
        idx = jax.random.randint(key, (batch_size,), 0, data.shape[0])
        loss_fn = lambda p: -jnp.mean(log_prob(p, data[idx], scale_fn))  # noqa: E731
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step
