"""Data parallelism through jax.sharding: 8 forced CPU devices agree with 1, the sharded step
compiles once, bad device counts are refused, and two processes (CPU, loopback) train as one.

The 8-device checks run in one subprocess (tests/sharding_checks.py): the forced host devices
must be set before JAX starts, and this process has started it with one.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

import survae_jax
from survae_jax.cli import main
from survae_jax.distributed import DataParallel, maybe_initialize_distributed, process_shard
from survae_jax.training import TrainConfig, train

HERE = os.path.dirname(os.path.abspath(__file__))
# Float32 sums over a batch split in 8 partial sums then all-reduced: a few ulps on values of order 1.
TOL = 1e-5


def _env(**extra):
    root = os.path.dirname(os.path.dirname(survae_jax.__file__))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROC", "JAX_PROCESS"))}
    env.update(PYTHONPATH=os.pathsep.join([root, HERE]), **extra)
    return env


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharding") / "report.json"
    r = subprocess.run([sys.executable, os.path.join(HERE, "sharding_checks.py"), str(out)], env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_toy_baseline_on_8_devices_matches_1_device(eight):
    toy = eight["toy"]
    assert eight["device_count"] == 8 and toy["devices"] == [8, 1]
    assert toy["param_diff"] < TOL and toy["param_scale"] > 0.1  # 12 Adam steps moved the weights
    assert toy["history_diff"] < TOL  # the same losses step by step: the same batches
    assert toy["valid_rows"] == 3 and toy["valid_diff"] < TOL * 10  # validations at 4, 8, 12 (~7 nats)
    assert toy["replicated"]  # parameters replicated on the 8 devices
    assert toy["execution"] == "loop"
    assert len(toy["notes8"]) == 1 and "; devices=8: mesh data=8 (8 cpu devices" in toy["notes8"][0]
    assert "batch sharded P('data'), parameters and optimizer state replicated." in toy["notes8"][0]
    assert toy["notes1"][0].endswith("; devices=1: one device (cpu, unsharded).")


@pytest.mark.slow
def test_sharded_step_compiles_once(eight):
    # No backend compilation from the end of the first block (or step) to the last: 3 blocks
    # across 3 epochs of the toy loop, 3 one-step calls of the image flow.
    assert eight["toy"]["compiles_after_first_block"] == 0
    assert eight["image"]["execution"] == "step" and eight["image"]["compiles_after_first_step"] == 0


@pytest.mark.slow
def test_evaluation_and_sampling_on_8_devices_match_1_device(eight):
    toy = eight["toy"]
    assert toy["ll_shape"] == [100] and toy["ll_diff"] < TOL * abs(toy["ll_mean"])
    assert toy["sample_shape"] == [50, 2] and toy["sample_diff"] < TOL


@pytest.mark.slow
def test_image_flow_and_its_iwbo_on_8_devices_match_1_device(eight):
    img = eight["image"]
    assert img["param_diff"] < TOL and img["history_diff"] < TOL * 300  # losses of ~240 nats
    assert img["iwbo_shape"] == [20] and img["iwbo_diff"] < TOL * abs(img["iwbo_mean"])


@pytest.mark.slow
def test_resume_exact_on_the_same_device_count_close_on_another(eight):
    assert eight["toy"]["resumed_on_8"] == [8, 0.0]  # bit for bit
    step, diff = eight["toy"]["resumed_on_1"]
    assert step == 8 and diff < TOL


@pytest.mark.slow
def test_batch_not_divisible_by_the_devices_is_refused(eight):
    msg = eight["toy"]["indivisible_error"]
    assert "batch_size 60" in msg and "8 devices" in msg


def test_device_options_are_checked():
    for bad in (0, -1, True, "all", 1.5):
        with pytest.raises(ValueError, match="TrainConfig: devices"):
            TrainConfig(devices=bad)
    n = jax.device_count()
    with pytest.raises(ValueError, match=f"devices={n + 1}, but {n} cpu device"):
        DataParallel(n + 1, who="train")
    with pytest.raises(ValueError, match="distinct jax devices"):
        DataParallel([jax.devices()[0]] * 2)
    assert not DataParallel().sharded and DataParallel(1).describe() == "one device (cpu, unsharded)"


def test_process_shard_and_distributed_init_with_one_process(monkeypatch):
    x = np.arange(10)
    assert process_shard(x) is x
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SURVAE_JAX_DISTRIBUTED"):
        monkeypatch.delenv(name, raising=False)
    assert maybe_initialize_distributed() is False
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers"):
        maybe_initialize_distributed()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(ValueError, match="0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES, got 2 and 2"):
        maybe_initialize_distributed()


def test_cli_devices_flag(capsys, tmp_path):
    code = main(["train", "toy2d", "--devices", "0", "--out", str(tmp_path / "r")])
    assert code == 2 and "argument --devices: must be an integer >= 1, got 0" in capsys.readouterr().err
    n = jax.device_count()
    code = main(["train", "toy2d", "--devices", str(n + 1), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and f"survae-jax train: --devices {n + 1}, but {n} cpu device" in err  # the flag, as typed
    assert "devices=" not in err
    assert not (tmp_path / "r").exists()


def test_cli_batch_not_divisible_by_the_devices_names_the_flags(tmp_path):
    r = subprocess.run([sys.executable, "-m", "survae_jax", "train", "toy2d", "--devices", "2", "--batch-size", "7",
                        "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"))
    assert r.returncode == 2, r.stderr
    assert "--batch-size 7 does not divide by the 2 devices" in r.stderr
    assert "use a multiple of 2, or --devices N with N a divisor of 7." in r.stderr and "devices=" not in r.stderr
    assert not (tmp_path / "r").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_loopback_train_as_one(tmp_path):
    from survae_jax.evaluation import evaluate
    from survae_jax.experiments import toy2d

    sys.path.insert(0, HERE)
    import multihost_checks as mh

    port, ckpt = _free_port(), tmp_path / "ckpt"
    procs = [subprocess.Popen(
        [sys.executable, os.path.join(HERE, "multihost_checks.py"), str(ckpt), str(tmp_path / f"p{i}.json")],
        env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i),
                 JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        errs = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errs)
    got = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(2)]
    assert [g["process"] for g in got] == [0, 1] and all(g["processes"] == 2 and g["devices"] == 2 for g in got)
    assert all(g["local_rows"] == 128 for g in got)  # each process trained on its half
    # Checkpoints of steps 3 and 6, written once, then restored by both processes to continue.
    assert got[0]["saved_after_first"] == got[1]["saved_after_first"] == [3, 6]
    assert all(g["resumed_from"] == 6 for g in got)
    assert sorted(os.listdir(ckpt)) == ["step_00000003", "step_00000006", "step_00000009"]
    for a, b in zip(got[0]["params"], got[1]["params"]):
        np.testing.assert_array_equal(a, b)  # replicated: the same bits on both hosts
    # One process, one device, on the whole set (the two halves in process order), 9 steps:
    train_x, test_x = toy2d.EXPERIMENT.load_data(mh.CFG)
    model = toy2d.build_model(mh.CFG)
    result = train(model, train_x, config=mh.schedule(9))
    assert result.devices == 1 and result.sharding == "one device (cpu, unsharded)"  # the default, here
    for a, b in zip(got[0]["params"], jax.tree.leaves(nnx.state(model, nnx.Param))):
        np.testing.assert_allclose(a, np.asarray(b), atol=TOL)
    ll = evaluate(model, test_x, batch_size=40)
    np.testing.assert_allclose(got[0]["ll"], ll, rtol=TOL)
    np.testing.assert_array_equal(got[0]["ll"], got[1]["ll"])
