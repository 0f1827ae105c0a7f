"""The ``survae-jax`` command: bad inputs give one-line errors; a tiny run end to end."""

import json
import os
import subprocess
import sys

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
    ],
)
def test_bad_usage(argv, expect, capsys, tmp_path):
    code, _, err = run(argv + ["--out", str(tmp_path / "r")] if argv[:1] == ["train"] and len(argv) > 2 else argv, capsys)
    assert code == 2
    assert expect in one_line_error(err)
    assert not (tmp_path / "r" / "metrics.json").exists()


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


@pytest.mark.slow
def test_tiny_run_end_to_end_then_errors(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["train", "toy2d", "--dataset", "corners", "--model", "absflow",
                             "--out", str(out)] + TINY, capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["step"] == 20 and m["steps_per_second"] > 0 and 1.0 < m["test_nats"] < 6.0
    assert {"train_nats", "test_nats", "wall_time_s", "steps_per_second"} <= set(m)
    assert (out / "density.png").stat().st_size > 1000 and (out / "samples.png").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["experiment"] == "toy2d" and cfg["model"] == "absflow"

    code, stdout, _ = run(["eval", str(out)], capsys)
    assert code == 0 and json.loads(stdout)["test_nats"] == pytest.approx(m["test_nats"], abs=1e-6)
    code, stdout, _ = run(["sample", str(out), "--num", "1000", "--out", str(tmp_path / "s.png")], capsys)
    assert code == 0 and (tmp_path / "s.png").exists()

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
    assert code == 1 and "step_00000020" in one_line_error(err)


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
