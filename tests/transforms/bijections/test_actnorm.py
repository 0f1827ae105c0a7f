"""ActNorm: data-dependent init (statistics, idempotence, Flow walk) and checkpoint round trips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from survae_jax.distributions import StandardNormal
from survae_jax.flow import Flow
from survae_jax.nn import MLP
from survae_jax.transforms.bijections import ActNorm, AffineCoupling, Reverse, initialize_actnorm


def _data(key, shape, loc=3.0, scale=2.0):
    return loc + scale * jax.random.normal(key, shape)


@pytest.mark.parametrize(
    ("shape", "axis", "reduce"),
    [((64, 3), -1, (0,)), ((8, 4, 4, 3), -1, (0, 1, 2)), ((16, 5, 2), 1, (0, 2)), ((16, 5, 2), -1, (0, 1))],
    ids=["vector", "image-NHWC", "points-axis1", "points-coordinates"],
)
def test_init_standardises_each_feature(shape, axis, reduce):
    x = _data(jax.random.key(0), shape)
    a = ActNorm(shape[axis], axis=axis)
    assert not bool(a.initialized[...])
    initialize_actnorm(a, x)
    assert bool(a.initialized[...])
    z, v = a.forward(x)
    np.testing.assert_allclose(jnp.mean(z, axis=reduce), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(z, axis=reduce), 1.0, atol=1e-5)
    # V = (positions per feature) * sum(log_scale) = -positions * sum(log(std + eps))
    positions = int(np.prod(shape[1:])) // shape[axis]
    want = -positions * np.sum(np.log(np.std(np.asarray(x, np.float64), axis=reduce) + 1e-6))
    np.testing.assert_allclose(v, np.full(shape[0], want), rtol=1e-5)
    np.testing.assert_allclose(a.inverse(z), x, atol=1e-5)


def test_uninitialised_is_identity():
    x = _data(jax.random.key(1), (4, 3))
    z, v = ActNorm(3).forward(x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(v, np.zeros(4))


def test_init_runs_once():
    a = ActNorm(3)
    initialize_actnorm(a, _data(jax.random.key(0), (32, 3)))
    before = (np.asarray(a.loc[...]), np.asarray(a.log_scale[...]))
    initialize_actnorm(a, _data(jax.random.key(1), (32, 3), loc=-7.0, scale=0.1))
    np.testing.assert_array_equal(a.loc[...], before[0])
    np.testing.assert_array_equal(a.log_scale[...], before[1])


def test_init_walks_a_flow_and_its_flow_base():
    """Every ActNorm on the data path sees the batch as it arrives there; a Flow base is walked too."""
    rngs = nnx.Rngs(0)
    inner = Flow(StandardNormal((2,)), [AffineCoupling(MLP(1, 2, hidden=(8,), rngs=rngs)), ActNorm(2)])
    flow = Flow(inner, [ActNorm(2), Reverse(2), AffineCoupling(MLP(1, 2, hidden=(8,), rngs=rngs))])
    x = _data(jax.random.key(2), (256, 2))
    initialize_actnorm(flow, x)
    assert bool(flow.transforms[0].initialized[...]) and bool(inner.transforms[1].initialized[...])
    z, _ = flow.forward(x)
    z, _ = inner.transforms[0].forward(z)
    z, _ = inner.transforms[1].forward(z)
    np.testing.assert_allclose(jnp.mean(z, 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(z, 0), 1.0, atol=1e-5)


def test_init_is_the_same_under_nnx_jit():
    """No eager-only branch: under nnx.jit the init sets the same values, and runs once."""
    x = _data(jax.random.key(0), (32, 3))
    eager, jitted = ActNorm(3), ActNorm(3)
    initialize_actnorm(eager, x)
    init = nnx.jit(lambda a, x: initialize_actnorm(a, x) and None)
    init(jitted, x)
    assert bool(jitted.initialized[...])
    np.testing.assert_allclose(jitted.loc[...], eager.loc[...], rtol=1e-6)
    np.testing.assert_allclose(jitted.log_scale[...], eager.log_scale[...], rtol=1e-6)
    init(jitted, x + 5.0)
    np.testing.assert_allclose(jitted.loc[...], eager.loc[...], rtol=1e-6)


def test_split_merge_round_trip_keeps_the_flag():
    a = ActNorm(3)
    initialize_actnorm(a, _data(jax.random.key(0), (32, 3)))
    graphdef, state = nnx.split(a)
    b = nnx.merge(graphdef, state)
    assert bool(b.initialized[...])
    # a fresh module given the saved state: initialised, and init does not run again
    fresh = ActNorm(3)
    nnx.update(fresh, state)
    initialize_actnorm(fresh, _data(jax.random.key(5), (32, 3), loc=-9.0))
    np.testing.assert_array_equal(fresh.loc[...], a.loc[...])
    np.testing.assert_array_equal(fresh.log_scale[...], a.log_scale[...])


def test_orbax_round_trip_keeps_the_flag(tmp_path):
    a = ActNorm(3)
    initialize_actnorm(a, _data(jax.random.key(0), (32, 3)))
    ckpt = ocp.StandardCheckpointer()
    path = tmp_path / "actnorm"
    ckpt.save(path, nnx.state(a))
    ckpt.wait_until_finished()
    fresh = ActNorm(3)
    assert not bool(fresh.initialized[...])
    restored = ckpt.restore(path, nnx.state(fresh))
    nnx.update(fresh, restored)
    assert bool(fresh.initialized[...])
    initialize_actnorm(fresh, _data(jax.random.key(5), (32, 3), loc=-9.0))
    np.testing.assert_array_equal(fresh.loc[...], a.loc[...])
    np.testing.assert_array_equal(fresh.log_scale[...], a.log_scale[...])


def test_flag_is_state_not_a_param():
    a = ActNorm(3)
    params = nnx.state(a, nnx.Param)
    assert set(params.keys()) == {"loc", "log_scale"}


def test_wrong_shape_names_layer_and_shapes():
    a = ActNorm(3)
    with pytest.raises(ValueError, match=r"ActNorm: expected axis -1 of length 3.*\(4, 5\)"):
        a.forward(jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"ActNorm.*rank >= 2.*\(3,\)"):
        a.inverse(jnp.ones((3,)))
    with pytest.raises(ValueError, match="ActNorm.*floating"):
        a.forward(jnp.ones((4, 3), jnp.int32))
    with pytest.raises(ValueError, match="batch axis"):
        ActNorm(3, axis=0)


def test_float64_outputs_with_float32_params():
    a = ActNorm(2)
    initialize_actnorm(a, _data(jax.random.key(0), (32, 2)))
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)), jnp.float64)
        z, v = a.forward(x)
        assert z.dtype == jnp.float64 and v.dtype == jnp.float64
        assert a.inverse(z).dtype == jnp.float64


def test_model_without_actnorm_is_returned_unchanged():
    m = Flow(StandardNormal((2,)), [Reverse(2)])
    assert initialize_actnorm(m, jnp.ones((4, 2))) is m
    assert initialize_actnorm(MLP(2, 2, rngs=nnx.Rngs(0)), jnp.ones((4, 2))) is not None


def test_actnorm_off_the_data_path_warns():
    from survae_jax.transforms.base import Bijection

    class Wrapper(Bijection):
        def __init__(self):
            self.inner = ActNorm(2)

        def forward(self, x, *, key=None, context=None):
            return self.inner.forward(x)

        def inverse(self, z, *, key=None, context=None):
            return self.inner.inverse(z)

    flow = Flow(StandardNormal((2,)), [ActNorm(2), Wrapper()])
    with pytest.warns(UserWarning, match="1 ActNorm layer"):
        initialize_actnorm(flow, _data(jax.random.key(0), (16, 2)))
    assert bool(flow.transforms[0].initialized[...])
    assert not bool(flow.transforms[1].inner.initialized[...])


@pytest.mark.parametrize("shape", [(0, 3), (1, 3), (1, 1, 1, 3)])
def test_init_refuses_a_batch_without_a_spread_and_leaves_the_layer_alone(shape):
    """Issue 11, item 5: an empty batch gave NaN parameters, a batch of one a zero spread."""
    layer = ActNorm(3)
    flow = Flow(StandardNormal((3,)), [layer])
    with pytest.raises(ValueError, match=r"ActNorm: .*>= 2 values per feature.*shape \(" + str(shape[0])):
        initialize_actnorm(flow, jnp.ones(shape))
    assert not bool(layer.initialized[...])
    np.testing.assert_array_equal(layer.loc[...], 0.0)
    np.testing.assert_array_equal(layer.log_scale[...], 0.0)
    layer.initialize(jnp.ones((1, 2, 2, 3)) * jnp.arange(4.0).reshape(1, 2, 2, 1))  # 4 positions: a spread
    assert bool(layer.initialized[...]) and np.isfinite(np.asarray(layer.log_scale[...])).all()
