"""Tabular MAF / NSF beside FlowJAX's on the same splits with the same budget.

For one data set and model of ``survae-jax train tabular``:

* ours: :func:`survae_jax.experiments.runner.run_experiment` with the experiment's config (the
  CLI's run, into ``--out``);
* FlowJAX: ``masked_autoregressive_flow`` (affine, ``invert=True``: one-pass density) or
  ``coupling_flow`` with its ``RationalQuadraticSpline`` (``knots = num_bins - 1`` inner knots, so
  the same number of bins; ``interval = tail_bound``), the same depth, widths, batch size, Adam
  learning rate, gradient clipping (global norm 5), step budget, epoch-permuted batches,
  validation every ``valid_every`` steps with the same patience, and the test log-likelihood of
  the best validated parameters.

Both see the same standardised splits (:func:`survae_jax.data.tabular.load_tabular`). Printed and
written to ``--json``: test nats per example (standardised data; lower is better), wall time of
training (compilation included for both), steps done, best step.

Usage: ``python benchmarks/tabular_peers.py --dataset galaxy patches --model maf nsf [--steps N]
[--hidden 256,256] [--json PATH] [--markdown PATH]`` (each pair of runs one after the other, ours first).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from survae_jax.experiments import get_experiment
from survae_jax.experiments.runner import run_experiment
from survae_jax.experiments.tabular import FEATURES, TabularConfig, tabular_data


def flowjax_run(config: TabularConfig) -> dict:
    """Train FlowJAX's peer of ``config.model`` as described in the module docstring."""
    import equinox as eqx
    import paramax
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow, masked_autoregressive_flow

    data = tabular_data(config)
    d, hidden = FEATURES[config.dataset], config.hidden_widths
    if len(set(hidden)) != 1:
        raise ValueError(f"FlowJAX has one width per net; got hidden={hidden}.")
    common = dict(base_dist=Normal(jnp.zeros(d)), flow_layers=config.num_layers, nn_width=hidden[0],
                  nn_depth=len(hidden), nn_activation=jax.nn.relu, invert=True)
    key = jax.random.key(config.seed)
    if config.model == "maf":
        flow = masked_autoregressive_flow(key, **common)
    else:
        bins = 8 if config.num_bins is None else config.num_bins
        bound = 3.0 if config.tail_bound is None else config.tail_bound
        flow = coupling_flow(key, transformer=RationalQuadraticSpline(knots=bins - 1, interval=bound), **common)
    params, static = eqx.partition(flow, eqx.is_inexact_array, is_leaf=lambda x: isinstance(x, paramax.NonTrainable))
    opt = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(config.lr))
    train, valid, test = (jnp.asarray(a) for a in (data.train, data.valid, data.test))

    def log_prob(p, x):
        return paramax.unwrap(eqx.combine(p, static)).log_prob(x)

    @jax.jit
    def step(p, s, idx):
        val, g = jax.value_and_grad(lambda p_: -log_prob(p_, train[idx]).mean())(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, val

    @jax.jit
    def mean_nll(p, x):
        return -jnp.mean(jax.lax.map(lambda xi: log_prob(p, xi), x, batch_size=4096))

    n, b = train.shape[0], config.batch_size
    per_epoch = n // b
    state, best, best_step, bad, step_done = opt.init(params), (math.inf, params), 0, 0, 0
    t0 = time.perf_counter()
    for t in range(config.steps):
        if t % per_epoch == 0:
            perm = jax.random.permutation(jax.random.fold_in(key, 1_000_000 + t // per_epoch), n)
        idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * b, b)
        params, state, val = step(params, state, idx)
        step_done = t + 1
        if step_done % config.valid_every == 0 or step_done == config.steps:
            v = float(mean_nll(params, valid))
            if v < best[0]:
                best, best_step, bad = (v, params), step_done, 0
            else:
                bad += 1
                if config.patience and bad >= config.patience:
                    break
    jax.block_until_ready(params)
    wall = time.perf_counter() - t0
    return {"test_nats": float(mean_nll(best[1], test)), "best_valid_nats": best[0], "best_step": best_step,
            "step": step_done, "train_time_s": wall}


def ours_run(config: TabularConfig, out: str) -> dict:
    exp = get_experiment("tabular")
    t0 = time.perf_counter()
    m = run_experiment(exp, config, out, progress=False, log=lambda msg: print(msg, file=sys.stderr))
    m["wall_incl_compile_s"] = m["train_time_s"] + m["compile_time_s"]
    m["measured_wall_s"] = time.perf_counter() - t0
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", nargs="+", default=["galaxy"])
    p.add_argument("--model", nargs="+", default=["maf"])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--hidden", type=lambda t: tuple(int(w) for w in t.split(",")), default=None,
                   help="hidden widths for every run, e.g. 256,256 (default: the experiment's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder of our run folders (default: a temporary one)")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("--skip-ours", action="store_true")
    a = p.parse_args(argv)
    out_dir = a.out or tempfile.mkdtemp()
    results = []
    for dataset in a.dataset:
        for model in a.model:
            kw = {"dataset": dataset, "model": model, "seed": a.seed}
            if a.steps is not None:
                kw["steps"] = a.steps
            if a.hidden is not None:
                kw["hidden"] = a.hidden
            config = TabularConfig(**kw)
            rows = {}
            if not a.skip_ours:
                m = ours_run(config, os.path.join(out_dir, f"{dataset}_{model}"))
                rows["survae_jax"] = {k: m[k] for k in ("test_nats", "best_valid_nats", "best_step", "step")}
                rows["survae_jax"]["train_time_s"] = m["wall_incl_compile_s"]
            rows["flowjax"] = flowjax_run(config)
            for name, r in rows.items():
                print(f"{dataset} {model} {name:10s} test {r['test_nats']:.4f} nats  valid {r['best_valid_nats']:.4f}  "
                      f"best step {r['best_step']:,} of {r['step']:,}  train {r['train_time_s']:.1f} s", flush=True)
            results.append({"config": dict(config.__dict__), "rows": rows})
    meta = {"backend": jax.default_backend(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv)}
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**meta, "results": results}, f, indent=2, default=list)
    if a.markdown and not a.skip_ours:
        write_markdown(a.markdown, results, meta)
    return 0


def write_markdown(path: str, results: list, meta: dict) -> None:
    """One row per data set and model: both test log-likelihoods (nats per example, standardised
    data; higher is better), the training wall times and their ratio."""
    lines = [f"Command: `{meta['command']}`, {meta['date']}, {meta['backend']}, {meta['cpu_count']} CPUs, "
             f"jax {meta['jax']}.", "",
             "| data | model | hidden | steps budget | survae_jax test log-lik | FlowJAX test log-lik | "
             "survae_jax steps (best) | FlowJAX steps (best) | survae_jax train s | FlowJAX train s | "
             "FlowJAX time / ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        c, ours, peer = res["config"], res["rows"]["survae_jax"], res["rows"]["flowjax"]
        hidden = c["hidden"] or TabularConfig(dataset=c["dataset"]).hidden_widths
        lo, lp = f"{-ours['test_nats']:.3f}", f"{-peer['test_nats']:.3f}"
        lo, lp = (f"**{lo}**", lp) if ours["test_nats"] <= peer["test_nats"] else (lo, f"**{lp}**")
        lines.append(
            f"| {c['dataset']} | {c['model']} | {','.join(map(str, hidden))} | {c['steps']:,} | "
            f"{lo} | {lp} | {ours['step']:,} ({ours['best_step']:,}) | "
            f"{peer['step']:,} ({peer['best_step']:,}) | {ours['train_time_s']:.0f} | {peer['train_time_s']:.0f} | "
            f"{peer['train_time_s'] / ours['train_time_s']:.2f} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
