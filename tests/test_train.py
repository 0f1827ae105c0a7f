"""The training loop: exact resume, learning, NaN errors, evaluation, checkpoints."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.checkpoint import CheckpointError, list_checkpoints
from survae_jax.distributions import StandardNormal
from survae_jax.flow import Flow
from survae_jax.metrics import bits_per_dim, nats, per_point_log_likelihood
from survae_jax.nn.mlp import MLP
from survae_jax.training import TrainConfig, TrainingError, evaluate, nll_loss, train
from survae_jax.transforms.bijections.coupling import AffineCoupling
from survae_jax.transforms.bijections.permutation import Reverse


def tiny_flow(seed=0):
    rngs = nnx.Rngs(seed)
    return Flow(
        StandardNormal((2,)),
        [AffineCoupling(MLP(1, 2, (16,), zero_init_last=True, rngs=rngs)), Reverse(2),
         AffineCoupling(MLP(1, 2, (16,), zero_init_last=True, rngs=rngs))],
    )


def tiny_data(n=256):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return np.stack([x[:, 0], 0.3 * x[:, 1] + x[:, 0] ** 2 - 1], axis=1).astype(np.float32)


def params_of(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


# 256 examples / batch 32 = 8 steps per epoch: 40 steps cross several epoch boundaries.
CFG = TrainConfig(steps=40, batch_size=32, seed=5, log_every=6, checkpoint_every=12, progress=False)


@pytest.mark.slow
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    data = tiny_data()
    full = train(tiny_flow(), data, config=CFG, checkpoint_dir=str(tmp_path / "a"))

    class Killed(Exception):
        pass

    def kill(step, _):
        if step >= 30:  # killed after the checkpoint at 24, mid-epoch and mid-interval
            raise Killed

    model = tiny_flow()
    with pytest.raises(Killed):
        train(model, data, config=CFG, checkpoint_dir=str(tmp_path / "b"), callback=kill)
    assert list_checkpoints(str(tmp_path / "b"))[-1] == 24
    resumed_model = tiny_flow()
    resumed = train(resumed_model, data, config=CFG, checkpoint_dir=str(tmp_path / "b"), resume=True)
    assert resumed.resumed_from == 24 and resumed.step == full.step == 40
    for a, b in zip(params_of(full.model), params_of(resumed_model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.history, resumed.history)
    assert list_checkpoints(str(tmp_path / "b")) == [36, 40]  # keep_checkpoints=2
    again = train(tiny_flow(), data, config=CFG, checkpoint_dir=str(tmp_path / "b"), resume=True)
    assert again.step == 40 and np.isnan(again.steps_per_second)  # finished: nothing to do
    for a, b in zip(params_of(full.model), params_of(again.model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_loss_decreases_and_evaluate_matches_log_prob():
    data = tiny_data(512)
    model = tiny_flow()
    before = nats(evaluate(model, data, batch_size=100))
    res = train(model, data, config=TrainConfig(steps=150, batch_size=64, log_every=50, progress=False),
                optimizer=None)
    after = nats(evaluate(model, data, batch_size=100))  # 512 = 5 batches + 88 padded rows
    assert after < before - 0.3
    assert res.history[-1, 1] < res.history[0, 1]
    assert res.steps_per_second > 0 and res.train_nats == pytest.approx(after, abs=0.3)
    eager = np.asarray(model.log_prob(jnp.asarray(data)))
    np.testing.assert_allclose(evaluate(model, data, batch_size=100), eager, rtol=1e-5, atol=1e-5)


def test_nan_loss_names_the_step(tmp_path):
    def bad_loss(model, batch, key):
        return jnp.where(jnp.all(batch > -100), jnp.nan, 0.0) + nll_loss(model, batch, key)

    with pytest.raises(TrainingError, match=r"loss is nan at step 0"):
        train(tiny_flow(), tiny_data(), config=CFG, loss_fn=bad_loss, checkpoint_dir=str(tmp_path))
    assert list_checkpoints(str(tmp_path)) == []


def test_errors():
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train(tiny_flow(), tiny_data(16), config=CFG)
    with pytest.raises(TrainingError, match="same first axis"):
        train(tiny_flow(), (tiny_data(64), np.zeros((32, 1))), config=CFG)


def test_resume_into_a_different_model_fails(tmp_path):
    data = tiny_data()
    cfg = TrainConfig(steps=6, batch_size=32, log_every=6, progress=False)
    train(tiny_flow(), data, config=cfg, checkpoint_dir=str(tmp_path))
    other = Flow(StandardNormal((2,)), [AffineCoupling(MLP(1, 2, (8,), rngs=nnx.Rngs(0)))])
    with pytest.raises(CheckpointError, match="different model"):
        train(other, data, config=cfg, checkpoint_dir=str(tmp_path), resume=True)
    step_dir = os.path.join(str(tmp_path), "step_00000006")
    for root, _, files in os.walk(step_dir):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"garbage")
    with pytest.raises(CheckpointError, match="step_00000006"):
        train(tiny_flow(), data, config=cfg, checkpoint_dir=str(tmp_path), resume=True)


def test_metrics_values():
    ll = np.array([-1.0, -3.0])
    assert nats(ll) == 2.0
    assert bits_per_dim(ll, 2) == pytest.approx(1.0 / np.log(2))
    assert per_point_log_likelihood(ll, 4) == -0.5
    with pytest.raises(ValueError):
        nats(np.zeros((2, 2)))


def test_data_dependent_init_runs_once_and_not_on_resume(tmp_path):
    from survae_jax.training import _auto_init
    from survae_jax.transforms.bijections.actnorm import ActNorm

    calls = []

    def spy(model, batch, key):
        calls.append(batch.shape)
        return _auto_init(model, batch, key)

    data = tiny_data() * 3.0 + 5.0
    model = Flow(StandardNormal((2,)), [ActNorm(2), AffineCoupling(MLP(1, 2, (8,), rngs=nnx.Rngs(0)))])
    cfg = TrainConfig(steps=4, batch_size=32, log_every=4, init_batch_size=256, progress=False)
    train(model, data, config=cfg, checkpoint_dir=str(tmp_path), init_fn=spy)
    assert calls == [(256, 2)] and bool(model.transforms[0].initialized[...])
    # The ActNorm was set from the data (mean ~ 5 before 4 small Adam steps), not left at 0.
    assert np.all(np.abs(np.asarray(model.transforms[0].loc[...])) > 3.0)
    fresh = Flow(StandardNormal((2,)), [ActNorm(2), AffineCoupling(MLP(1, 2, (8,), rngs=nnx.Rngs(0)))])
    train(fresh, data, config=TrainConfig(steps=8, batch_size=32, log_every=4, progress=False),
          checkpoint_dir=str(tmp_path), resume=True, init_fn=spy)
    assert len(calls) == 1 and bool(fresh.transforms[0].initialized[...])


def test_checkpoint_round_trip_with_keys_and_empty_arrays(tmp_path):
    from survae_jax.checkpoint import restore_checkpoint, save_checkpoint

    tree = {"w": jnp.arange(6.0).reshape(2, 3), "empty": jnp.zeros((0, 4)), "key": jax.random.key(3),
            "n": jnp.asarray(7, jnp.int32), "flag": jnp.asarray(True)}
    path = save_checkpoint(str(tmp_path), 12, tree, history=np.array([[12.0, 1.5]]))
    template = jax.tree.map(jnp.zeros_like, {**tree, "key": jax.random.key(0)})
    out, step, hist = restore_checkpoint(path, template)
    assert step == 12 and hist.tolist() == [[12.0, 1.5]]
    np.testing.assert_array_equal(out["w"], tree["w"])
    assert out["empty"].shape == (0, 4) and int(out["n"]) == 7 and bool(out["flag"])
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(tree["key"]))
    with pytest.raises(CheckpointError, match="not found"):
        restore_checkpoint(str(tmp_path / "step_00000099"), template)


def _damage(step_dir, which="all"):
    """Overwrite files of a checkpoint folder: every file, or only the stored array data."""
    for root, _, files in os.walk(step_dir):
        for f in files:
            if which == "all" or (which == "data" and os.path.basename(root) == "d" and "ocdbt" in root):
                with open(os.path.join(root, f), "r+b") as fh:
                    data = bytearray(fh.read())
                    fh.seek(0)
                    fh.write(bytes(b ^ 0x5A for b in data) if which == "data" else b"\0garbage"[: len(data)])


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path):
    data = tiny_data()
    cfg = TrainConfig(steps=12, batch_size=32, log_every=6, checkpoint_every=6, seed=2, progress=False)
    full = train(tiny_flow(), data, config=cfg, checkpoint_dir=str(tmp_path))
    assert list_checkpoints(str(tmp_path)) == [6, 12]
    _damage(os.path.join(str(tmp_path), "step_00000012"))
    lines = []
    model = tiny_flow()
    res = train(model, data, config=cfg, checkpoint_dir=str(tmp_path), resume=True, log=lines.append)
    assert len(lines) == 2 and "skipped the damaged checkpoint of step 12" in lines[0]
    assert lines[1].startswith("train: execution=loop")
    assert "step_00000012" in lines[0] and lines[0].endswith("trying step 6.")
    assert res.resumed_from == 6 and res.step == 12  # steps 7..12 redone: the same parameters
    for a, b in zip(params_of(full.model), params_of(model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.history, res.history)


@pytest.mark.parametrize("which", ["all", "data"])
def test_damaged_checkpoint_fails_before_orbax_reads_it(tmp_path, monkeypatch, which):
    """Orbax's restore reads all arrays at once and closes its event loop at the first failure
    while other reads are in flight ("RuntimeError: Event loop is closed" tracebacks on stderr):
    a damaged checkpoint must be caught by the synchronous check, before orbax reads it."""
    from survae_jax import checkpoint
    from survae_jax.checkpoint import restore_checkpoint, save_checkpoint

    tree = {f"w{i}": jnp.full((3, 4), float(i)) for i in range(12)}
    path = save_checkpoint(str(tmp_path), 3, tree)
    assert restore_checkpoint(path, tree)[1] == 3  # intact: the check passes, orbax restores

    class NoOrbax:
        def __init__(self, *a, **k):
            raise AssertionError("orbax asked to read a damaged checkpoint")

    _damage(path, which)
    monkeypatch.setattr(checkpoint.ocp, "StandardCheckpointer", NoOrbax)
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*step_00000003"):
        restore_checkpoint(path, tree)


def tiny_conv_flow(seed=0):
    from survae_jax.nn.densenet import DenseNet
    from survae_jax.transforms.bijections.squeeze import Squeeze2d

    rngs = nnx.Rngs(seed)
    net = DenseNet(2, 4, mid_channels=4, depth=1, growth=2, zero_init_last=False, rngs=rngs)
    return Flow(StandardNormal((2, 2, 4)), [Squeeze2d(), AffineCoupling(net, axis=-1)])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_loop_and_per_step_execution_give_the_same_bits_and_say_which_ran(kind):
    if kind == "dense":
        make, data = tiny_flow, tiny_data(64)
    else:
        make = tiny_conv_flow
        data = np.random.default_rng(1).standard_normal((64, 4, 4, 1)).astype(np.float32)
    cfg = TrainConfig(steps=10, batch_size=16, seed=3, log_every=3, checkpoint_every=0, progress=False)
    notes, runs = [], {}
    modes = ("loop", "step", "auto") if kind == "dense" else ("loop", "auto")
    for ex in modes:
        runs[ex] = train(make(), data, config=dataclasses.replace(cfg, execution=ex), log=notes.append)
        assert runs[ex].execution in ("loop", "step")
    assert runs["loop"].execution == "loop" and runs["loop"].execution_reason == "requested"
    # the rule: convolutions on XLA:CPU run one call per step, dense steps in the loop
    expected = "step" if (kind == "conv" and jax.default_backend() == "cpu") else "loop"
    assert runs["auto"].execution == expected and runs["auto"].execution_reason.startswith("auto:")
    assert [n.split()[1] for n in notes] == [f"execution={m}" for m in modes[:-1]] + [f"execution={expected}"]
    other = runs["step"] if kind == "dense" else runs["auto"]
    assert other.execution == "step" or expected == "loop"
    for a, b in zip(params_of(runs["loop"].model), params_of(other.model)):
        if kind == "dense":  # the same kernels: the same bits
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        else:  # XLA picks other convolution kernels inside a loop: rounding differs
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(runs["loop"].history, other.history, rtol=1e-6)
    with pytest.raises(ValueError, match="execution"):
        train(make(), data, config=dataclasses.replace(cfg, execution="fast"))


def test_validation_keeps_the_best_and_stops_early(tmp_path):
    import optax

    import survae_jax as sj

    rng = np.random.default_rng(1)
    train_x = (rng.standard_normal((256, 2)) + 3.0).astype(np.float32)  # learning it worsens valid
    valid_x = (rng.standard_normal((100, 2)) - 3.0).astype(np.float32)
    cfg = TrainConfig(steps=400, batch_size=32, log_every=5, checkpoint_every=0, valid_every=5, patience=2,
                      progress=False)
    model = tiny_flow()
    res = train(model, train_x, config=cfg, optimizer=optax.adam(1e-2), valid_data=valid_x,
                checkpoint_dir=str(tmp_path))
    steps, values = res.valid_history[:, 0], res.valid_history[:, 1]
    assert res.stopped_early and res.step == res.best_step + 2 * 5 < 400  # 2 validations without a best
    assert steps.tolist() == list(range(5, res.step + 1, 5)) and values[-1] > values.min()
    assert res.best_step == steps[np.argmin(values)] and res.best_valid_nats == pytest.approx(values.min())
    assert np.all(values[steps > res.best_step] >= res.best_valid_nats)
    # The returned model is the best one, and so is <checkpoint_dir>/best.
    assert nats(evaluate(model, valid_x)) == pytest.approx(res.best_valid_nats, rel=1e-5)
    best = sj.load_model(str(tmp_path / "best"), tiny_flow(1))
    np.testing.assert_array_equal(np.asarray(best.log_prob(valid_x)), np.asarray(model.log_prob(valid_x)))
    assert list_checkpoints(str(tmp_path)) == [res.step]  # the stopping step is saved
    again = train(tiny_flow(), train_x, config=cfg, valid_data=valid_x, checkpoint_dir=str(tmp_path), resume=True)
    assert again.stopped_early and again.step == res.step and again.best_step == res.best_step  # nothing more


def test_history_has_one_row_per_log_every_steps_and_plain_progress_lines(capsys):
    # 8 steps per epoch and log_every 6: blocks end at 6, 8, 12, 16, ... but rows at 6, 12, ..., 36, 40.
    cfg = TrainConfig(steps=40, batch_size=32, seed=5, log_every=6, checkpoint_every=0, progress=True)
    res = train(tiny_flow(), tiny_data(), config=cfg)
    assert res.history[:, 0].tolist() == [6, 12, 18, 24, 30, 36, 40]
    err = capsys.readouterr().err
    assert "\r" not in err  # not a terminal: plain lines, one per row
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["6/40", "12/40", "18/40", "24/40", "30/40", "36/40", "40/40"]
    for line, (_, value) in zip(lines, res.history):
        assert f"train {value:.4f} nats" in line and line.endswith("steps/s")


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    calls = []
    with pytest.raises(CheckpointError, match=r"cannot write checkpoints to .*file/ck"):
        train(tiny_flow(), tiny_data(), config=CFG, checkpoint_dir=str(blocker / "ck"),
              callback=lambda s, m: calls.append(s))
    assert calls == []  # not one block trained


def test_ctrl_c_finishes_the_block_saves_it_and_resume_matches(tmp_path):
    import signal
    import threading

    from survae_jax.training import TrainingInterrupted

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    data = tiny_data()
    full = train(tiny_flow(), data, config=CFG)
    lines = []

    def ctrl_c(step, _):
        if step == 16:  # blocks end at 6, 8, 12, 16, 18, 24, ...: the one running stops at 18
            # raise() signals this thread, so the handler has run before the next block starts;
            # os.kill may hand the signal to an XLA worker thread, which a loaded machine can
            # schedule after that block has ended (the test then saw the stop one block late).
            signal.raise_signal(signal.SIGINT)

    model = tiny_flow()
    with pytest.raises(TrainingInterrupted, match="interrupted at step 18 of 40; checkpoint .*step_00000018") as e:
        train(model, data, config=CFG, checkpoint_dir=str(tmp_path), callback=ctrl_c, log=lines.append)
    assert isinstance(e.value, KeyboardInterrupt) and e.value.step == 18
    assert lines[0].startswith("train: execution=loop")  # the loop's note, then the interrupt's
    assert len(lines) == 2 and "stopping after this block" in lines[1]
    assert list_checkpoints(str(tmp_path)) == [12, 18]  # step 18 kept, not only the last regular one
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed = train(tiny_flow(), data, config=CFG, checkpoint_dir=str(tmp_path), resume=True)
    assert resumed.resumed_from == 18 and resumed.step == 40
    for a, b in zip(params_of(full.model), params_of(resumed.model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.history, resumed.history)


@pytest.mark.slow
def test_quick_start_couplings_train_stably_by_default():
    """Issue 11, item 8: the README's quick-start model with the default coupling scale trains on
    the checkerboard without a spike for 3 seeds x 2,000 steps (with ``scale_fn="exp"``: a first
    block of 2e8 nats at seed 0, 36 nats at seed 2, a 0.9-nat jump at seed 1); the paper's
    experiments keep the reference's ``exp`` explicitly."""
    from survae_jax.data.toy2d import load_toy2d
    from survae_jax.experiments.toy2d import Toy2DConfig, build_model
    from survae_jax.transforms import AbsSurjection, Logit, Scale

    data, _ = load_toy2d("checkerboard", num_train=20_000, num_test=10)
    for seed in range(3):
        rngs = nnx.Rngs(seed)
        flow = Flow(StandardNormal((2,)), [AbsSurjection(), Scale(1 / 4), Logit(), AffineCoupling(MLP(1, 2, rngs=rngs)),
                                           Reverse(2), AffineCoupling(MLP(1, 2, rngs=rngs))])
        h = train(flow, data, config=TrainConfig(steps=2000, batch_size=128, seed=seed, log_every=50,
                                                 progress=False)).history[:, 1]
        assert np.isfinite(h).all() and h.max() < 8.0 and np.diff(h).max() < 0.5 and h[-1] < 4.3, (seed, h)
    baseline = build_model(Toy2DConfig(dataset="checkerboard", steps=1))
    assert {t.family.scale_fn for t in baseline.transforms if isinstance(t, AffineCoupling)} == {"exp"}


def test_a_fresh_run_refuses_a_checkpoint_dir_that_holds_another_run(tmp_path):
    cfg = dataclasses.replace(CFG, steps=12)
    train(tiny_flow(), tiny_data(), config=cfg, checkpoint_dir=str(tmp_path / "c"))
    with pytest.raises(CheckpointError, match="already holds checkpoints.*resume=True"):
        train(tiny_flow(1), tiny_data(), config=cfg, checkpoint_dir=str(tmp_path / "c"))
