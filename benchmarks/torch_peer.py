"""PyTorch peers of the models of ``benchmarks/models.py``, run in a process of their own.

``python benchmarks/torch_peer.py MODEL --steps N [--warmup W]`` trains the PyTorch version of
``MODEL`` (same architecture, same shapes, synthetic data of the same kind, Adam 1e-3, PyTorch's
default init and default thread count, as a user of the original code would run it) and prints
one JSON line: ``steps_per_s``, ``cpu_steps_per_s`` (process CPU time, all threads),
``max_rss_mb``, ``threads``. ``--eval N`` instead times the test evaluation on ``N`` examples:
the exact log-likelihood (``sortflow8``) or the ELBO plus the IWBO with ``k = 10``
(``permuteflow8``), batches of 500 cloud evaluations, under ``torch.no_grad``.

The architectures follow the reference SurVAE code (didriknielsen/survae_flows) as far as the
library's models do; the layers are written here from their formulas.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

LOG2PI = math.log(2 * math.pi)


def std_normal_lp(z):
    return -0.5 * (z**2 + LOG2PI).flatten(1).sum(1)


def mlp(widths):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- toy
class ToyFlow(nn.Module):
    """4 affine couplings (exp scale), MLP 1-200-100-2; ``absflow``: |x|, Scale(1/4), Logit first."""

    def __init__(self, absflow=False):
        super().__init__()
        self.absflow = absflow
        self.nets = nn.ModuleList([mlp([1, 200, 100, 2]) for _ in range(4)])

    def log_prob(self, x):
        v = torch.zeros(x.shape[0])
        if self.absflow:
            x = x.abs() * 0.25
            v = v - 2 * math.log(2) + 2 * math.log(0.25)
            v = v - (torch.log(x) + torch.log1p(-x)).sum(1)
            x = torch.log(x) - torch.log1p(-x)
        for i, net in enumerate(self.nets):
            s, t = net(x[:, :1]).unbind(-1)
            x = torch.stack([x[:, 0], torch.exp(s) * x[:, 1] + t], 1)
            v = v + s
            if i < 3:
                x = x.flip(1)
        return v + std_normal_lp(x)


# ---------------------------------------------------------------- point clouds
class Block(nn.Module):
    def __init__(self, d=64, heads=8, ff=256, p=0.1):
        super().__init__()
        self.heads, self.p = heads, p
        self.n1, self.qkv, self.o = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.n2, self.f1, self.f2 = nn.LayerNorm(d), nn.Linear(d, ff), nn.Linear(ff, d)
        self.drop = nn.Dropout(p)

    def forward(self, h):
        b, n, d = h.shape
        q, k, v = self.qkv(self.n1(h)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        h = h + self.drop(self.o(a))
        return h + self.drop(self.f2(self.drop(F.gelu(self.f1(self.n2(h))))))


class Transformer(nn.Module):
    def __init__(self, d_in, d_out, points=None, blocks=2, d=64, p=0.1):
        super().__init__()
        self.embed = nn.Linear(d_in, d)
        self.pos = nn.Parameter(0.02 * torch.randn(points, d)) if points else None
        self.blocks = nn.ModuleList([Block(d, p=p) for _ in range(blocks)])
        self.norm, self.out = nn.LayerNorm(d), nn.Linear(d, d_out)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, x):
        h = self.embed(x)
        if self.pos is not None:
            h = h + self.pos
        for blk in self.blocks:
            h = blk(h)
        return self.out(self.norm(h))


def affine(x2, params):
    shift, raw = params.chunk(2, dim=-1)
    scale = F.softplus(raw)
    return x2 * scale + shift, torch.log(scale).flatten(1).sum(1)


class PointFlow(nn.Module):
    """PermuteFlow (``sort=False``) or SortFlow of Appendix I.2 on ``(B, 50, 2)`` clouds."""

    def __init__(self, steps, sort=False, p=0.1):
        super().__init__()
        self.sort, self.steps = sort, steps
        self.logs = nn.Parameter(torch.zeros(steps, 2))
        self.bias = nn.Parameter(torch.zeros(steps, 2))
        self.coord = nn.ModuleList([Transformer(1, 2, 50 if sort else None, p=p) for _ in range(steps)])
        self.halves = nn.ModuleList([Transformer(2, 4, 25 if sort else None, p=p) for _ in range(steps)])
        g = torch.Generator().manual_seed(0)
        self.register_buffer("perms", torch.stack([torch.randperm(50, generator=g) for _ in range(steps)]))

    def permute(self, x, i):
        if self.sort:
            return x[:, self.perms[i]]
        idx = torch.rand(x.shape[0], 50).argsort(1)
        return torch.gather(x, 1, idx[..., None].expand(-1, -1, 2))

    def log_prob(self, x):
        x = x / 28.0 - 0.5
        v = torch.full((x.shape[0],), -100 * math.log(28.0))
        if self.sort:
            key = x[..., 0] * 64.0 + x[..., 1]  # x first, then y (coordinates in [-0.5, 0.5))
            x = torch.gather(x, 1, key.argsort(1)[..., None].expand(-1, -1, 2))
            v = v - math.lgamma(51)
        else:
            x = self.permute(x, -1)
        for i in range(self.steps):
            x = (x + self.bias[i]) * torch.exp(self.logs[i])
            v = v + 50 * self.logs[i].sum()
            z2, ld = affine(x[..., 1:], self.coord[i](x[..., :1]))
            x = torch.cat([x[..., :1], z2], -1).flip(-1)
            v = v + ld
            z2, ld = affine(x[:, 25:], self.halves[i](x[:, :25]))
            x = torch.cat([x[:, :25], z2], 1)
            v = v + ld
            x = self.permute(x, i)
        return v + std_normal_lp(x)


# ---------------------------------------------------------------- images
class DenseLayer(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.c1, self.c3 = nn.Conv2d(c, c, 1), nn.Conv2d(c, g, 3, padding=1)

    def forward(self, h):
        return torch.cat([h, F.relu(self.c3(F.relu(self.c1(h))))], 1)


class DenseNet(nn.Module):
    def __init__(self, cin, cout, mid, depth, growth):
        super().__init__()
        self.inp = nn.Conv2d(cin, mid, 1)
        self.layers = nn.Sequential(*[DenseLayer(mid + i * growth, growth) for i in range(depth)])
        self.gate = nn.Conv2d(mid + depth * growth, 3 * mid, 1)
        self.out = nn.Conv2d(mid, cout, 1)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, x):
        h = self.inp(x)
        a, b, c = self.gate(self.layers(h)).chunk(3, 1)
        return self.out(h + a + b * torch.sigmoid(c))


def squeeze(x):
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


class ImageFlow(nn.Module):
    """The image flow of ``benchmarks/models.py`` (NCHW): dequantize, squeeze, 2 scales, slice."""

    def __init__(self, mid=32, depth=2, growth=16, steps_per_scale=2):
        super().__init__()
        self.w = nn.ParameterList()
        self.nets = nn.ModuleList()
        for c in [4] * steps_per_scale + [8] * steps_per_scale:
            self.w.append(nn.Parameter(torch.linalg.qr(torch.randn(c, c))[0]))
            self.nets.append(DenseNet(c // 2, c, mid, depth, growth))
        self.per_scale = steps_per_scale

    def log_prob(self, x):
        x = (x.float() + torch.rand(x.shape)) / 256.0
        v = torch.full((x.shape[0],), -784 * math.log(256.0))
        x = squeeze(x)
        for i, (w, net) in enumerate(zip(self.w, self.nets)):
            if i == self.per_scale:
                x, dropped = x[:, :2], x[:, 2:]
                v = v + std_normal_lp(dropped)
                x = squeeze(x)
            hw = x.shape[2] * x.shape[3]
            x = F.conv2d(x, w[:, :, None, None])
            v = v + hw * torch.linalg.slogdet(w)[1]
            c = x.shape[1] // 2
            z2, ld = affine_exp(x[:, c:], net(x[:, :c]))
            x = torch.cat([x[:, :c], z2], 1)
            v = v + ld
        return v + std_normal_lp(x)


def affine_exp(x2, params):
    shift, s = params.chunk(2, dim=1)
    return x2 * torch.exp(s) + shift, s.flatten(1).sum(1)


# ---------------------------------------------------------------- VAE
class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.dec = mlp([784, 512, 256, 40]), mlp([20, 256, 512, 784])

    def log_prob(self, x):
        mean, log_scale = self.enc(x.float()).chunk(2, -1)
        z = mean + torch.exp(log_scale) * torch.randn_like(mean)
        log_q = (-0.5 * ((z - mean) / torch.exp(log_scale)) ** 2 - log_scale - 0.5 * LOG2PI).sum(1)
        log_px = -F.binary_cross_entropy_with_logits(self.dec(z), x.float(), reduction="none").sum(1)
        return log_px + std_normal_lp(z) - log_q


def build(name):
    g = np.random.default_rng(0)
    if name in ("toy_baseline", "toy_absflow"):
        data = g.uniform(-4, 4, (12_800, 2)).astype(np.float32)
        if name == "toy_absflow":
            data = np.clip(data, -3.9, 3.9)
        return ToyFlow(absflow=name == "toy_absflow"), torch.from_numpy(data), 128
    if name.startswith(("permuteflow", "sortflow")):
        steps = int(name.lstrip("permuteflowsort"))
        data = torch.from_numpy(g.uniform(0, 28, (2_560, 50, 2)).astype(np.float32))
        return PointFlow(steps, sort=name.startswith("sortflow")), data, 128
    if name == "image":
        return ImageFlow(), torch.from_numpy(g.integers(0, 256, (640, 1, 28, 28))), 32
    if name == "vae":
        return VAE(), torch.from_numpy((g.uniform(size=(12_800, 784)) < 0.13).astype(np.float32)), 128
    raise SystemExit(f"torch_peer: unknown model {name!r}")


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--eval", type=int, default=0, help="time the test evaluation on this many examples")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: PyTorch's own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, data, batch = build(args.model)
    out = {"model": args.model, "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.eval:
        model.eval()
        x = data[torch.arange(args.eval) % data.shape[0]]

        def run():
            with torch.no_grad():
                for i in range(0, len(x), 500):
                    model.log_prob(x[i:i + 500])
                    if args.model.startswith("permuteflow"):  # IWBO k = 10: 50 clouds x 10
                        for j in range(i, min(i + 500, len(x)), 50):
                            xb = x[j:j + 50]
                            lw = model.log_prob(xb.repeat(10, 1, 1)).view(10, -1)
                            torch.logsumexp(lw, 0)

        with torch.no_grad():  # warm-up (lazy kernel and thread-pool set-up), as ours is timed after compiling
            model.log_prob(x[:min(len(x), 50)])
        wall, cpu = timed(run)
        out.update(eval_s=wall, eval_cpu_s=cpu, examples=args.eval)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)

        def steps(k):
            def run():
                for _ in range(k):
                    idx = torch.randint(0, data.shape[0], (batch,), generator=gen)
                    loss = -model.log_prob(data[idx]).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                float(loss.detach())
            return run

        timed(steps(args.warmup))
        wall, cpu = timed(steps(args.steps))
        out.update(steps_per_s=args.steps / wall, cpu_steps_per_s=args.steps / cpu, steps=args.steps,
                   num_parameters=sum(p.numel() for p in model.parameters()))
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
