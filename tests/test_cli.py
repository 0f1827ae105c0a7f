"""The ``survae-jax`` command: bad inputs give one-line errors; a tiny run end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from survae_jax.cli import main

TINY = ["--steps", "20", "--num-train", "512", "--num-test", "256", "--log-every", "10",
        "--checkpoint-every", "10", "--no-progress"]


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("survae-jax: error:"), err
    return lines[0]


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["train", "toy2d", "--dataset", "moons"], "unknown dataset 'moons'"),
        (["train", "toy2d", "--model", "glow"], "unknown model 'glow'"),
        (["train", "cifar"], "invalid choice: 'cifar'"),
        (["train", "toy2d", "--steps", "ten"], "invalid int value"),
        ([], "required"),
        # Counts must be >= 1 (before any run folder is written).
        (["train", "toy2d", "--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
        (["train", "toy2d", "--steps", "-5"], "argument --steps: must be an integer >= 1, got -5"),
        (["train", "toy2d", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
        (["train", "toy2d", "--num-train", "0"], "argument --num-train: must be an integer >= 1"),
        (["train", "toy2d", "--log-every", "0"], "argument --log-every: must be an integer >= 1"),
        (["train", "toy2d", "--checkpoint-every", "-1"], "argument --checkpoint-every: must be an integer >= 0"),
        (["train", "toy2d", "--lr", "0"], "argument --lr: must be a finite number > 0"),
        (["train", "spatial_mnist", "--epochs", "0"], "argument --epochs: must be an integer >= 1"),
        (["train", "spatial_mnist", "--model", "permuteflow", "--iwbo-samples", "0"],
         "argument --iwbo-samples: must be an integer >= 1"),
        (["train", "spatial_mnist", "--dropout", "1.5"], "argument --dropout: must be in [0, 1)"),
        (["sample", "RUN", "--num", "-3"], "argument --num: must be an integer >= 1, got -3"),
        (["sample", "RUN", "--num", "0"], "argument --num: must be an integer >= 1, got 0"),
        (["demo", "--steps", "0"], "argument --steps: must be an integer >= 1"),
        # An option the chosen model does not use is an error, not silently ignored.
        (["train", "toy2d", "--model", "baseline", "--range-flow", "logit"], "only applies to the symmetric AbsFlow"),
        (["train", "toy2d", "--dataset", "checkerboard", "--model", "absflow", "--range-flow", "softplus"],
         "no effect on absflow on checkerboard"),
        (["train", "toy2d", "--dataset", "checkerboard", "--model", "absflow", "--scale-fn", "exp"],
         "has no couplings"),
        (["train", "spatial_mnist", "--iwbo-samples", "10"], "--iwbo-samples only apply to --model permuteflow"),
        (["train", "spatial_mnist", "--steps", "5", "--epochs", "2"], "--steps and --epochs"),
        (["train", "vae", "--model", "glow"], "invalid choice: 'glow'"),
        (["train", "vae", "--epochs", "0"], "argument --epochs: must be an integer >= 1"),
        (["train", "vae", "--steps", "5", "--epochs", "2"], "vae: --steps and --epochs"),
        (["train", "vae", "--iwbo-chunk", "300"], "iwbo_chunk=300 must divide iwbo_samples=1000"),
        (["train", "vae", "--iwbo-samples", "10", "--iwbo-chunk", "100"],
         "vae: --iwbo-chunk 100 is more than the 10 importance samples (--iwbo-samples 10); give a divisor of 10."),
        (["train", "vae", "--iwbo-chunk", "2000"],
         "vae: --iwbo-chunk 2000 is more than the 1000 importance samples (--iwbo-samples 1000)"),
        (["train", "image", "--dataset", "digits", "--iwbo-examples", "361"],
         "image: --iwbo-examples 361 is more than the 360 test images of digits; give at most 360."),
        (["train", "image", "--dataset", "mnist", "--preset", "cpu", "--iwbo-examples", "10001"],
         "image: --iwbo-examples 10,001 is more than the 10,000 test images of mnist; give at most 10,000."),
    ],
)
def test_bad_usage(argv, expect, capsys, tmp_path):
    code, _, err = run(argv + ["--out", str(tmp_path / "r")] if argv[:1] == ["train"] and len(argv) > 2 else argv, capsys)
    assert code == 2
    assert expect in one_line_error(err)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, k, chunk", [([], 1000, 100), (["--iwbo-samples", "10"], 10, 10),
                                           (["--iwbo-samples", "128"], 128, 64), (["--iwbo-samples", "7"], 7, 7),
                                           (["--iwbo-samples", "10", "--iwbo-chunk", "5"], 10, 5)])
def test_vae_iwbo_chunk_fits_the_samples(flags, k, chunk):
    from survae_jax.cli import build_parser
    from survae_jax.experiments import get_experiment

    cfg = get_experiment("vae").config_from_args(build_parser().parse_args(["train", "vae"] + flags))
    assert (cfg.iwbo_samples, cfg.iwbo_chunk) == (k, chunk)


def test_steps_help_is_per_experiment(capsys):
    helps = {}
    for name in ("toy2d", "spatial_mnist"):
        with pytest.raises(SystemExit) as e:
            main(["train", name, "--help"])
        assert e.value.code == 0
        helps[name] = " ".join(capsys.readouterr().out.split())
    assert "optimizer steps (default: the paper's 10,000)" in helps["toy2d"]
    assert "paper's 10,000" not in helps["spatial_mnist"]
    assert ("--steps STEPS optimizer steps (default: --epochs epochs of 390 steps, i.e. 195,000 for the paper "
            "preset, 6,240 for cpu)") in helps["spatial_mnist"]


@pytest.mark.parametrize("backend, preset, noted", [("cpu", [], True), ("cpu", ["--preset", "cpu"], False),
                                                    ("gpu", [], False)])
def test_paper_preset_on_cpu_notes_the_cpu_preset(backend, preset, noted, monkeypatch, tmp_path, capsys):
    import jax

    from survae_jax.experiments import runner

    calls = []

    def fake_run(exp, config, run_dir, **kw):  # no training: only what happens before it
        calls.append(config)
        return {"test_nats": 1.0, "train_nats": 1.0, "steps_per_second": 1.0}

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    code, _, err = run(["train", "spatial_mnist", "--model", "permuteflow", "--out", str(tmp_path)] + preset, capsys)
    assert code == 0 and len(calls) == 1
    lines = [line for line in err.splitlines() if line.strip()]
    if noted:
        assert len(lines) == 1 and lines[0].startswith("survae-jax: note: --preset paper")
        assert "meant for a GPU" in lines[0] and "--preset cpu" in lines[0] and "~15 min" in lines[0]
        assert "IWBO k=1000" in lines[0]
    else:
        assert lines == []


def test_spatial_mnist_metrics_count_parameters():
    import dataclasses

    import numpy as np

    from survae_jax.experiments.point_cloud import EXPERIMENT, build_model, cpu_config
    from survae_jax.experiments.registry import num_parameters

    cfg = dataclasses.replace(cpu_config("sortflow"), num_steps=1, d_model=8, num_heads=2, d_ff=16)
    model = build_model(cfg)
    m = EXPERIMENT.test_metrics(cfg, np.full(4, -290.0), model)
    assert m["num_parameters"] == num_parameters(model) > 1000
    assert m["test_ppll"] == pytest.approx(-5.8) and m["test_nats"] == pytest.approx(290.0)


def test_sample_run_rejects_a_non_positive_count(tmp_path):
    from survae_jax.experiments.runner import sample_run

    with pytest.raises(ValueError, match="num_samples must be >= 1, got 0"):
        sample_run(str(tmp_path), num_samples=0)


def test_unwritable_out_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(["train", "toy2d", "--out", str(blocker / "run")] + TINY, capsys)
    assert code == 1
    line = one_line_error(err)
    assert "cannot write the run folder" in line and str(blocker / "run") in line


def test_eval_missing_run_and_checkpoint(tmp_path, capsys):
    code, _, err = run(["eval", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and "not a run folder" in one_line_error(err)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"experiment": "toy2d", "dataset": "corners"}))
    code, _, err = run(["eval", str(tmp_path / "run")], capsys)
    assert code == 1 and "no checkpoint in" in one_line_error(err)


def _snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time."""
    return {os.path.relpath(os.path.join(root, f), folder): (open(os.path.join(root, f), "rb").read(),
                                                            os.stat(os.path.join(root, f)).st_mtime_ns)
            for root, _, files in os.walk(folder) for f in files}


def test_resume_with_steps_below_the_checkpoint_is_refused_untouched(tmp_path, capsys):
    from survae_jax.experiments import get_experiment
    from survae_jax.experiments.runner import RunError, run_experiment

    out = tmp_path / "run"
    (out / "checkpoints" / "step_00000020").mkdir(parents=True)
    (out / "checkpoints" / "step_00000020" / "state").write_text("a checkpoint")
    (out / "config.json").write_text(json.dumps({"experiment": "toy2d", "steps": 20}))
    (out / "metrics.json").write_text("{}")
    before = _snapshot(out)
    code, _, err = run(["train", "toy2d", "--out", str(out), "--resume", "--steps", "10", "--no-progress"], capsys)
    assert code == 2
    line = one_line_error(err)
    assert "--resume" in line and "checkpoint of step 20" in line and "(--steps 10)" in line, line
    assert _snapshot(out) == before
    exp = get_experiment("toy2d")
    with pytest.raises(RunError, match="checkpoint of step 20, past the 10 steps"):
        run_experiment(exp, exp.config_cls(steps=10), str(out), resume=True, progress=False)
    assert _snapshot(out) == before


def test_resume_with_nothing_to_resume_is_refused(tmp_path, capsys):
    from survae_jax.experiments import get_experiment
    from survae_jax.experiments.runner import RunError, run_experiment

    missing, empty, other = tmp_path / "missing", tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    other.mkdir()
    (other / "notes.txt").write_text("not a run")
    for folder, what in ((missing, "no such folder"), (empty, "an empty folder"),
                         (other, "no config.json, no checkpoint")):
        code, _, err = run(["train", "toy2d", "--out", str(folder), "--resume", "--no-progress"], capsys)
        assert code == 2
        assert (f"survae-jax train: nothing to resume in {folder} ({what}); drop --resume to start a run."
                in one_line_error(err))
    assert not missing.exists() and os.listdir(empty) == [] and os.listdir(other) == ["notes.txt"]
    exp = get_experiment("toy2d")
    with pytest.raises(RunError, match="nothing to resume in"):
        run_experiment(exp, exp.config_cls(), str(missing), resume=True, progress=False)
    assert not missing.exists()


@pytest.mark.parametrize("iwbo_examples, scored", [(5, 5), (None, 12), (50, 12)])
def test_eval_iwbo_scores_the_runs_iwbo_examples(iwbo_examples, scored, monkeypatch, capsys):
    import dataclasses

    import jax
    import numpy as np

    from survae_jax.experiments import get_experiment, runner
    from survae_jax.experiments.toy2d import Toy2DConfig

    @dataclasses.dataclass(frozen=True)
    class Config(Toy2DConfig):  # a toy2d run whose config has an IWBO subset, as the image/VAE configs
        iwbo_examples: int | None = None

    exp = get_experiment("toy2d")
    cfg = Config(model="baseline", num_train=16, num_test=12, num_couplings=1, hidden=(8,),
                 iwbo_examples=iwbo_examples)
    model = exp.build_model(cfg)
    monkeypatch.setattr(runner, "load_run", lambda run_dir: (exp, cfg, model, 3))
    out = runner.evaluate_run("RUN", iwbo=2)
    assert out["iwbo_examples"] == scored and out["iwbo_samples"] == 2 and "test_nats" not in out
    test = exp.load_data(cfg)[1]
    log_p = np.asarray(jax.jit(lambda m, x: m.log_prob(x))(model, test[:scored]))
    # an exact flow: the IWBO is log p of each scored example
    assert out["test_iwbo_nll_nats"] == pytest.approx(-log_p.mean(), rel=1e-5)
    err = capsys.readouterr().err
    assert ("the run's iwbo_examples=50 is more than the 12 test examples; the IWBO is on all 12" in err) == (
        iwbo_examples == 50)


@pytest.mark.slow
def test_tiny_run_end_to_end_then_errors(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["train", "toy2d", "--dataset", "corners", "--model", "absflow",
                             "--out", str(out), "--devices", "1"] + TINY, capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["step"] == 20 and m["steps_per_second"] > 0 and 1.0 < m["test_nats"] < 6.0
    assert {"train_nats", "test_nats", "wall_time_s", "steps_per_second"} <= set(m)
    assert m["execution"] == "loop" and m["execution_reason"].startswith("auto:")  # dense layers: loop
    assert (out / "train.log").read_text().startswith("train: execution=loop (auto:")
    assert (out / "train.log").read_text().splitlines()[0].endswith("; devices=1: one device (cpu, unsharded).")
    assert m["devices"] == 1 and m["processes"] == 1
    assert (out / "density.png").stat().st_size > 1000 and (out / "samples.png").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["experiment"] == "toy2d" and cfg["model"] == "absflow"

    code, stdout, _ = run(["eval", str(out)], capsys)
    assert code == 0 and json.loads(stdout)["test_nats"] == pytest.approx(m["test_nats"], abs=1e-6)
    code, stdout, _ = run(["sample", str(out), "--num", "1000", "--out", str(tmp_path / "s.png")], capsys)
    assert code == 0 and (tmp_path / "s.png").exists() and np.load(tmp_path / "s.npy").shape == (1000, 2)

    # The same folder again without --resume: refused; --resume of a finished run re-evaluates.
    code, _, err = run(["train", "toy2d", "--dataset", "corners", "--model", "absflow", "--out", str(out)] + TINY, capsys)
    assert code == 1 and "--resume" in one_line_error(err)
    code, _, err = run(["train", "toy2d", "--dataset", "corners", "--model", "baseline",
                        "--out", str(out), "--resume"] + TINY, capsys)
    assert code == 1 and "differs from config.json in ['model']" in one_line_error(err)

    # A corrupt checkpoint: a one-line error naming it.
    ckpt = out / "checkpoints" / "step_00000020"
    for root, _, files in os.walk(ckpt):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"\0garbage")
    code, _, err = run(["eval", str(out)], capsys)
    assert code == 1 and "step_00000020" in one_line_error(err)  # one line: no orbax tracebacks
    # --resume skips it, says so in one line, and redoes steps 11..20 from the intact step 10.
    code, _, err = run(["train", "toy2d", "--dataset", "corners", "--model", "absflow", "--out", str(out),
                        "--resume"] + TINY, capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "skipped the damaged checkpoint of step 20" in lines[0], err
    m2 = json.loads((out / "metrics.json").read_text())
    assert m2["resumed_from"] == 10 and m2["test_nats"] == pytest.approx(m["test_nats"], abs=1e-6)
    assert m2["num_parameters"] == m["num_parameters"] > 0


@pytest.mark.slow
def test_nan_loss_leaves_no_successful_run(tmp_path, capsys):
    out = tmp_path / "nan"
    code, _, err = run(["train", "toy2d", "--dataset", "checkerboard", "--lr", "1e30", "--out", str(out)] + TINY,
                       capsys)
    assert code == 1
    line = one_line_error(err)
    assert "TrainingError" in line and ("loss is nan" in line or "loss is inf" in line) and "at step" in line
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_python_dash_m_help():
    r = subprocess.run([sys.executable, "-m", "survae_jax", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "demo" in r.stdout


def _cli(args, **kw):
    """``python -m survae_jax ARGS`` in a subprocess, with this checkout's package."""
    import survae_jax

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(survae_jax.__file__))}
    env.pop("SURVAE_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "survae_jax", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_steps_beyond_the_int32_counter_refused_before_any_file(tmp_path):
    p = _cli(["train", "toy2d", "--steps", str(10**12), "--out", str(tmp_path / "r")])
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2
    line = one_line_error(err)
    assert "argument --steps: must be at most 2,147,483,647" in line and "got 1,000,000,000,000" in line
    assert not (tmp_path / "r").exists()


def test_unwritable_checkpoints_folder_fails_before_training(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("a file where the folder should be")  # root cannot write into it either
    p = _cli(["train", "toy2d", "--out", str(run_dir)] + TINY)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1
    line = one_line_error(err)  # one line, no library tracebacks
    assert "CheckpointError: cannot write checkpoints to" in line and str(run_dir / "checkpoints") in line
    assert sorted(os.listdir(run_dir)) == ["checkpoints"]  # nothing written, nothing trained


@pytest.mark.slow
def test_ctrl_c_saves_the_step_and_resume_continues_from_it(tmp_path):
    import signal

    from survae_jax.checkpoint import list_checkpoints

    out = tmp_path / "run"
    common = ["train", "toy2d", "--dataset", "corners", "--model", "baseline", "--num-train", "512",
              "--num-test", "256", "--log-every", "10", "--checkpoint-every", "100000", "--out", str(out)]
    p = _cli(common + ["--steps", "1000000"])
    seen = []
    for line in p.stderr:  # not a terminal: plain progress lines
        seen.append(line)
        if line.startswith("step "):
            p.send_signal(signal.SIGINT)
            break
    rest_out, rest_err = p.communicate(timeout=300)
    err = "".join(seen) + rest_err
    assert p.returncode == 130, err
    steps = list_checkpoints(str(out / "checkpoints"))
    assert len(steps) == 1 and 0 < steps[0] < 1_000_000, (steps, err)
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("survae-jax: interrupted: train: interrupted at step")
    assert f"step_{steps[0]:08d}" in last and "\r" not in err
    assert not (out / "metrics.json").exists()

    p = _cli(common + ["--steps", str(steps[0] + 8), "--resume", "--no-progress"])
    stdout, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["resumed_from"] == steps[0] and m["step"] == steps[0] + 8


@pytest.mark.slow
def test_eval_iwbo(tmp_path, capsys):
    out = tmp_path / "aug"
    code, _, err = run(["train", "toy2d", "--dataset", "corners", "--model", "augmented", "--out", str(out)] + TINY,
                       capsys)
    assert code == 0, err
    code, stdout, err = run(["eval", str(out)], capsys)
    elbo = json.loads(stdout)
    code, stdout, err = run(["eval", str(out), "--iwbo", "16"], capsys)
    assert code == 0, err
    iw = json.loads(stdout)
    assert iw["iwbo_samples"] == 16 and "iwbo_samples" not in elbo and iw["test_exact"] is False
    assert iw["iwbo_examples"] == 256  # toy2d has no iwbo_examples: the whole test set
    assert iw["test_iwbo_nll_nats"] < elbo["test_nats"] and "test_nats" not in iw  # the tighter bound, labelled
    code, _, err = run(["eval", str(out), "--iwbo", "0"], capsys)
    assert code == 2 and "--iwbo: must be an integer >= 1" in one_line_error(err)
