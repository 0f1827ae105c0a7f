"""The tabular experiment: config, models (MAF, NSF), a few steps
with validation through the runner, and the best validated parameters reloaded."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
from flax import nnx
from jax.scipy.stats import norm

from survae_jax.experiments import get_experiment
from survae_jax.experiments.runner import evaluate_run, run_experiment
from survae_jax.experiments.tabular import TabularConfig, build_model, covering_permutations, tabular_data
from survae_jax.transforms.bijections import AffineAutoregressive, Coupling, Permute

SMALL = dict(num_train=600, num_valid=100, num_test=200, hidden=(16,), num_layers=2)


def test_config_registry_and_errors():
    exp = get_experiment("tabular")
    cfg = TabularConfig(dataset="patches", model="nsf", num_bins=4, hidden=(32, 32))
    assert exp.config_from_dict({"experiment": "tabular", **{**cfg.__dict__, "hidden": [32, 32]}}) == cfg
    assert TabularConfig().hidden_widths == (128, 128) and cfg.hidden_widths == (32, 32)
    assert exp.run_name(cfg) == "tabular_patches_nsf_s0"
    tc = exp.train_config(cfg)
    assert (tc.valid_every, tc.patience, tc.restore_best) == (500, 10, True)
    with pytest.raises(ValueError, match="tabular: num_bins/tail_bound .* only apply to --model nsf"):
        TabularConfig(model="maf", num_bins=8)
    with pytest.raises(ValueError, match="tabular: unknown model 'realnvp'"):
        TabularConfig(model="realnvp")
    with pytest.raises(ValueError, match="tabular: unknown dataset 'power'"):
        TabularConfig(dataset="power")


@pytest.mark.parametrize("dataset,d", [("galaxy", 7), ("patches", 63)])
def test_maf_starts_as_the_identity_on_standardised_data(dataset, d):
    cfg = TabularConfig(dataset=dataset, **SMALL)
    model = build_model(cfg)
    kinds = [type(t) for t in model.transforms]
    assert kinds == [AffineAutoregressive, Permute, AffineAutoregressive]
    x = tabular_data(cfg).test[:5]
    assert x.shape == (5, d)
    want = np.asarray(norm.logpdf(x).sum(-1))
    np.testing.assert_allclose(model.log_prob(x), want, rtol=1e-5)
    np.testing.assert_allclose(model.transforms[0].inverse(x), x)


def test_nsf_builds_with_the_spline_family():
    cfg = TabularConfig(model="nsf", num_bins=4, **SMALL)
    model = build_model(cfg)
    assert [type(t) for t in model.transforms] == [Coupling, Permute, Coupling]
    x = tabular_data(cfg).test[:5]
    lp = model.log_prob(x)
    assert lp.shape == (5,) and np.all(np.isfinite(lp))
    z, _ = model.transforms[0].forward(x)
    np.testing.assert_allclose(model.transforms[0].inverse(z), x, atol=1e-5)


@pytest.mark.parametrize("dataset,d,seed", [("galaxy", 7, 1), ("patches", 63, 0)])
def test_nsf_transforms_every_entry_and_changes_the_split(dataset, d, seed):
    """No input entry reaches the output unchanged: no column of the flow's Jacobian is a unit
    vector. The seeds are ones whose first independent draw of permutations leaves an entry
    untransformed (entry 0 in both), so the redraw is what is tested. Each coupling conditions on
    floor(D/2) entries, the couplings do not all split the entries into the same two sets, and
    they do not start as the identity (random last layers)."""
    cfg = TabularConfig(dataset=dataset, model="nsf", num_bins=4, seed=seed, **{**SMALL, "num_layers": 5})
    model = build_model(cfg)
    couplings = [t for t in model.transforms if isinstance(t, Coupling)]
    assert [c.num_condition for c in couplings] == [d // 2] * 5

    def push(v):  # (D,) -> (D,): the flow's forward without the base
        for t in model.transforms:
            v = t.forward(v[None])[0][0]
        return v

    x = 0.5 * jax.random.normal(jax.random.key(9), (d,))  # inside the splines' [-3, 3]
    jac = np.asarray(jax.jit(jax.jacfwd(push))(x))
    unit = [j for j in range(d) if np.sum(np.abs(jac[:, j]) > 1e-9) == 1 and abs(np.abs(jac[:, j]).max() - 1) < 1e-6]
    assert not unit, f"entries never transformed: {unit}"

    rng = np.random.default_rng(seed)  # the first independent draw misses entry 0: the trap
    at, hit = np.arange(d), set(range(d // 2, d))
    for perm in [rng.permutation(d) for _ in range(4)]:
        at = at[perm]
        hit |= set(at[d // 2:].tolist())
    assert 0 not in hit
    perms = covering_permutations(d, d // 2, 5, seed)
    assert all(sorted(p.tolist()) == list(range(d)) for p in perms)
    splits, at = {frozenset(range(d // 2, d))}, np.arange(d)
    for perm in perms:
        at = at[perm]
        splits.add(frozenset(at[d // 2:].tolist()))
    assert len(splits) > 2
    assert not np.allclose(jac, np.eye(d), atol=1e-3)


@pytest.mark.parametrize("d", [7, 63])
def test_covering_permutations_cover_for_any_number_of_couplings(d):
    """Every count of couplings the CLI takes gives permutations at once: from 2 couplings on,
    every entry is transformed by some coupling (with 2 on the patches no random draw does: the
    last permutation is constructed); one coupling gets none."""
    from survae_jax.experiments.tabular import _untransformed

    n = d // 2
    assert covering_permutations(d, n, 1, 0) == []
    for layers in range(2, 7):
        for seed in range(3):
            perms = covering_permutations(d, n, layers, seed)
            assert len(perms) == layers - 1
            assert all(sorted(p.tolist()) == list(range(d)) for p in perms)
            assert not _untransformed(perms, d, n), (layers, seed)
    with pytest.raises(ValueError, match="num_condition must be <= d / 2"):
        covering_permutations(d, n + 1, 3, 0)
    assert len(build_model(TabularConfig(dataset="patches" if d == 63 else "galaxy", model="nsf", num_layers=1,
                                         **{k: v for k, v in SMALL.items() if k != "num_layers"})).transforms) == 1


def test_a_short_run_validates_stops_early_and_reloads_its_best(tmp_path):
    exp = get_experiment("tabular")
    cfg = TabularConfig(steps=60, batch_size=100, log_every=10, checkpoint_every=20, valid_every=10,
                        patience=2, lr=3e-2, **SMALL)
    out = run_experiment(exp, cfg, str(tmp_path / "run"), progress=False, log=lambda m: None)
    with open(os.path.join(tmp_path, "run", "metrics.json")) as f:
        assert json.load(f)["best_step"] == out["best_step"]
    assert out["best_step"] % 10 == 0 and np.isfinite(out["best_valid_nats"]) and np.isfinite(out["test_nats"])
    assert isinstance(out["stopped_early"], bool)
    assert out["step"] <= 60 and (out["stopped_early"] or out["step"] == 60)
    d = tabular_data(cfg)
    np.testing.assert_allclose(out["test_nats_data_units"], out["test_nats"] + np.log(d.std).sum(), rtol=1e-6)
    again = evaluate_run(str(tmp_path / "run"))  # the best validated parameters, as tested in the run
    assert again["step"] == out["best_step"]
    np.testing.assert_allclose(again["test_nats"], out["test_nats"], rtol=1e-6)
    assert jax.numpy.isfinite(again["test_nats_data_units"])


@pytest.mark.parametrize("argv, expect", [
    (["--model", "maf", "--num-bins", "4"], "only apply to --model nsf"),
    (["--hidden", "64,0"], "argument --hidden: must be an integer >= 1, got 0"),
    (["--dataset", "power"], "unknown dataset 'power'"),
    (["--patience", "-1"], "argument --patience: must be an integer >= 0"),
])
def test_cli_bad_usage_is_one_line_and_writes_nothing(argv, expect, capsys, tmp_path):
    from survae_jax.cli import main

    code = main(["train", "tabular", *argv, "--out", str(tmp_path / "r")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and expect in lines[0]
    assert not (tmp_path / "r").exists()


def test_sample_writes_rows_in_the_data_units_and_a_figure(tmp_path):
    exp = get_experiment("tabular")
    cfg = TabularConfig(dataset="galaxy", **SMALL)
    model, data = build_model(cfg), tabular_data(cfg)
    path = exp.sample(model, cfg, str(tmp_path / "s.png"), jax.random.key(0), 50)
    x = np.load(tmp_path / "s.npy")
    assert os.path.getsize(path) > 0 and x.shape == (50, 7) and np.isfinite(x).all()
    # the untrained MAF is the identity onto a standard normal: samples = mean + std * N(0, 1)
    z = (x - data.mean) / data.std
    assert abs(z.mean()) < 0.5 and 0.6 < z.std() < 1.4


@pytest.mark.parametrize("model", ["maf", "nsf"])
def test_the_base_is_a_learned_diagonal_normal(model):
    """log p(x) = log N(z; loc, diag(exp(2 log_scale))) + V: its gradient in loc is
    sum_b (z_b - loc) / sigma^2, nonzero at initialisation (loc = 0, log_scale = 0)."""
    import jax.numpy as jnp

    from survae_jax.distributions import DiagonalNormal

    flow = build_model(TabularConfig(dataset="galaxy", model=model, hidden=(8,), num_layers=2))
    assert isinstance(flow.base, DiagonalNormal)
    x = jax.random.normal(jax.random.key(0), (16, 7))
    grads = nnx.grad(lambda f: f.log_prob(x).sum())(flow)
    z = x
    for t in flow.transforms:
        z, _ = t.forward(z)
    np.testing.assert_allclose(grads.base.loc[...], np.asarray(z).sum(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads.base.log_scale[...], np.asarray(jnp.square(z) - 1.0).sum(axis=0),
                               rtol=1e-4, atol=1e-4)
