"""Speed of one training step of the image flows (Appendix I.3) on MNIST: loop block vs per-step jit.

For each model of a preset (``--preset cpu`` by default), on MNIST batches of 32, measured:

* ``library``: ``survae_jax.train`` (compiled blocks of ``--block`` steps in one
  ``lax.fori_loop``), compile excluded;
* ``per step``: the same loss and Adamax update in one plain ``jax.jit`` call per step (the
  model ``nnx.split`` once, buffers donated).

Reported: steps/s by wall clock and by process CPU time (all threads: on a shared machine this
estimates the rate alone), and the steps an hour gives. Usage:
``python benchmarks/image_step.py [--preset cpu] [--steps 40] [--block 20]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from survae_jax.experiments.image import PRESETS, build_model
from survae_jax.experiments.registry import num_parameters
from survae_jax.data.images import load_mnist_images
from survae_jax.training import TrainConfig, nll_loss, train


def per_step(cfg, data, steps):
    model = build_model(cfg)
    opt = optax.adamax(1e-3)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = (params, rest, opt.init(params))

    @jax.jit
    def step(params, rest, opt_state, batch, key):
        def loss_of(p):
            return nll_loss(nnx.merge(graphdef, p, rest), batch, key)
        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    step = jax.jit(step.__wrapped__, donate_argnums=(0, 1, 2))
    batches = [jnp.asarray(data[i * 32:(i + 1) * 32]) for i in range(steps + 1)]
    t0 = time.perf_counter()
    *state, loss = step(*state, batches[0], jax.random.key(0))
    loss.block_until_ready()
    compile_s = time.perf_counter() - t0
    t, c = time.perf_counter(), time.process_time()
    for i in range(steps):
        *state, loss = step(*state, batches[i + 1], jax.random.key(i + 1))
    float(loss)
    return steps / (time.perf_counter() - t), steps / (time.process_time() - c), compile_s


def library(cfg, data, steps, block):
    model = build_model(cfg)
    res = train(model, data[: 32 * (steps + block) * 2], optimizer=optax.adamax(1e-3), init_fn=None,
                config=TrainConfig(steps=steps, batch_size=32, log_every=block, checkpoint_every=0, progress=False))
    return res.steps_per_second, res.step / max(res.cpu_time_s, 1e-9), res.compile_time_s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--block", type=int, default=20)
    p.add_argument("--models", default="baseline,maxpoolflow")
    p.add_argument("--which", default="per_step,library")
    args = p.parse_args()
    data = load_mnist_images("train")[0][:20_000]
    for model in args.models.split(","):
        cfg = PRESETS[args.preset]("mnist", model)
        print(f"{model}: {num_parameters(build_model(cfg)):,} parameters", flush=True)
        for which in args.which.split(","):
            if which == "per_step":
                wall, cpu, comp = per_step(cfg, data, args.steps)
            else:
                wall, cpu, comp = library(cfg, data, args.steps, args.block)
            print(f"  {which:<9} {wall:6.2f} steps/s wall, {cpu:6.2f} steps/s per CPU-second, "
                  f"compile {comp:5.1f} s, {3600 * wall:,.0f} steps/hour", flush=True)


if __name__ == "__main__":
    main()
