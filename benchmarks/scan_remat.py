"""Training speed of the PermuteFlow with and without a rematerialised ``Scan``, alternating.

For each number of flow steps ``L`` in ``--steps`` (the point-cloud experiment's PermuteFlow,
batch 128, Adam 1e-3, the model of ``benchmarks/models.py``), ``survae_jax.train`` runs
``--train-steps`` steps with ``Scan(..., remat=False)`` and then with ``remat=True``, for
``--rounds`` rounds, compile excluded. ``remat=True`` recomputes each block's intermediates in
the backward pass instead of storing them for all ``L`` blocks. Reported: the median steps/s of
each and their ratio. The point-cloud experiment turns ``remat`` on from this measurement.
Usage: ``python benchmarks/scan_remat.py [--steps 8,16,32] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics

from models import permuteflow
from survae_jax.training import TrainConfig, train
from survae_jax.transforms import Scan


def steps_per_second(num_steps: int, remat: bool, train_steps: int) -> float:
    model, data, loss_fn, optimizer, batch_size = permuteflow(num_steps)
    scan = model.transforms[-1]  # the flow's last layer is the Scan of its steps
    assert isinstance(scan, Scan), type(scan).__name__
    scan.remat = remat
    result = train(model, data, optimizer=optimizer, loss_fn=loss_fn, init_fn=None,
                   config=TrainConfig(steps=train_steps, batch_size=batch_size, log_every=train_steps,
                                      checkpoint_every=0, progress=False))
    return result.steps_per_second


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="8,16,32", help="flow steps L, comma-separated")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=4)
    args = p.parse_args()
    for num_steps in (int(s) for s in args.steps.split(",")):
        rates = {False: [], True: []}
        for _ in range(args.rounds):
            for remat in (False, True):
                rates[remat].append(steps_per_second(num_steps, remat, args.train_steps))
        stored, recomputed = (statistics.median(rates[r]) for r in (False, True))
        print(f"PermuteFlow-{num_steps}: stored {stored:.3f} steps/s, remat {recomputed:.3f} steps/s, "
              f"remat / stored {recomputed / stored:.2f}", flush=True)


if __name__ == "__main__":
    main()
