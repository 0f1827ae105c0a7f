"""PermuteFlow and SortFlow of Appendix I.2 on tiny models and a few real SpatialMNIST clouds."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.data.mnist import load_mnist
from survae_jax.data.spatial_mnist import images_to_point_clouds
from survae_jax.experiments.point_cloud import (
    EXPERIMENT,
    Flow,
    build_model,
    cpu_config,
    learning_rate_schedule,
    loss_fn,
    paper_config,
    ppll,
)
from survae_jax.nn.transformer import Transformer
from survae_jax.transforms.surjections.sort import SortSurjection


@pytest.fixture(scope="module")
def clouds():
    images, _ = load_mnist("test")
    return jnp.asarray(images_to_point_clouds(images[:64], seed=0))


def _tiny(model, **kw):
    """A one-step model with small Transformers whose couplings are not the identity.

    The ActNorms are left uninitialised (the identity): their data-dependent init runs
    op by op and only slows the test down.
    """
    cfg = dataclasses.replace(cpu_config(model), num_steps=1, num_blocks=1, d_model=8,
                              num_heads=2, d_ff=16, **kw)
    flow = build_model(cfg, key=jax.random.key(3))
    for i, (_, node) in enumerate(nnx.iter_graph(flow)):
        if isinstance(node, Transformer):  # random output layers (they start at zero)
            k = node.out.kernel[...]
            node.out.kernel[...] = 0.3 * jax.random.normal(jax.random.key(i), k.shape, k.dtype)
    return flow


@pytest.fixture(scope="module")
def sortflow():
    return _tiny("sortflow", dropout=0.5)


@pytest.fixture(scope="module")
def permuteflow():
    return _tiny("permuteflow")


log_prob = jax.jit(lambda flow, x, key: flow.log_prob(x, key=key))
loss = jax.jit(loss_fn)


def test_sortflow_is_exact_and_invariant_to_the_order_of_points(sortflow, clouds):
    assert sortflow.exact and isinstance(sortflow.transforms[2], SortSurjection)
    x = clouds[:8]
    perms = jax.vmap(lambda k: jax.random.permutation(k, 50))(jax.random.split(jax.random.key(0), 8))
    shuffled = jnp.take_along_axis(x, perms[..., None], axis=1)
    a, b = log_prob(sortflow, x, None), log_prob(sortflow, shuffled, None)
    assert a.shape == (8,) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)
    # Without the sort, the same layers see the order: the invariance comes from the sort.
    unsorted = Flow(sortflow.base, list(sortflow.transforms)[:2] + list(sortflow.transforms)[3:])
    c, d = log_prob(unsorted, x, None), log_prob(unsorted, shuffled, None)
    assert np.abs(c - d).max() > 1e-2


@pytest.mark.slow
def test_shapes_and_samples(sortflow, permuteflow):
    for flow in (sortflow, permuteflow):
        x = jax.jit(lambda f, k: f.sample(k, 5))(flow, jax.random.key(1))
        assert x.shape == (5, 50, 2) and np.isfinite(x).all()


@pytest.mark.slow
def test_permuteflow_elbo_and_iwbo(permuteflow, clouds):
    assert not permuteflow.exact
    x, key, k = clouds[:4], jax.random.key(2), 8
    elbos = jax.jit(jax.vmap(lambda kk: permuteflow.log_prob(x, key=kk)))(jax.random.split(key, k))  # (k, B)
    assert elbos.shape == (k, 4) and np.isfinite(elbos).all()
    assert np.abs(elbos[0] - elbos[1]).max() > 1e-4  # the ELBO depends on the drawn orders
    iwbo = jax.jit(lambda f, x, key: f.iwbo(x, key=key, num_samples=k, chunk_size=4))(permuteflow, x, key)
    assert (iwbo >= elbos.mean(0) - 1e-4).all()  # Jensen, on the same draws
    np.testing.assert_allclose(iwbo, jax.nn.logsumexp(elbos, axis=0) - np.log(k), rtol=1e-5)
    assert np.isfinite(ppll(iwbo))


@pytest.mark.slow
def test_iwbo_fn_scores_repeated_rows_and_iwbo_metrics_reuses_the_elbo(permuteflow, clouds, monkeypatch):
    import survae_jax.experiments.point_cloud as pc

    x, key, k, chunk = clouds[:3], jax.random.key(4), 6, 3
    iw = jax.jit(pc.iwbo_fn(k, chunk))(permuteflow, x, key)
    # the same keys by hand: each chunk key scores the batch repeated 3 times, rows independent
    tiled = jnp.concatenate([x] * chunk)
    elbos = jnp.concatenate([log_prob(permuteflow, tiled, kk).reshape(chunk, 3)
                             for kk in jax.random.split(key, k // chunk)])  # (k, 3)
    assert np.abs(elbos[0] - elbos[1]).max() > 1e-4  # the repeated rows drew their own orders
    np.testing.assert_allclose(iw, jax.nn.logsumexp(elbos, axis=0) - np.log(k), rtol=1e-6)
    with pytest.raises(ValueError, match="divisor"):
        pc.iwbo_fn(6, 4)
    # iwbo_metrics with the test evaluation's ELBOs: no ELBO computed again, its subset reported
    calls = []
    real = pc.evaluate
    monkeypatch.setattr(pc, "evaluate", lambda *a, **kw: calls.append(kw.get("log_prob_fn")) or real(*a, **kw))
    cfg = dataclasses.replace(cpu_config("permuteflow"), iwbo_samples=4, iwbo_examples=3, iwbo_chunk=4)
    elbo = np.array([-100.0, -200.0, -300.0, -400.0], np.float32)
    out = pc.iwbo_metrics(permuteflow, np.asarray(clouds[:4]), cfg, key=key, elbo=elbo)
    assert len(calls) == 1 and calls[0] is not None  # only the IWBO
    assert out["test_elbo_ppll_iwbo_subset"] == pytest.approx(-200.0 / 50)
    assert out["iwbo_examples"] == 3 and np.isfinite(out["test_iwbo_ppll"])


def test_loss_uses_dropout_and_leaves_the_model_alone(sortflow, clouds):
    x = clouds[:8]
    before = log_prob(sortflow, x, None)
    l1, l2 = loss(sortflow, x, jax.random.key(0)), loss(sortflow, x, jax.random.key(1))
    assert np.isfinite(l1) and abs(float(l1 - l2)) > 1e-4
    np.testing.assert_array_equal(log_prob(sortflow, x, None), before)
    off = nnx.clone(sortflow)
    for _, node in nnx.iter_graph(off):
        if isinstance(node, Transformer):
            node.dropout = 0.0
    np.testing.assert_allclose(loss(off, x, jax.random.key(0)), -np.mean(before), rtol=1e-6)


def test_paper_configuration_and_schedule():
    p, s = paper_config("permuteflow"), paper_config("sortflow")
    assert (p.num_steps, p.epochs, p.batch_size, p.lr, p.warmup_steps) == (32, 500, 128, 1e-3, 2000)
    assert (p.d_model, p.num_heads, p.d_ff, p.num_blocks, p.iwbo_samples) == (64, 8, 256, 2, 1000)
    assert (p.dropout_rate, s.dropout_rate) == (0.1, 0.2)
    lr = learning_rate_schedule(p)  # 390 steps per epoch on 50,000 clouds
    np.testing.assert_allclose([lr(0), lr(999), lr(1999), lr(390 * 10 + 5), lr(390 * 100)],
                               [1e-3 / 2000, 1e-3 / 2 * 0.995**2, 1e-3 * 0.995**5, 1e-3 * 0.995**10, 1e-3 * 0.995**100], rtol=1e-5)
    assert p.num_train_steps == 500 * 390
    with pytest.raises(ValueError, match="model must be one of"):
        dataclasses.replace(p, model="glow")


def test_cli_flags_make_the_config():
    from survae_jax.cli import build_parser

    args = build_parser().parse_args(
        ["train", "spatial_mnist", "--model", "permuteflow", "--preset", "cpu", "--steps", "7", "--dropout", "0.3"])
    cfg = EXPERIMENT.config_from_args(args)
    assert cfg == dataclasses.replace(cpu_config("permuteflow"), steps=7, dropout=0.3)
    assert EXPERIMENT.train_config(cfg).steps == 7
    args = build_parser().parse_args(["train", "spatial_mnist"])
    assert EXPERIMENT.config_from_args(args) == paper_config("sortflow")


def test_spline_sortflow_is_exact_invertible_and_named_apart(clouds):
    from survae_jax.experiments.point_cloud import SPLINE_BINS
    from survae_jax.functional.spline import RationalQuadraticSpline
    from survae_jax.transforms.bijections.coupling import Coupling

    flow = _tiny("sortflow", coupling="spline")
    couplings = [t for t in flow.transforms[-1].block.transforms if isinstance(t, Coupling)]  # the Scan's step
    assert len(couplings) == 2 and all(isinstance(c.family, RationalQuadraticSpline) for c in couplings)
    # coordinate coupling: one spline per point (3K - 1 parameters); point coupling: two per point
    assert [c.net.out.kernel.shape[-1] for c in couplings] == [3 * SPLINE_BINS - 1, 2 * (3 * SPLINE_BINS - 1)]
    x = clouds[:8]
    perms = jax.vmap(lambda k: jax.random.permutation(k, 50))(jax.random.split(jax.random.key(5), 8))
    a = log_prob(flow, x, None)
    b = log_prob(flow, jnp.take_along_axis(x, perms[..., None], axis=1), None)
    assert flow.exact and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)
    # after the sort every layer is a bijection: each inverts its forward (float32; composed, the
    # random Transformers amplify these errors of a few 1e-6 by their Lipschitz constants)
    y = x
    for t in list(flow.transforms)[:3]:  # Scale, Shift, sort
        y = t.forward(y)[0]
    (step,) = flow.transforms[3].unstack()  # the Scan of the one step
    for t in step.transforms:
        z = t.forward(y)[0]
        np.testing.assert_allclose(t.inverse(z), y, atol=2e-5)
        y = z
    cfg = dataclasses.replace(cpu_config("sortflow"), coupling="spline")
    assert EXPERIMENT.run_name(cfg) == "spatial_mnist_sortflow_spline_s0"
    with pytest.raises(ValueError, match="coupling must be one of"):
        dataclasses.replace(cfg, coupling="rqs")
    with pytest.raises(ValueError, match="no effect with spline couplings"):
        dataclasses.replace(cfg, scale_fn="exp")
