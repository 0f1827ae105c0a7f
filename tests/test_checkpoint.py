"""save_model/load_model, loading what train() wrote, mismatch messages, steps past 8 digits."""

import os

import numpy as np
import pytest
from flax import nnx

import survae_jax as sj
from survae_jax.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    checkpoint_path,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from survae_jax.distributions import StandardNormal
from survae_jax.nn import MLP
from survae_jax.transforms import ActNorm, AffineCoupling, Reverse


def build(seed=0, hidden=16):
    rngs = nnx.Rngs(seed)
    return sj.Flow(StandardNormal((2,)), [ActNorm(2), AffineCoupling(MLP(1, 2, (hidden,), rngs=rngs)), Reverse(2),
                                          AffineCoupling(MLP(1, 2, (hidden,), rngs=rngs))])


X = np.random.default_rng(0).standard_normal((256, 2)).astype(np.float32) * [1.0, 0.3] + [2.0, 0.0]
CFG = sj.TrainConfig(steps=8, batch_size=32, log_every=4, checkpoint_every=4, progress=False)


def test_save_model_load_model_round_trip(tmp_path):
    model = build()
    sj.train(model, X, config=CFG)
    path = sj.save_model(str(tmp_path / "m"), model)
    other = build(seed=1)
    assert not np.allclose(other.log_prob(X), model.log_prob(X))
    loaded = sj.load_model(path, other)
    assert loaded is other and bool(other.transforms[0].initialized[...])
    np.testing.assert_array_equal(np.asarray(other.log_prob(X)), np.asarray(model.log_prob(X)))
    with pytest.raises(CheckpointError, match="exists; pass overwrite=True"):
        sj.save_model(path, model)
    sj.save_model(path, build(seed=3), overwrite=True)
    with pytest.raises(CheckpointError, match="not found"):
        sj.load_model(str(tmp_path / "nowhere"), build())


def test_load_model_reads_what_train_wrote(tmp_path):
    model = build()
    sj.train(model, X, config=CFG, checkpoint_dir=str(tmp_path / "ck"))
    want = np.asarray(model.log_prob(X))
    for path in (tmp_path / "ck", tmp_path / "ck" / "step_00000008"):
        np.testing.assert_array_equal(np.asarray(sj.load_model(str(path), build(seed=2)).log_prob(X)), want)
    os.makedirs(tmp_path / "run")
    os.rename(tmp_path / "ck", tmp_path / "run" / "checkpoints")  # a survae-jax run folder
    np.testing.assert_array_equal(np.asarray(sj.load_model(str(tmp_path / "run"), build(seed=2)).log_prob(X)), want)


def test_a_different_model_is_an_error_naming_the_arrays(tmp_path):
    model = build()
    sj.train(model, X, config=CFG, checkpoint_dir=str(tmp_path / "ck"))
    with pytest.raises(CheckpointMismatchError) as e:
        sj.load_model(str(tmp_path / "ck"), build(hidden=8))
    msg = str(e.value)
    assert "['net']['hidden'][0]['bias']" in msg and "(16,)" in msg and "(8,)" in msg and "expects" in msg
    # The count mismatch says what the template expected and that it is a train() checkpoint.
    with pytest.raises(CheckpointMismatchError) as e:
        restore_checkpoint(checkpoint_path(str(tmp_path / "ck"), 8), nnx.state(build()))
    msg = str(e.value)
    assert "holds 33 arrays but the template has 12 (['transforms']: 12 arrays)" in msg  # Reverse's Fixed permutation
    assert "['transforms'][0]['initialized']" in msg and "load_model" in msg
    # A model with fewer layers whose arrays are a prefix of the saved ones: refused too.
    sj.save_model(str(tmp_path / "m"), model)
    short = sj.Flow(StandardNormal((2,)), [ActNorm(2), AffineCoupling(MLP(1, 2, (16,), rngs=nnx.Rngs(0)))])
    with pytest.raises(CheckpointMismatchError, match="different model"):
        sj.load_model(str(tmp_path / "m"), short)


def test_checkpoints_past_eight_digits_are_listed_pruned_and_resumed(tmp_path):
    d = str(tmp_path / "big")
    tree = {"w": np.arange(3.0)}
    for step in (99_999_999, 100_000_000, 100_000_001):
        save_checkpoint(d, step, tree, keep=2)
    assert sorted(os.listdir(d)) == ["step_100000000", "step_100000001"]
    assert list_checkpoints(d) == [100_000_000, 100_000_001]

    # train() resumes from a checkpoint of step 100,000,000 (its state taken from a short run).
    small = str(tmp_path / "small")
    full = build()
    sj.train(full, X, config=CFG, checkpoint_dir=small)
    g, params, rest = nnx.split(build(), nnx.Param, ...)
    import optax

    template = (params, rest, optax.adam(1e-3).init(params))
    state, _, hist = restore_checkpoint(checkpoint_path(small, 8), template)
    save_checkpoint(d, 100_000_002, state, history=hist, keep=0)
    cfg = sj.TrainConfig(steps=100_000_010, batch_size=32, log_every=4, checkpoint_every=4, progress=False)
    res = sj.train(build(), X, config=cfg, checkpoint_dir=d, resume=True)
    assert res.resumed_from == 100_000_002 and res.step == 100_000_010
    assert list_checkpoints(d)[-1] == 100_000_010


def test_steps_beyond_the_int32_counter_are_refused():
    with pytest.raises(ValueError, match=r"steps must be at most 2,147,483,647 .*int32.*got 1,000,000,000,000"):
        sj.TrainConfig(steps=10**12)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        sj.TrainConfig(batch_size=0)
    assert sj.TrainConfig(steps=2**31 - 1).steps == 2**31 - 1


def test_permutations_drawn_at_construction_are_saved_and_restored(tmp_path):
    """Issue 11, item 1: Permute's permutation and Conv1x1's LU permutation and signs are state;
    a template built with another key gets the saved ones, so the density is the saved one."""
    from survae_jax.transforms import Conv1x1, Permute

    def perm_flow(seed):
        rngs = nnx.Rngs(seed)
        return sj.Flow(StandardNormal((6,)), [Permute(size=6, rngs=rngs), Conv1x1(6, lu=True, rngs=rngs),
                                              AffineCoupling(MLP(3, 6, (8,), rngs=rngs))])

    x = np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)
    model, other = perm_flow(0), perm_flow(5)
    assert not np.array_equal(np.asarray(model.transforms[0].permutation[...]),
                              np.asarray(other.transforms[0].permutation[...]))
    sj.load_model(sj.save_model(str(tmp_path / "m"), model), other)
    np.testing.assert_array_equal(np.asarray(other.log_prob(x)), np.asarray(model.log_prob(x)))
    np.testing.assert_array_equal(np.asarray(other.sample(nnx.Rngs(0).params(), 4)),
                                  np.asarray(model.sample(nnx.Rngs(0).params(), 4)))


def test_arrays_saved_without_x64_load_with_it_and_a_lossy_cast_is_refused(tmp_path):
    import jax

    saved = {"perm": np.arange(5, dtype=np.int32)[::-1].copy(), "w": np.float32([0.1, -3.0])}
    save_checkpoint(str(tmp_path / "a"), 1, saved)
    with jax.enable_x64(True):
        template = {"perm": np.zeros(5, np.int64), "w": np.zeros(2, np.float64)}
        got = restore_checkpoint(checkpoint_path(str(tmp_path / "a"), 1), template)[0]
        assert got["perm"].dtype == np.int64 and got["w"].dtype == np.float64
        np.testing.assert_array_equal(np.asarray(got["perm"]), saved["perm"])
        np.testing.assert_array_equal(np.asarray(got["w"]), saved["w"].astype(np.float64))  # exact widening
        save_checkpoint(str(tmp_path / "b"), 1, {"w": np.full((3,), 0.1, np.float64)})  # 0.1: no exact float32
    with pytest.raises(CheckpointMismatchError, match="float32 cannot hold exactly.*jax_enable_x64 set differently"):
        restore_checkpoint(checkpoint_path(str(tmp_path / "b"), 1), {"w": np.zeros((3,), np.float32)})
