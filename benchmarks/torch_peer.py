"""A PyTorch peer of the toy2d baseline flow, written for ``benchmarks/run.py`` (not a dependency).

Same model as the library's baseline: 4 affine couplings (exp scale) on ``(B, 2)`` points, each
conditioned by an MLP 1 -> 200 -> 100 -> 2 with ReLU, coordinates swapped between couplings,
standard normal base, Adam 1e-3, batch 128 drawn from a tensor in memory: the training loop of
the reference code, without its DataLoader.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn


class _Coupling(nn.Module):
    def __init__(self, hidden=(200, 100)):
        super().__init__()
        widths = [1, *hidden]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 2))

    def forward(self, x):
        s, t = self.net(x[:, :1]).unbind(-1)
        return torch.stack([x[:, 0], torch.exp(s) * x[:, 1] + t], dim=1), s


class TorchFlow(nn.Module):
    """``log_prob(x) -> (B,)`` nats of the 4-coupling flow."""

    def __init__(self, num_couplings=4):
        super().__init__()
        self.couplings = nn.ModuleList([_Coupling() for _ in range(num_couplings)])

    def log_prob(self, x):
        total = torch.zeros(x.shape[0])
        for i, c in enumerate(self.couplings):
            x, ld = c(x)
            total = total + ld
            if i < len(self.couplings) - 1:
                x = x.flip(1)
        return total - 0.5 * (x**2).sum(1) - math.log(2 * math.pi)


def make_torch_peer(data_np, batch_size=128):
    """Return ``run(steps) -> (steps/s wall, steps/s CPU)`` training the peer on ``data_np``."""
    # One intra-op thread: with two, PyTorch's OpenMP workers spin against XLA's threads and the
    # other processes of a shared 2-core machine and run 10-20x slower (measured here).
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = torch.from_numpy(data_np)
    model = TorchFlow()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def run(steps):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen)
            loss = -model.log_prob(data[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()
        return steps / (time.perf_counter() - t), steps / (time.process_time() - c)

    run(20)  # warm-up
    return run
