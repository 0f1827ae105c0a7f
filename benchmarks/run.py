"""Speed of the library's training loop beside hand-written peers of the same model, one run.

Model: the toy2d baseline (4 affine couplings, MLP 1 -> 200 -> 100 -> 2, ReLU, Reverse, standard
normal base; exp scale), checkerboard data, batch 128, Adam 1e-3. Measured, interleaved over
``--rounds`` rounds so that load from other processes hits every contender alike:

* ``library``: ``survae_jax.train`` (compiled blocks of 100 steps), compile excluded;
* ``fused per call``: a hand-written fused JAX step (``benchmarks/fused_jax.py``), one jitted
  call per step;
* ``fused in loop``: the same step inside one ``lax.fori_loop`` of 100 steps per call;
* ``torch``: the PyTorch peer (``benchmarks/torch_peer.py``) when torch is installed.

Reported: steps/s by wall clock and by process CPU time (all threads; on a shared machine this
estimates the rate the code would reach alone), medians over rounds, and ratios to the library.
No timing is asserted anywhere in the tests. Usage: ``python benchmarks/run.py [--steps 2000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fused_jax import init_params, make_step  # noqa: E402

from survae_jax.data.toy2d import load_toy2d  # noqa: E402
from survae_jax.experiments.toy2d import Toy2DConfig, build_model  # noqa: E402
from survae_jax.training import TrainConfig, train  # noqa: E402


def _timed(fn, steps):
    t, c = time.perf_counter(), time.process_time()
    fn()
    return steps / (time.perf_counter() - t), steps / (time.process_time() - c)


def bench_library(data, steps):
    model = build_model(Toy2DConfig(dataset="checkerboard", model="baseline"))
    r = train(model, data, config=TrainConfig(steps=steps, log_every=100, checkpoint_every=0, progress=False))
    return r.steps_per_second, r.step / r.cpu_time_s


def make_fused(data_np):
    data = jnp.asarray(data_np)
    opt = optax.adam(1e-3)
    step = make_step(opt, 128, "exp")
    jstep = jax.jit(step, donate_argnums=(0, 1))

    def loop(p, s, key, start):
        def body(i, c):
            p, s, _ = c
            return step(p, s, data, jax.random.fold_in(key, start + i))
        return jax.lax.fori_loop(0, 100, body, (p, s, jnp.zeros(())))

    jloop = jax.jit(loop, donate_argnums=(0, 1))
    state = {"p": init_params(jax.random.key(0))}
    state["s"] = opt.init(state["p"])
    key = jax.random.key(0)
    # compile both once
    state["p"], state["s"], _ = jstep(state["p"], state["s"], data, key)
    state["p"], state["s"], loss = jloop(state["p"], state["s"], key, 0)
    loss.block_until_ready()

    def per_call(steps):
        def run():
            loss = None
            for i in range(steps):
                state["p"], state["s"], loss = jstep(state["p"], state["s"], data, jax.random.fold_in(key, i))
            loss.block_until_ready()
        return _timed(run, steps)

    def in_loop(steps):
        def run():
            loss = None
            for i in range(steps // 100):
                state["p"], state["s"], loss = jloop(state["p"], state["s"], key, i * 100)
            loss.block_until_ready()
        return _timed(run, steps // 100 * 100)

    return per_call, in_loop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    data, _ = load_toy2d("checkerboard", num_test=128)
    per_call, in_loop = make_fused(data)
    contenders = {"library": lambda s: bench_library(data, s), "fused per call": per_call, "fused in loop": in_loop}
    if not args.no_torch:
        try:
            from torch_peer import make_torch_peer

            contenders["torch"] = make_torch_peer(data)
        except ImportError as e:
            print(f"(torch peer skipped: {e})")
    results = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, fn in contenders.items():
            results[name].append(fn(args.steps))
            print(f"round {r + 1} {name:<15} wall {results[name][-1][0]:7.0f}  cpu {results[name][-1][1]:7.0f} steps/s",
                  flush=True)
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.steps} steps x {args.rounds} rounds, medians")
    lib_w = statistics.median(w for w, _ in results["library"])
    lib_c = statistics.median(c for _, c in results["library"])
    print(f"{'contender':<16}{'steps/s wall':>14}{'steps/s CPU':>13}{'library/peer wall':>19}{'library/peer CPU':>18}")
    for name, vals in results.items():
        w = statistics.median(v for v, _ in vals)
        c = statistics.median(v for _, v in vals)
        print(f"{name:<16}{w:>14.0f}{c:>13.0f}{lib_w / w:>19.2f}{lib_c / c:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
