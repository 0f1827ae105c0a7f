"""``Scan``: stacked blocks run by ``lax.scan`` are the unrolled ``Compose`` of the same blocks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax import Flow
from survae_jax.distributions import StandardNormal
from survae_jax.nn import MLP, Transformer, with_dropout
from survae_jax.transforms import (ActNorm, AffineCoupling, Compose, Coupling, Permute, Reverse, Scan, Shift,
                                   Slice, StochasticPermutation, initialize_actnorm)
from survae_jax.functional import Affine


def _steps(n, seed=0, stochastic=False):
    rngs = nnx.Rngs(seed)
    last = (lambda: StochasticPermutation(axis=-1)) if stochastic else (lambda: Permute(size=4, rngs=rngs))
    return [Compose([ActNorm(4), AffineCoupling(MLP(2, 4, hidden=(8,), activation=jnp.tanh, rngs=rngs)), last()])
            for _ in range(n)]


def _x(dtype=jnp.float32):
    return (1.0 + 2.0 * jax.random.normal(jax.random.key(1), (6, 4))).astype(dtype)


@pytest.mark.parametrize("stochastic, remat", [(False, False), (True, False), (True, True)])
def test_scan_is_the_unrolled_chain_float64(stochastic, remat):
    with jax.enable_x64(True):
        steps = _steps(4, stochastic=stochastic)
        x, key = _x(jnp.float64), jax.random.key(3)
        unrolled, scanned = Compose(steps), Scan(steps, remat=remat)
        z1, v1 = unrolled.forward(x, key=key)
        z2, v2 = jax.jit(lambda m, x, k: m.forward(x, key=k))(scanned, x, key)
        np.testing.assert_allclose(z2, z1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v2, v1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scanned.inverse(z2, key=key), unrolled.inverse(z1, key=key), rtol=1e-12, atol=1e-12)
        # gradients with respect to the parameters: the stacked ones are the per-block ones stacked
        g1 = nnx.grad(lambda m: m.forward(x, key=key)[1].sum())(unrolled)
        g2 = nnx.grad(lambda m: m.forward(x, key=key)[1].sum())(scanned)
        for i in range(4):
            w1 = g1.transforms[i].transforms[1].net.out.kernel[...]
            w2 = g2.block.transforms[1].net.out.kernel[...][i]
            np.testing.assert_allclose(w2, w1, rtol=1e-10, atol=1e-12)
        if remat:  # the scan body is a checkpoint; every gradient leaf is the stored scan's
            stored = nnx.grad(lambda m: m.forward(x, key=key)[1].sum())(Scan(steps))
            for a, b in zip(jax.tree.leaves(nnx.state(g2)), jax.tree.leaves(nnx.state(stored)), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
        jaxpr = jax.make_jaxpr(lambda m: m.forward(x, key=key))(scanned).jaxpr
        body = next(e for e in jaxpr.eqns if e.primitive.name == "scan").params["jaxpr"].jaxpr
        assert any(e.primitive.name in ("checkpoint", "remat2") for e in body.eqns) == remat
    assert Scan(steps).stochastic_forward == stochastic and Scan(steps).exact != stochastic


def test_scan_in_a_flow_samples_and_round_trips():
    flow = Flow(StandardNormal((4,)), [Shift(1.0), Scan(_steps(3))])
    x = flow.sample(jax.random.key(0), 5)
    z, _ = flow.transforms[1].forward(flow.transforms[0].forward(x)[0])
    np.testing.assert_allclose(flow.transforms[0].inverse(flow.transforms[1].inverse(z)), x, rtol=1e-5, atol=1e-5)
    assert flow.log_prob(x).shape == (5,) and bool(jnp.isfinite(flow.log_prob(x)).all())


def test_initialize_actnorm_reaches_every_block():
    steps = _steps(3, seed=1)
    unrolled, scanned = nnx.clone(Compose(steps)), Scan(steps)
    x = _x()
    initialize_actnorm(unrolled, x)
    nnx.jit(lambda m, x: initialize_actnorm(m, x))(scanned, x)
    assert np.asarray(scanned.block.transforms[0].initialized[...]).tolist() == [True] * 3
    for i in range(3):
        loc = unrolled.transforms[i].transforms[0].loc[...]
        np.testing.assert_allclose(scanned.block.transforms[0].loc[...][i], loc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scanned.forward(x)[0], unrolled.forward(x)[0], rtol=1e-5, atol=1e-5)
    # blocks come back out of the stack as they went in
    for b, u in zip(scanned.unstack(), unrolled.transforms):
        np.testing.assert_array_equal(b.transforms[2].permutation[...], u.transforms[2].permutation[...])


def test_with_dropout_gives_each_stacked_transformer_its_own_key():
    rngs = nnx.Rngs(0)
    def net():
        return Transformer(1, 2, num_blocks=1, d_model=8, num_heads=2, d_ff=16, dropout=0.5, zero_init_last=False,
                           rngs=rngs)

    steps = [Compose([Coupling(net(), Affine(), axis=-1), Reverse(2, axis=-1)]) for _ in range(3)]
    scanned = with_dropout(Scan(steps), jax.random.key(7))
    keys = np.asarray(scanned.block.transforms[0].net.dropout_key[...])
    assert keys.shape[0] == 3 and len({tuple(k) for k in keys}) == 3
    x = jax.random.normal(jax.random.key(2), (2, 5, 2))
    z1, _ = scanned.forward(x)
    z2, _ = scanned.forward(x)
    np.testing.assert_array_equal(z1, z2)  # dropout is a function of the model's state: pure


def test_scan_refuses_unlike_or_missing_blocks():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match="Scan: expected at least one block"):
        Scan([])
    with pytest.raises(TypeError, match=r"Scan: blocks\[1\] must be a Transform"):
        Scan([Reverse(4), "not a layer"])
    wide = AffineCoupling(MLP(2, 4, hidden=(8,), rngs=rngs))
    wider = AffineCoupling(MLP(2, 4, hidden=(16,), rngs=rngs))
    with pytest.raises(ValueError, match=r"Scan: every block must have the structure of blocks\[0\].*blocks\[1\]"):
        Scan([wide, wider])
    with pytest.raises(ValueError, match="Scan: a block must map its input to the same shape"):
        Scan([Slice(2), Slice(2)]).forward(_x())


def test_inverse_and_log_det_takes_v_from_the_latent_side_as_compose():
    from survae_jax.transforms import Logit, Scale

    steps = [Compose([Logit(), Scale(0.05)]) for _ in range(2)]
    z = jnp.array([[2.0, 0.1], [-1.5, 0.3]])  # sigmoid(40) rounds to 1 in float32: a forward pass gives -inf
    x1, v1 = Compose(steps).inverse_and_log_det(z)
    x2, v2 = Scan(steps).inverse_and_log_det(z)
    assert bool(jnp.isfinite(v1).all())
    np.testing.assert_allclose(x2, x1, rtol=1e-6)
    np.testing.assert_allclose(v2, v1, rtol=1e-5)
    flow = Flow(StandardNormal((2,)), [Scan(steps)])
    _, log_p = flow.sample_and_log_prob(jax.random.key(0), 500)
    assert bool(jnp.isfinite(log_p).all())


def test_restack_refuses_other_blocks():
    scanned = Scan(_steps(3))
    with pytest.raises(ValueError, match="Scan.restack: expected 3 blocks"):
        scanned.restack(scanned.unstack()[:2])
