"""Training speed of the ``vae`` experiment beside a PyTorch peer of the same model, interleaved.

Model: the reference's MNIST VAE (latent 20; encoder 784 -> 512 -> 256 -> 40 on ``2x - 1``,
Normal; decoder 20 -> 512 -> 256 -> 784, Bernoulli; standard normal prior), batch 128,
Adam 1e-3, training digits binarised afresh in each step. Contenders, run in turn for
``--rounds`` rounds of ``--steps`` steps so that load from other processes hits both alike:

* ``library``: ``survae-jax``'s loop (``survae_jax.training.train`` with the experiment's model
  and loss), compile excluded;
* ``torch``: a PyTorch peer written here (plain ``nn.Linear`` layers, the same loss, batches
  drawn from a tensor in memory: the reference's loop without its DataLoader), when torch is
  installed; ``--torch-threads`` intra-op threads (default 1: with 2, PyTorch's OpenMP
  workers spin against the other processes of a loaded 2-core machine, and a 468-step round
  had not finished after 5 minutes at load average 18).

Reported: steps/s by wall clock and by process CPU time (all threads), medians over rounds, and
the projected time of the 10-epoch schedule (4,680 steps). Usage:
``python benchmarks/vae_speed.py [--steps 500] [--rounds 3]``. No timing is asserted in tests.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import jax
import numpy as np

from survae_jax.experiments import vae as V
from survae_jax.training import TrainConfig, train

SCHEDULE = 4680  # 10 epochs of 468 steps


def library_runner(train_images, steps):
    cfg = V.VAEConfig(model="vae")
    model = V.build_model(cfg)

    def run():
        r = train(model, train_images, loss_fn=V.loss_fn, init_fn=None,
                  config=TrainConfig(steps=steps, log_every=117, checkpoint_every=0, progress=False))
        return steps / r.wall_time_s, steps / r.cpu_time_s

    return run


def torch_runner(train_images, steps, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = torch.from_numpy(train_images.reshape(len(train_images), 784))

    def mlp(a, b):
        return nn.Sequential(nn.Linear(a, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, b))

    enc, dec = mlp(784, 40), mlp(20, 784)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def loss_of(x):
        mean, log_scale = enc(2 * x - 1).chunk(2, dim=1)
        eps = torch.randn_like(mean)
        z = mean + log_scale.exp() * eps
        log_q = (-0.5 * eps**2 - log_scale - half_log_2pi).sum(1)
        log_pz = (-0.5 * z**2 - half_log_2pi).sum(1)
        logits = dec(z)
        log_px = -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        return -(log_px + log_pz - log_q).mean()

    def run():
        t, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            idx = torch.randint(0, data.shape[0], (128,))
            x = torch.bernoulli(data[idx].float() / 255)
            loss = loss_of(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()
        return steps / (time.perf_counter() - t), steps / (time.process_time() - c)

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--torch-threads", type=int, default=1)
    args = p.parse_args()
    train_images, _ = V.load_binarized_mnist()
    runners = {"library": library_runner(train_images, args.steps)}
    try:
        runners["torch"] = torch_runner(train_images, args.steps, args.torch_threads)
    except ImportError:
        print("torch is not installed: library only")
    rates = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(run())
            print(f"round {r}: {name}: {rates[name][-1][0]:.0f} steps/s wall, {rates[name][-1][1]:.0f} CPU; "
                  f"load {open('/proc/loadavg').read().split()[0]}", flush=True)
    print(f"\n| contender | steps/s wall | steps/s CPU time | 10 epochs (4,680 steps), wall | by CPU time |")
    print("|---|---|---|---|---|")
    for name, rs in rates.items():
        wall, cpu = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {SCHEDULE / wall:.0f} s | {SCHEDULE / cpu:.0f} s |")
    print(f"\njax {jax.__version__}, backend {jax.default_backend()}, {np.__name__} {np.__version__}")


if __name__ == "__main__":
    main()
