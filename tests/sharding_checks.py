"""The 8-device checks of tests/test_sharding.py, run in a subprocess (the forced host devices
must be set before JAX starts): ``python sharding_checks.py OUT.json``.

Each model is trained, evaluated and sampled on 8 devices and on 1 from the same seed and
batches; the differences, the backend compile events after the first block and the errors are
written to OUT.json for the test to assert on.
"""

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from survae_jax.evaluation import evaluate, sample  # noqa: E402
from survae_jax.experiments import image, image_flows, toy2d  # noqa: E402
from survae_jax.training import TrainConfig, train  # noqa: E402

COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: COMPILES.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run(build, data, devices, **kw):
    """Train a fresh model; the compile events after the first block ends, the notes, the model."""
    model, notes, after_first = build(), [], []
    config = TrainConfig(**kw.pop("config"), devices=devices, progress=False)
    result = train(model, data, config=config, log=notes.append, optimizer=kw.pop("optimizer", optax.adam(1e-3)),
                   callback=lambda step, mean: after_first.append(len(COMPILES)), **kw)
    return model, result, notes, after_first[-1] - after_first[0]


def toy():
    cfg = toy2d.Toy2DConfig(dataset="checkerboard", model="baseline", num_train=256, num_test=100,
                            num_couplings=2, hidden=(16,))
    train_x, test_x = toy2d.EXPERIMENT.load_data(cfg)
    schedule = dict(steps=12, batch_size=64, log_every=4, checkpoint_every=4, keep_checkpoints=0,
                    valid_batch_size=20, restore_best=False)  # validation: 3 batches of 20 (24 on the mesh)
    ckpt = tempfile.mkdtemp()
    out = {}
    for d in (8, 1):  # 4 steps an epoch: 3 blocks, 3 epochs
        model, result, notes, compiles = run(lambda: toy2d.build_model(cfg), train_x, d, config=schedule,
                                             checkpoint_dir=os.path.join(ckpt, str(d)), valid_data=test_x[:60])
        out[d] = dict(params=nnx.state(model, nnx.Param), result=result, notes=notes, compiles=compiles,
                      ll=evaluate(model, test_x, batch_size=48, devices=d),  # 3 batches of 34 (40 on the mesh)
                      samples=sample(model, jax.random.key(5), 50, devices=d))
    p8 = jax.tree.leaves(out[8]["params"])
    resumed = {}
    for d in (8, 1):  # from the 8-device checkpoint of step 8: on 8 devices again, and on 1
        shutil.rmtree(os.path.join(ckpt, "8", "step_00000012"), ignore_errors=True)
        model, result, _, _ = run(lambda: toy2d.build_model(cfg), train_x, d, config=schedule,
                                  checkpoint_dir=os.path.join(ckpt, "8"), resume=True)
        resumed[d] = (result.resumed_from, max_diff(nnx.state(model, nnx.Param), out[8]["params"]))
    shutil.rmtree(ckpt)
    try:
        train(toy2d.build_model(cfg), train_x, config=TrainConfig(steps=1, batch_size=60, devices=8, progress=False))
        error = ""
    except ValueError as e:
        error = str(e)
    return {
        "param_diff": max_diff(out[8]["params"], out[1]["params"]),
        "param_scale": max(float(np.max(np.abs(np.asarray(x)))) for x in p8),
        "replicated": all(x.sharding.is_fully_replicated and len(x.sharding.device_set) == 8 for x in p8),
        "devices": [out[8]["result"].devices, out[1]["result"].devices],
        "execution": out[8]["result"].execution,
        "notes8": out[8]["notes"], "notes1": out[1]["notes"],
        "history_diff": max_diff(out[8]["result"].history, out[1]["result"].history),
        "valid_rows": len(out[8]["result"].valid_history),
        "valid_diff": max_diff(out[8]["result"].valid_history, out[1]["result"].valid_history),
        "compiles_after_first_block": out[8]["compiles"],
        "ll_diff": max_diff(out[8]["ll"], out[1]["ll"]), "ll_shape": list(out[8]["ll"].shape),
        "ll_mean": float(np.mean(out[1]["ll"])),
        "sample_diff": max_diff(out[8]["samples"], out[1]["samples"]),
        "sample_shape": list(out[8]["samples"].shape),
        "indivisible_error": error,
        "resumed_on_8": resumed[8], "resumed_on_1": resumed[1],
    }


def images():
    train_x, test_x = image.EXPERIMENT.load_data(image.cpu_config(dataset="digits"))

    def build():  # the smallest multi-scale flow: 2 scales of 1 step, max pooling between them
        net = dict(num_blocks=1, mid_channels=8, depth=1, growth=8)
        return image_flows.multiscale_flow((8, 8, 1), image_flows.glow_step(net, rngs=nnx.Rngs(0)), num_scales=2,
                                           num_steps=1, pooling="max", num_levels=17)

    out = {}
    for d in (8, 1):
        model, result, _, compiles = run(build, train_x[:256], d, optimizer=optax.adamax(1e-3),
                                         config=dict(steps=3, batch_size=16, log_every=1))
        key = jax.random.key(3)
        iwbo = evaluate(model, test_x[:20], key=key, batch_size=16, devices=d,  # 2 batches of 10 (16 on the mesh)
                        log_prob_fn=image.iwbo_fn(4, 2))
        out[d] = dict(params=nnx.state(model, nnx.Param), result=result, compiles=compiles, iwbo=iwbo)
    return {
        "param_diff": max_diff(out[8]["params"], out[1]["params"]),
        "execution": out[8]["result"].execution,
        "history_diff": max_diff(out[8]["result"].history, out[1]["result"].history),
        "compiles_after_first_step": out[8]["compiles"],
        "iwbo_diff": max_diff(out[8]["iwbo"], out[1]["iwbo"]),
        "iwbo_mean": float(np.mean(out[1]["iwbo"])), "iwbo_shape": list(out[8]["iwbo"].shape),
    }


if __name__ == "__main__":
    report = {"device_count": jax.device_count(), "toy": toy(), "image": images()}
    with open(sys.argv[1], "w") as f:
        json.dump(report, f)
