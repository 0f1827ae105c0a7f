"""Conditioner nets: MLP, ElementwiseParams, gated DenseNet (shapes, init, context, errors, dtypes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.nn import MLP, DenseNet, ElementwiseParams
from survae_jax.nn.densenet import _gate


def test_mlp_shapes_and_leading_axes():
    m = MLP(2, 5, hidden=(8, 4), rngs=nnx.Rngs(0))
    assert m(jnp.ones((3, 2))).shape == (3, 5)
    assert m(jnp.ones((3, 7, 2))).shape == (3, 7, 5)  # per point of a point cloud
    assert len(m.hidden) == 2


def test_mlp_zero_init_last_outputs_zero():
    m = MLP(2, 4, zero_init_last=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(m(jax.random.normal(jax.random.key(0), (3, 2))), np.zeros((3, 4)))


def test_mlp_context_is_concatenated():
    m = MLP(3, 2, hidden=(8,), rngs=nnx.Rngs(1))
    x, c = jnp.ones((4, 1)), jnp.full((4, 2), 0.5)
    np.testing.assert_array_equal(m(x, c), m(jnp.concatenate([x, c], -1)))
    with pytest.raises(ValueError, match=r"MLP: context must share x's leading shape \(4,\)"):
        m(x, jnp.ones((5, 2)))


def test_mlp_errors_and_float64():
    m = MLP(2, 3, hidden=(4,), rngs=nnx.Rngs(2))
    with pytest.raises(ValueError, match=r"MLP: expected input of shape \(\.\.\., 2\), got \(4, 3\)"):
        m(jnp.ones((4, 3)))
    with jax.enable_x64(True):
        assert m(jnp.ones((4, 2), jnp.float64)).dtype == jnp.float64


def test_elementwise_params_sequential():
    h = jnp.arange(12.0).reshape(2, 6)
    p = ElementwiseParams(2)(h)
    assert p.shape == (2, 3, 2)
    np.testing.assert_array_equal(p[1, 2], [10.0, 11.0])  # element d owns entries d*P .. d*P+P-1
    with pytest.raises(ValueError, match=r"ElementwiseParams: expected a last axis that is a multiple of num_params=4, got shape \(2, 6\)"):
        ElementwiseParams(4)(h)


def test_gate_closed_form():
    a, b, c = jnp.array([1.0]), jnp.array([2.0]), jnp.array([0.0])
    np.testing.assert_allclose(_gate(jnp.concatenate([a, b, c])), [1.0 + 2.0 * 0.5])


def test_densenet_shapes_zero_init_context():
    net = DenseNet(3, 5, num_blocks=2, mid_channels=8, depth=2, growth=4, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (2, 4, 6, 3))
    assert net(x).shape == (2, 4, 6, 5)
    z = DenseNet(3, 5, mid_channels=8, depth=1, growth=4, gated=False, zero_init_last=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(z(x), np.zeros((2, 4, 6, 5)))
    cnet = DenseNet(2 + 1, 4, mid_channels=8, depth=1, growth=4, rngs=nnx.Rngs(1))
    xi, ci = x[..., :2], x[..., 2:]
    np.testing.assert_array_equal(cnet(xi, ci), cnet(x))


def test_densenet_is_local_3x3_per_dense_layer():
    """A change at one pixel moves outputs only within the receptive field (1 block, depth 1: 3x3)."""
    net = DenseNet(1, 1, mid_channels=4, depth=1, growth=2, rngs=nnx.Rngs(3))
    x = jnp.zeros((1, 7, 7, 1))
    d = net(x.at[0, 3, 3, 0].set(1.0)) - net(x)
    moved = np.argwhere(np.abs(np.asarray(d[0, :, :, 0])) > 0)
    assert moved.min() >= 2 and moved.max() <= 4


def test_densenet_pointwise_convolutions_are_the_convolutions_with_their_derivatives_float64():
    """The 1x1 convolutions run as matmuls: values, gradients and forward-mode Jacobians are those
    of ``lax.conv_general_dilated`` with the same kernels."""
    with jax.enable_x64(True):
        net = DenseNet(3, 4, mid_channels=6, depth=1, growth=2, rngs=nnx.Rngs(2))
        g, params = nnx.split(net)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = jax.random.normal(jax.random.key(0), (1, 3, 2, 3), jnp.float64)

        def by_convolutions(p, x):  # the same net with every 1x1 layer run by the convolution
            m = nnx.merge(g, p)
            for conv in (m.inp, m.out, m.blocks[0].out, m.blocks[0].layers[0].conv1):
                conv.conv_general_dilated = jax.lax.conv_general_dilated
            return m(x)

        def ours(p, x):
            return nnx.merge(g, p)(x)

        convolutions = lambda f: str(jax.make_jaxpr(f)(params, x)).count("conv_general_dilated[")
        assert (convolutions(ours), convolutions(by_convolutions)) == (1, 5)  # only the 3x3 is one
        np.testing.assert_allclose(ours(params, x), by_convolutions(params, x), rtol=1e-13, atol=1e-13)
        loss = lambda f: (lambda p, x: jnp.sum(jnp.sin(f(p, x))))
        for a, b in zip(jax.tree.leaves(jax.grad(loss(ours), argnums=(0, 1))(params, x)),
                        jax.tree.leaves(jax.grad(loss(by_convolutions), argnums=(0, 1))(params, x))):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
        j1 = jax.jacfwd(lambda x: ours(params, x))(x)
        j2 = jax.jacfwd(lambda x: by_convolutions(params, x))(x)
        np.testing.assert_allclose(j1, j2, rtol=1e-12, atol=1e-13)
        assert np.abs(j1).max() > 0.1


def test_densenet_pointwise_convolution_refuses_what_a_matmul_cannot_do():
    from survae_jax.nn.densenet import _pointwise_layer

    x = jnp.ones((2, 6, 6, 4))
    assert _pointwise_layer(4, 5, rngs=nnx.Rngs(0))(x).shape == (2, 6, 6, 5)
    with pytest.raises(ValueError, match=r"DenseNet: its 1x1 convolutions run as matmuls and need strides 1"):
        _pointwise_layer(4, 5, strides=2, rngs=nnx.Rngs(0))(x)
    with pytest.raises(ValueError, match=r"need no padding"):
        _pointwise_layer(4, 5, padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))(x)


def test_densenet_errors():
    net = DenseNet(3, 2, mid_channels=4, depth=1, growth=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"DenseNet: expected input of shape \(B, H, W, 3\), got \(2, 4, 4, 2\)"):
        net(jnp.ones((2, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"DenseNet: context must be \(B, H, W, Cc\)"):
        net(jnp.ones((2, 4, 4, 2)), jnp.ones((2, 3, 4, 1)))


def test_dense_block_parameter_count_gate_and_errors():
    from survae_jax.experiments.registry import num_parameters
    from survae_jax.nn import DenseBlock

    cin, cout, depth, growth = 3, 5, 2, 4
    block = DenseBlock(cin, cout, depth=depth, growth=growth, rngs=nnx.Rngs(0))
    expected = 0
    for i in range(depth):
        c = cin + i * growth
        expected += (c * c + c) + (9 * c * growth + growth)  # 1x1 then 3x3 conv, with biases
    expected += (cin + depth * growth) * 3 * cout + 3 * cout  # gated 1x1 output: 3 * cout channels
    assert num_parameters(block) == expected == 616
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, cin))
    h = x
    for layer in block.layers:
        h = layer(h)
    a, b, c = jnp.split(block.out(h), 3, axis=-1)
    np.testing.assert_allclose(block(x), a + b * jax.nn.sigmoid(c), rtol=1e-6)
    zero = DenseBlock(cin, cout, depth=1, growth=2, zero_init=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(zero(x), np.zeros((2, 4, 4, cout)))
    with pytest.raises(ValueError, match=r"DenseBlock: expected input of shape \(B, H, W, 3\)"):
        block(jnp.ones((2, 4, 4, 2)))
