"""One of the two processes of tests/test_sharding.py's two-host check (CPU, loopback):
``JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=i python multihost_checks.py CKPT OUT.json``.

Each process trains the toy baseline on its shard of the data for 6 steps with checkpoints
(written by process 0), trains again from the checkpoint to step 9 (restored in every process),
evaluates the test set together with the other process and writes what it got to OUT.json.
"""

import json
import os
import sys

import jax
import numpy as np
from flax import nnx

from survae_jax.checkpoint import list_checkpoints
from survae_jax.distributed import maybe_initialize_distributed, process_shard
from survae_jax.evaluation import evaluate
from survae_jax.experiments import toy2d
from survae_jax.training import TrainConfig, train

CFG = toy2d.Toy2DConfig(dataset="checkerboard", model="baseline", num_train=256, num_test=64,
                        num_couplings=2, hidden=(16,))


def schedule(steps):
    return TrainConfig(steps=steps, batch_size=32, log_every=3, checkpoint_every=3, keep_checkpoints=0,
                       progress=False)


if __name__ == "__main__":
    assert maybe_initialize_distributed()  # from the environment, before any device is used
    ckpt, out = sys.argv[1], sys.argv[2]
    train_x, test_x = toy2d.EXPERIMENT.load_data(CFG)
    local = process_shard(train_x)
    first = train(toy2d.build_model(CFG), local, config=schedule(6), checkpoint_dir=ckpt)
    saved = list_checkpoints(ckpt)
    model = toy2d.build_model(CFG)
    second = train(model, local, config=schedule(9), checkpoint_dir=ckpt, resume=True)
    ll = evaluate(model, test_x, batch_size=40)
    params = [np.asarray(x).tolist() for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
    with open(out, "w") as f:
        json.dump({"process": jax.process_index(), "processes": jax.process_count(), "devices": second.devices,
                   "local_rows": int(local.shape[0]), "saved_after_first": saved, "resumed_from": second.resumed_from,
                   "params": params, "ll": ll.tolist(), "pid": os.getpid()}, f)
