"""The ``survae-jax`` command (also ``python -m survae_jax``).

::

    survae-jax train toy2d --dataset checkerboard --model absflow [--steps N] [--seed S]
                           [--out DIR] [--resume] [--devices N]
    survae-jax eval RUN_DIR [--iwbo K]
    survae-jax sample RUN_DIR [--num N] [--seed S] [--out FILE.png]
    survae-jax demo [--dataset D] [--steps N] [--out DIR]

``train`` has one sub-command per registered experiment
(:data:`survae_jax.experiments.EXPERIMENT_MODULES`), each with its own flags plus the common
ones below. Every error ends the command with one line ``survae-jax: error: ...`` on stderr and
a non-zero exit status (2 for bad usage, 1 for a failure while running); set
``SURVAE_DEBUG=1`` to get the traceback instead. Compiled programs are kept in JAX's
persistent compilation cache, ``~/.cache/survae_jax/xla`` (``$SURVAE_JAX_CACHE_DIR``; ``""``
turns it off), so a rerun with the same shapes skips compilation. Ctrl-C during ``train`` finishes the block of
steps running, writes a checkpoint of it and exits with status 130; ``--resume`` continues from
that step.

``--devices N`` trains (and evaluates) on the first ``N`` devices, each batch split over them
(default every device). Several hosts: set ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process
0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` and run the same command on each host
(:func:`survae_jax.distributed.maybe_initialize_distributed`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from survae_jax.experiments.flags import non_negative_int, positive_float, positive_int

PROG = "survae-jax"

# The paper's reference figures (original PyTorch code, 10,000 steps, one seed), nats.
PAPER_NATS = {
    "checkerboard": {"baseline": 3.68, "absflow": 3.50},
    "corners": {"baseline": 3.28, "absflow": 3.01},
    "eight_gaussians": {"baseline": 3.01, "absflow": 2.86},
    "four_circles": {"baseline": 3.40, "absflow": 3.06},
}


class UsageError(Exception):
    """Bad command-line usage (exit status 2).

    The message is one line, ``survae-jax train: argument --steps: must be an integer >= 1,
    got 0`` (no shapes involved: it is about flags).

    The parser raises it instead of exiting, and :func:`main` turns it into exit status 2.

    Source: this library.
    """


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and raise instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _steps(text: str) -> int:
    """``--steps``: an integer from 1 to :data:`~survae_jax.training.MAX_STEPS` (an int32 counter)."""
    from survae_jax._train_support import MAX_STEPS

    value = positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_STEPS:,} (the step counter is a 32-bit integer), got {value:,}")
    return value


def _common_train_args(p: argparse.ArgumentParser, helps: dict[str, str] | None = None) -> None:
    """The flags every ``train <experiment>`` takes; ``helps``: the experiment's help texts."""
    h = {
        "steps": "optimizer steps",
        "batch_size": "examples per optimizer step",
        "lr": "Adam learning rate",
        "log_every": "steps per compiled block / progress update",
        "checkpoint_every": "steps between checkpoints (0: only at the end)",
        **(helps or {}),
    }
    p.add_argument("--steps", type=_steps, default=None, help=h["steps"])
    p.add_argument("--seed", type=int, default=None, help="seed of the weights, batches and keys (default 0)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=None, help=h["batch_size"])
    p.add_argument("--lr", type=positive_float, default=None, help=h["lr"])
    p.add_argument("--log-every", dest="log_every", type=positive_int, default=None, help=h["log_every"])
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=non_negative_int, default=None,
                   help=h["checkpoint_every"])
    p.add_argument("--out", default=None, help="the run folder (default runs/<experiment>_...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--devices", type=positive_int, default=None, metavar="N",
                   help="train and evaluate on the first N devices, each batch split over them "
                        "(default: every device; the batch size must divide by N)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (experiments are imported to add their flags).

    Sub-commands ``train <experiment>``, ``eval``, ``sample``, ``demo``. An experiment whose
    module fails to import is listed as unavailable rather than breaking the parser.

    ``parse_args`` raises :class:`UsageError` (instead of exiting) for bad flags.

    Source: this library (docs/design.md: one CLI for every experiment; the registry of
    :mod:`survae_jax.experiments`).
    """
    from survae_jax.experiments import EXPERIMENT_MODULES, get_experiment

    parser = _Parser(prog=PROG, description="SurVAE flows in JAX: train, evaluate and sample the paper's models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_train = sub.add_parser("train", help="train an experiment's model into a run folder")
    exps = p_train.add_subparsers(dest="experiment", required=True, parser_class=_Parser)
    for name in EXPERIMENT_MODULES:
        try:
            exp = get_experiment(name)
        except ValueError as e:
            p = exps.add_parser(name, help=f"(unavailable: {e})")
            p.set_defaults(unavailable=str(e))
            _common_train_args(p)
            continue
        p = exps.add_parser(name, help=exp.description)
        exp.add_arguments(p)
        _common_train_args(p, exp.common_flag_help())

    p_eval = sub.add_parser("eval", help="test metrics of a run folder's last checkpoint")
    p_eval.add_argument("run_dir")
    p_eval.add_argument("--iwbo", type=positive_int, default=None, metavar="K",
                        help="score the test set by the IWBO with K importance samples (the first "
                             "iwbo_examples test examples where the run's config sets that, else all; "
                             "the output's iwbo_examples says how many): reported as "
                             "test_iwbo_nll_nats (-IWBO per example) beside the experiment's IWBO keys, "
                             "no test_nats (default: test_nats, the experiment's own test log-likelihood or ELBO)")

    p_sample = sub.add_parser("sample", help="draw samples from a run; write a figure and the samples "
                                             "(FILE.npy beside FILE.png)")
    p_sample.add_argument("run_dir")
    p_sample.add_argument("--num", type=positive_int, default=50_000, help="number of samples (default 50,000)")
    p_sample.add_argument("--seed", type=int, default=0)
    p_sample.add_argument("--out", default=None, help="the PNG file (default RUN_DIR/samples.png); the "
                                                      "samples go to the same name with .npy")

    p_demo = sub.add_parser("demo", help="baseline vs AbsFlow on one 2-D dataset, short schedule")
    p_demo.add_argument("--dataset", default="checkerboard")
    p_demo.add_argument("--steps", type=positive_int, default=3000, help="optimizer steps per model (default 3,000)")
    p_demo.add_argument("--out", default=os.path.join("runs", "demo"))
    p_demo.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def _cmd_train(args) -> int:
    from survae_jax.distributed import DataParallel
    from survae_jax.experiments import get_experiment
    from survae_jax.experiments.runner import RunError, check_resume, run_experiment

    if getattr(args, "unavailable", None):
        raise UsageError(args.unavailable)
    exp = get_experiment(args.experiment)
    try:
        config = exp.config_from_args(args)
        schedule = exp.train_config(config)  # its checks (e.g. steps within the int32 counter) before any file
        DataParallel(args.devices, who=f"{PROG} train", option="--devices").check_batch(
            schedule.batch_size, "--batch-size")
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    run_dir = args.out or os.path.join("runs", exp.run_name(config))
    if args.resume:
        try:
            check_resume(run_dir, schedule.steps)  # e.g. a checkpoint past --steps, before any file
        except RunError as e:
            raise UsageError(f"{PROG} train: {e}") from e
    for note in exp.notes(config, args):
        print(f"{PROG}: note: {note}", file=sys.stderr, flush=True)
    out = run_experiment(exp, config, run_dir, resume=args.resume, progress=args.progress, devices=args.devices)
    bpd = f" ({out['test_bpd']:.3f} bits/dim)" if "test_bpd" in out else ""
    print(f"{run_dir}: test {out['test_nats']:.4f} nats{bpd}, train {out['train_nats']:.4f} nats, "
          f"{out['steps_per_second']:.3g} steps/s")
    return 0


def _cmd_eval(args) -> int:
    from survae_jax.experiments.runner import evaluate_run

    print(json.dumps(evaluate_run(args.run_dir, iwbo=args.iwbo), sort_keys=True))
    return 0


def _cmd_sample(args) -> int:
    from survae_jax.experiments.runner import sample_run

    print(sample_run(args.run_dir, num_samples=args.num, seed=args.seed, path=args.out))
    return 0


def _cmd_demo(args) -> int:
    from survae_jax.experiments import get_experiment
    from survae_jax.experiments.runner import run_experiment

    exp = get_experiment("toy2d")
    rows = []
    for model in ("baseline", "absflow"):
        config = exp.config_cls(dataset=args.dataset, model=model, steps=args.steps)
        run_dir = os.path.join(args.out, f"{args.dataset}_{model}")
        if os.path.isfile(os.path.join(run_dir, "config.json")):
            shutil.rmtree(run_dir)  # the demo always starts afresh
        print(f"training {model} on {args.dataset} for {args.steps} steps -> {run_dir}", flush=True)
        out = run_experiment(exp, config, run_dir, progress=args.progress)
        rows.append((model, out, run_dir))
    paper = PAPER_NATS.get(args.dataset, {})
    print(f"\n{args.dataset}, {args.steps} steps (paper: 10,000)")
    print(f"{'model':<10} {'test nats':>10} {'paper':>7} {'steps/s':>8}  figures")
    for model, out, run_dir in rows:
        ref = paper.get(model)
        print(f"{model:<10} {out['test_nats']:>10.3f} {f'{ref:.2f}' if ref else '':>7} "
              f"{out['steps_per_second']:>8.0f}  {os.path.join(run_dir, 'density.png')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    ``argv`` is a list of strings (e.g. ``["train", "toy2d", "--steps", "100"]``). Exit status:
    0 success, 2 bad usage, 1 a failure while running, 130 interrupted; each error is one line
    ``survae-jax: error: ...`` on stderr.

    Every exception becomes an exit status, except with ``SURVAE_DEBUG=1``, which re-raises the
    original exception for its traceback.

    Source: this library.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        from survae_jax.distributed import maybe_initialize_distributed

        maybe_initialize_distributed()  # several hosts: JAX_COORDINATOR_ADDRESS, before any device is used
        from survae_jax.compilation_cache import enable_compilation_cache

        enable_compilation_cache()  # reruns read compiled programs back ($SURVAE_JAX_CACHE_DIR)
        handler = {"train": _cmd_train, "eval": _cmd_eval, "sample": _cmd_sample, "demo": _cmd_demo}
        return handler[args.command](args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # train(): TrainingInterrupted says which checkpoint holds the step
        print(f"{PROG}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user; SURVAE_DEBUG=1 for the traceback
        if os.environ.get("SURVAE_DEBUG"):
            raise
        msg = " ".join(str(e).split())
        print(f"{PROG}: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1
