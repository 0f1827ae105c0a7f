"""``make bench``: the library's training speed beside its peers, model by model, one table + JSON.

For each model of ``benchmarks/models.py`` (toy baseline, toy AbsFlow, PermuteFlow 8 and 32
steps, the MNIST-size image flow, the VAE):

* ``train()``: ``survae_jax.train`` as a user calls it (``execution="auto"``), and the
  same step under the other execution (one jitted call per step vs a compiled loop of steps),
  so that the table shows whether the automatic choice was the faster one;
* ``torch``: the PyTorch peer (``benchmarks/torch_peer.py``) in a process of its own with its
  default thread count (toy models and VAE: also with one thread, which on a loaded 2-core
  machine is often faster, since idle OpenMP workers spin);
* toy baseline only: the hand-written fused JAX step (``benchmarks/fused_jax.py``) per call
  and in a loop, and FlowJAX's coupling flow (width 200, depth 2: FlowJAX has one width).

Contenders alternate within each round, so load from other processes hits all alike; the
table gives medians over rounds. Also measured: compile time (cold, then again with the
persistent compilation cache of a fresh folder), XLA's memory of the compiled step (ours) and
the peak RSS (torch), 100,000 toy samples after compilation (in batches of 4,096 rows and in
one), the step's FLOPs (XLA's count of the un-optimised step) over this machine's matmul rate
measured in the same run (the FLOP bound), and the test evaluation: SortFlow-8 exact
log-likelihood and PermuteFlow-8 ELBO + IWBO (k = 10) on the same number of clouds, ours vs torch.

Usage: ``python benchmarks/run.py [--quick] [--models a,b] [--rounds R] [--json PATH]``.
No timing is asserted in any test; the numbers go to the README and ``results/speed.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from models import MODELS  # noqa: E402
from survae_jax.compilation_cache import enable_compilation_cache  # noqa: E402
from survae_jax.training import TrainConfig, train  # noqa: E402

# steps per timed run (full, quick) and torch steps; quick keeps the whole bench to minutes.
STEPS = {
    "toy_baseline": ((2000, 500), (500, 100)),
    "toy_absflow": ((2000, 500), (500, 100)),
    "vae": ((300, 60), (100, 20)),
    "image": ((30, 6), (10, 3)),
    "permuteflow8": ((6, 2), (3, 1)),
    "permuteflow32": ((3, 1), (2, 1)),
}
SAMPLE_BATCH = 4096  # rows per batch of the toy's 100,000 samples (Flow.sample batch_size=)
QUICK_MODELS = ["toy_baseline", "toy_absflow", "vae", "image", "permuteflow8"]


def matmul_gflops(n=1024, reps=5):
    """This machine's float32 matmul rate (best of ``reps``), GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_wall(lambda: f(a).block_until_ready()) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _wall(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_flops(name):
    """XLA's FLOP count of one un-optimised training step (loss + gradient) of ``name``.

    XLA counts a loop's body once, so a ``Scan`` of flow steps is counted unrolled: the model's
    top-level ``Scan`` layers are replaced by ``Compose`` of their blocks (the same maths)."""
    model, data, loss_fn, _, batch = MODELS[name]()
    from flax import nnx

    from survae_jax.transforms import Compose, Scan

    if hasattr(model, "transforms"):
        for i, t in enumerate(model.transforms):
            if isinstance(t, Scan):
                model.transforms[i] = Compose(t.unstack())

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p, x, k):
        return loss_fn(nnx.merge(graphdef, p, rest), x, k)

    lowered = jax.jit(jax.grad(loss)).lower(params, jnp.asarray(data[:batch]), jax.random.key(0))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def run_ours(name, steps, execution):
    model, data, loss_fn, opt, batch = MODELS[name]()
    cfg = TrainConfig(steps=steps, batch_size=batch, log_every=steps, checkpoint_every=0,
                      progress=False, execution=execution)
    r = train(model, data, config=cfg, optimizer=opt, loss_fn=loss_fn)
    return {"steps_per_s": r.steps_per_second, "cpu_steps_per_s": r.step / r.cpu_time_s,
            "compile_s": r.compile_time_s, "execution": r.execution, "memory_mb": r.memory_bytes / 2**20}


def run_torch(name, steps, warmup=1, eval_n=0, threads=0):
    cmd = [sys.executable, os.path.join(HERE, "torch_peer.py"), name, "--threads", str(threads)]
    cmd += ["--eval", str(eval_n)] if eval_n else ["--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(f"torch peer {name} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def toy_extras(steps):
    """The fused JAX step (per call, in a loop) and FlowJAX on the toy baseline's data."""
    from fused_jax import init_params, make_step
    import optax

    from survae_jax.data.toy2d import load_toy2d

    data_np, _ = load_toy2d("checkerboard", num_train=12_800, num_test=128)
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
    st = {"p": init_params(jax.random.key(0))}
    st["s"] = opt.init(st["p"])
    key = jax.random.key(0)
    st["p"], st["s"], _ = jstep(st["p"], st["s"], data, key)
    st["p"], st["s"], loss = jloop(st["p"], st["s"], key, 0)
    loss.block_until_ready()

    def per_call():
        def go():
            loss = None
            for i in range(steps):
                st["p"], st["s"], loss = jstep(st["p"], st["s"], data, jax.random.fold_in(key, i))
            loss.block_until_ready()
        return {"steps_per_s": steps / _wall(go)}

    def in_loop():
        n = max(1, steps // 100)

        def go():
            loss = None
            for i in range(n):
                st["p"], st["s"], loss = jloop(st["p"], st["s"], key, i * 100)
            loss.block_until_ready()
        return {"steps_per_s": n * 100 / _wall(go)}

    out = {"fused per call": per_call, "fused in loop": in_loop}
    try:
        out["flowjax"] = flowjax_peer(data, steps)
    except ImportError as e:
        print(f"(flowjax skipped: {e})")
    return out


def flowjax_peer(data, steps):
    import equinox as eqx
    import optax
    import paramax
    from flowjax.bijections import Affine
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow

    flow = coupling_flow(jax.random.key(0), base_dist=Normal(jnp.zeros(2)), transformer=Affine(),
                         flow_layers=4, nn_width=200, nn_depth=2, nn_activation=jax.nn.relu)
    params, static = eqx.partition(flow, eqx.is_inexact_array,
                                   is_leaf=lambda x: isinstance(x, paramax.NonTrainable))
    opt = optax.adam(1e-3)
    state = {"p": params, "s": opt.init(params)}

    @jax.jit
    def step(p, s, key):
        x = data[jax.random.randint(key, (128,), 0, data.shape[0])]

        def loss(p):
            return -paramax.unwrap(eqx.combine(p, static)).log_prob(x).mean()

        val, g = jax.value_and_grad(loss)(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, val

    state["p"], state["s"], v = step(state["p"], state["s"], jax.random.key(1))
    v.block_until_ready()

    def go():
        def body():
            val = None
            for i in range(steps):
                state["p"], state["s"], val = step(state["p"], state["s"], jax.random.key(i))
            val.block_until_ready()
        return {"steps_per_s": steps / _wall(body)}

    return go


def toy_samples(n=100_000, batch_size=None):
    """Seconds for ``n`` toy samples after compilation (best of 3): one program over all ``n``
    (``batch_size=None``) or the layers run in batches (``Flow.sample(..., batch_size=)``)."""
    model, *_ = MODELS["toy_baseline"]()
    f = jax.jit(lambda m, k: m.sample(k, n, batch_size=batch_size))
    f(model, jax.random.key(0)).block_until_ready()
    return min(_wall(lambda: f(model, jax.random.key(i)).block_until_ready()) for i in range(1, 4))


def eval_rows(n, rounds):
    """SortFlow-8 exact log-likelihood and PermuteFlow-8 ELBO + IWBO(k=10) of ``n`` clouds; the
    image flow's log-likelihood bound (one dequantization draw) of ``n`` images."""
    from survae_jax.evaluation import evaluate
    from survae_jax.experiments.image import ImageConfig
    from survae_jax.experiments.point_cloud import EVAL_BATCH, PointCloudConfig, build_model, iwbo_fn

    clouds = np.random.default_rng(0).uniform(0, 28, (n, 50, 2)).astype(np.float32)
    rows = {}
    for kind in ("sortflow8", "permuteflow8", "image"):
        if kind == "image":
            model, data, *_ = MODELS["image"]()
            x = data[np.arange(n) % len(data)]  # as the torch peer takes them
        else:
            model, x = build_model(PointCloudConfig(model=kind[:-1], num_steps=8)), clouds

        batch = ImageConfig().eval_batch_size if kind == "image" else EVAL_BATCH  # each experiment's own

        def ours():
            key = jax.random.key(0)
            evaluate(model, x, batch_size=batch, key=key)
            if kind == "permuteflow8":
                evaluate(model, x, batch_size=EVAL_BATCH // 10, key=key, log_prob_fn=iwbo_fn(10, 10))

        first = _wall(ours)  # compiles (or reads the cache)
        res = {"ours": [], "torch": [], "ours_first_s": first}
        for _ in range(rounds):
            res["ours"].append(_wall(ours))
            res["torch"].append(run_torch(kind, 0, eval_n=n)["eval_s"])
        rows[kind] = res
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer models, steps and rounds: a few minutes")
    ap.add_argument("--models", default=None,
                    help="comma-separated subset of " + ",".join(MODELS) + " (empty: only the evaluation rows)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--eval-clouds", type=int, default=None)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", default=os.path.join("results", "bench.json"))
    args = ap.parse_args(argv)
    q = 1 if args.quick else 0
    names = ([n for n in args.models.split(",") if n] if args.models is not None
             else QUICK_MODELS if args.quick else list(MODELS))
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    rounds = args.rounds or (2 if args.quick else 3)
    eval_n = args.eval_clouds if args.eval_clouds is not None else (200 if args.quick else 2000)
    cache = enable_compilation_cache(tempfile.mkdtemp(prefix="survae_bench_xla_"), min_compile_time_s=0.5)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": os.cpu_count(), "backend": jax.default_backend(), "jax": jax.__version__,
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "load_average_start": os.getloadavg()[0], "cache_dir": cache, "rounds": rounds}
    print(f"# survae_jax bench {meta['date']}  {meta['machine']}, {meta['cpus']} CPUs, "
          f"{meta['backend']}, load {meta['load_average_start']:.1f}\n# {meta['command']}", flush=True)
    gflops = matmul_gflops()
    meta["matmul_gflops"] = gflops
    print(f"matmul rate {gflops:.1f} GFLOP/s (float32, 1024^3)", flush=True)
    report = {"meta": meta, "models": {}}
    for name in names:
        steps, torch_steps = STEPS[name][q]
        flops = step_flops(name)
        first = run_ours(name, steps, "auto")  # cold compile
        other = "loop" if first["execution"] == "step" else "step"
        contenders = {f"train() [{first['execution']}]": lambda: run_ours(name, steps, "auto"),
                      f"same step, {other}": lambda: run_ours(name, steps, other)}
        if name == "toy_baseline":
            contenders.update(toy_extras(steps))
        if not args.no_torch:
            contenders["torch"] = lambda: run_torch(name, torch_steps)
            if name in ("toy_baseline", "toy_absflow", "vae"):  # cheap: also the 1-thread peer
                contenders["torch 1 thread"] = lambda: run_torch(name, torch_steps, threads=1)
        results = {k: [] for k in contenders}
        for r in range(rounds):
            for k, fn in contenders.items():
                results[k].append(fn())
                print(f"  {name} round {r + 1} {k:<20} {results[k][-1]['steps_per_s']:9.3f} steps/s", flush=True)
        row = {"flops_per_step": flops, "bound_steps_per_s": gflops * 1e9 / flops if flops else None,
               "compile_s": first["compile_s"], "memory_mb": first["memory_mb"],
               "execution": first["execution"], "contenders": results,
               "rerun_compile_s": statistics.median(v["compile_s"] for v in results[list(results)[0]])}
        report["models"][name] = row
        _print_model(name, row)
    if "toy_baseline" in names:
        report["toy_100k_samples_batched_s"] = toy_samples(batch_size=SAMPLE_BATCH)
        report["toy_100k_samples_s"] = toy_samples()  # one batch, as in the runs before batching
        print(f"\n100,000 toy samples after compilation: {report['toy_100k_samples_batched_s'] * 1e3:.1f} ms in "
              f"batches of {SAMPLE_BATCH} (Flow.sample batch_size=), {report['toy_100k_samples_s'] * 1e3:.1f} ms "
              "in one batch")
    if not args.no_torch and eval_n:
        report["eval"] = eval_rows(eval_n, max(1, rounds - 1))
        print(f"\nevaluation of {eval_n} clouds / images (median s; ours after compilation)")
        for kind, res in report["eval"].items():
            o, t = statistics.median(res["ours"]), statistics.median(res["torch"])
            what = {"sortflow8": "exact log-likelihood", "permuteflow8": "ELBO + IWBO(k=10)"}.get(kind, "log-lik. bound")
            print(f"  {kind:<14}{what:<22} ours {o:8.2f} s  torch {t:8.2f} s  torch/ours {t / o:5.2f}x"
                  f"  (ours incl. first compile {res['ours_first_s']:.1f} s)")
    meta["load_average_end"] = os.getloadavg()[0]
    print(f"\nload average at the end {meta['load_average_end']:.1f}")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(f"wrote {args.json}")
    return 0


def _print_model(name, row):
    med = {k: statistics.median(v["steps_per_s"] for v in vals) for k, vals in row["contenders"].items()}
    ours_key = next(iter(med))
    ours = med[ours_key]
    bound = row["bound_steps_per_s"]
    print(f"\n{name}: compile {row['compile_s']:.1f} s (cache rerun {row['rerun_compile_s']:.1f} s), "
          f"XLA memory {row['memory_mb']:.0f} MB, {row['flops_per_step'] / 1e9:.3f} GFLOP/step, "
          f"FLOP bound {bound:.2f} steps/s -> train() at {ours / bound:.0%} of it")
    print(f"  {'contender':<22}{'steps/s':>10}{'train()/this':>14}")
    for k, v in med.items():
        rss = row["contenders"][k][-1].get("max_rss_mb")
        extra = f"   (peak RSS {rss:.0f} MB, {row['contenders'][k][-1].get('threads')} threads)" if rss else ""
        print(f"  {k:<22}{v:>10.3f}{ours / v:>14.2f}{extra}")


if __name__ == "__main__":
    sys.exit(main())
