"""Seed variance of the paper's 2-D baseline flow, from a PyTorch replica (not a dependency).

Issue 4 compares our JAX baseline with the paper's figures (one seed each of the original PyTorch
code). This script trains a PyTorch replica of that baseline, written from Appendix I.1 and the
issue, on *our* data (``survae_jax.data.load_toy2d``, data seed 0 as ``Toy2DConfig``), over
several seeds, to tell the architecture's seed-to-seed spread apart from a defect of ours.

The model and schedule:

* 4 affine couplings; each conditions an MLP ``1 -> 200 -> 100 -> 2`` (ReLU, PyTorch's default
  ``nn.Linear`` init) on the first coordinate and transforms the second:
  ``z2 = f(s) * x2 + t`` with ``(s, t)`` the MLP's two outputs (s first), unconstrained, and
  log-det ``log f(s)``; ``f = exp`` on checkerboard, ``softplus`` elsewhere (``--scale-fn``);
* the two coordinates reversed between couplings (3 reverses); standard normal base;
* Adam, lr 1e-3, batch 128, 10 epochs of 1000 iterations over the 128,000 training points,
  reshuffled every epoch (a fresh permutation, no replacement, as a shuffling DataLoader);
* test nats: the mean negative log-likelihood over the 128,000 test points after training.

Run (one intra-op thread per process; one process per dataset)::

    python benchmarks/toy2d_torch_seeds.py --dataset checkerboard --seeds 0 1 2 3 4 &
    python benchmarks/toy2d_torch_seeds.py --dataset four_circles --seeds 0 1 2 3 4 &
    wait

Each run prints one line; the summary line gives mean +- std (population std, ddof=0, as the
seed column of ``results/toy2d.md``). ``--json PATH`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from survae_jax.data import load_toy2d

DATA_SEED = 0  # survae_jax.experiments.toy2d.Toy2DConfig.data_seed
SCALE_FNS = {
    "exp": (torch.exp, lambda s: s),
    "softplus": (F.softplus, lambda s: torch.log(F.softplus(s))),
}


class AffineCoupling(nn.Module):
    """``(x1, x2) -> (x1, f(s) x2 + t)`` with ``(s, t) = MLP(x1)``; returns ``(z, log|det|)``."""

    def __init__(self, scale_fn: str, hidden=(200, 100)):
        super().__init__()
        widths = [1, *hidden, 2]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))  # PyTorch default init
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.scale, self.log_scale = SCALE_FNS[scale_fn]

    def forward(self, x):
        x1, x2 = x[:, :1], x[:, 1:]
        out = self.net(x1)
        s, t = out[:, :1], out[:, 1:]
        z2 = self.scale(s) * x2 + t
        return torch.cat([x1, z2], dim=1), self.log_scale(s).sum(1)


class BaselineFlow(nn.Module):
    """Couplings with a coordinate reverse between neighbours, over a standard normal base."""

    def __init__(self, scale_fn: str, num_couplings: int = 4):
        super().__init__()
        self.couplings = nn.ModuleList(AffineCoupling(scale_fn) for _ in range(num_couplings))

    def log_prob(self, x):
        log_det = torch.zeros(x.shape[0], dtype=x.dtype)
        for i, coupling in enumerate(self.couplings):
            x, ld = coupling(x)
            log_det = log_det + ld
            if i < len(self.couplings) - 1:
                x = x.flip(1)  # Reverse: (a, b) -> (b, a)
        base = -0.5 * (x**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
        return base + log_det


@torch.no_grad()
def mean_nll(model: BaselineFlow, data: torch.Tensor, batch: int = 8192) -> float:
    total = 0.0
    for i in range(0, data.shape[0], batch):
        total += -model.log_prob(data[i : i + batch]).double().sum().item()
    return total / data.shape[0]


def run_one(dataset: str, scale_fn: str, seed: int, epochs: int, iters: int, batch_size: int,
            lr: float, train_np: np.ndarray, test_np: np.ndarray) -> dict:
    torch.manual_seed(seed)
    model = BaselineFlow(scale_fn)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    train = torch.from_numpy(train_np)
    test = torch.from_numpy(test_np)
    if iters * batch_size > train.shape[0]:
        raise ValueError("an epoch would need more points than the training set holds")
    t0 = time.perf_counter()
    last_epoch = []
    for _ in range(epochs):
        perm = torch.randperm(train.shape[0], generator=gen)
        losses = []
        for it in range(iters):
            x = train[perm[it * batch_size : (it + 1) * batch_size]]
            loss = -model.log_prob(x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        last_epoch = losses
    wall = time.perf_counter() - t0
    return {
        "dataset": dataset,
        "scale_fn": scale_fn,
        "seed": seed,
        "steps": epochs * iters,
        "train_nats_last_epoch": float(np.mean(last_epoch)),
        "test_nats": mean_nll(model, test),
        "train_nats_final": mean_nll(model, train),
        "wall_s": wall,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="checkerboard",
                   choices=["checkerboard", "corners", "eight_gaussians", "four_circles"])
    p.add_argument("--scale-fn", choices=sorted(SCALE_FNS), default=None,
                   help="coupling scale fn (default: exp on checkerboard, softplus otherwise)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--iters", type=int, default=1000, help="iterations per epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--num-train", type=int, default=128_000)
    p.add_argument("--num-test", type=int, default=128_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the per-seed results here")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    scale_fn = args.scale_fn or ("exp" if args.dataset == "checkerboard" else "softplus")
    train_np, test_np = load_toy2d(args.dataset, seed=DATA_SEED, num_train=args.num_train,
                                   num_test=args.num_test)
    results = []
    for seed in args.seeds:
        r = run_one(args.dataset, scale_fn, seed, args.epochs, args.iters, args.batch_size,
                    args.lr, train_np, test_np)
        results.append(r)
        print(f"{args.dataset} {scale_fn} seed {seed}: test {r['test_nats']:.4f} nats, "
              f"train (last epoch) {r['train_nats_last_epoch']:.4f}, "
              f"train (final) {r['train_nats_final']:.4f}, {r['wall_s']:.0f} s", flush=True)
    tests = [r["test_nats"] for r in results]
    std = statistics.pstdev(tests)
    print(f"{args.dataset} {scale_fn}: test nats {statistics.mean(tests):.3f} +- {std:.3f} "
          f"(n={len(tests)}; seeds {', '.join(f'{t:.3f}' for t in tests)})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
