"""UniformDequantization and VariationalDequantization (generative rounding, Table 6, App. H.2).

Integer validation, values of z and V (with and without the [0, 1) scaling), the exact right
inverse ``floor(forward(x)) == x`` for 100 keys at the range's edges, and float64. The discretised
Gaussian bound is in ``tests/test_bounds.py``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from survae_jax.distributions import ConditionalNormal, Distribution, StandardUniform
from survae_jax.flow import ConditionalFlow
from survae_jax.transforms.bijections.elementwise import Logit
from survae_jax.transforms.surjections.dequantization import (
    UniformDequantization,
    VariationalDequantization,
)


class _AlmostOne(Distribution):
    """Test-local encoder that always returns u = 1 - 2^-30 (rounds to 1.0 in float32); log q = 0."""

    def sample(self, key, num_samples=None, *, context=None):
        return jnp.full((self._num_samples(num_samples, context), 2), 1.0 - 2.0**-30, jnp.float32)

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        u = self.sample(key, num_samples, context=context)
        return u, jnp.zeros((u.shape[0],))


def test_uniform_values_and_v():
    x = jnp.array([[0, 5], [-3, 7]], jnp.int32)
    z, v = UniformDequantization().forward(x, key=jax.random.key(0))
    assert z.dtype == jnp.float32 and z.shape == x.shape
    assert np.all(np.asarray(z) >= np.asarray(x)) and np.all(np.asarray(z) < np.asarray(x) + 1)
    np.testing.assert_array_equal(v, [0.0, 0.0])
    np.testing.assert_array_equal(UniformDequantization().inverse(z), x)


def test_uniform_8bit_scaling():
    """num_bits = 8: z = (x + u) / 256 in [0, 1), V = -D 8 log 2 (D = 3 here)."""
    x = jnp.array([[0, 255, 128]], jnp.uint8)
    d = UniformDequantization(num_bits=8)
    z, v = d.forward(x, key=jax.random.key(0))
    assert np.all(np.asarray(z) >= 0) and np.all(np.asarray(z) < 1)
    np.testing.assert_allclose(v, [-3 * 8 * math.log(2.0)], rtol=1e-6)
    out = d.inverse(z)
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, x.astype(jnp.int32))


@pytest.mark.parametrize("num_bits", [None, 8])
def test_right_inverse_100_keys_at_the_edges(num_bits):
    hi = 255 if num_bits else 2**24 - 1  # the largest integer float32 holds exactly
    lo = 0 if num_bits else -(2**24 - 1)
    x = jnp.array([[lo, 0, 1, hi - 1, hi]], jnp.int32)
    d = UniformDequantization(num_bits)

    @jax.jit
    def run(d, keys):
        zs, vs = jax.vmap(lambda k: d.forward(x, key=k))(keys)
        return jax.vmap(d.inverse)(zs), vs

    xs, vs = run(d, jax.random.split(jax.random.key(1), 100))
    np.testing.assert_array_equal(xs, jnp.broadcast_to(x, xs.shape))
    assert np.all(np.isfinite(vs))


def test_sample_rounding_up_to_the_next_integer_is_kept_in_the_cell():
    """u = 1 - 2^-30 is 1.0 in float32 (a saturated sigmoid): x + u must still floor to x."""
    x = jnp.array([[0, 254], [7, 255]], jnp.int32)
    for bits in (None, 8):
        d = VariationalDequantization(_AlmostOne(), num_bits=bits)
        z, _ = d.forward(x, key=jax.random.key(0))
        np.testing.assert_array_equal(d.inverse(z), x)


def test_variational_v_is_minus_log_q():
    """q(u|x): a conditional normal on logit(u) (mean 0.1 x, log-scale -0.5) pushed through a sigmoid."""
    lin = nnx.Linear(2, 4, rngs=nnx.Rngs(0))
    lin.kernel[...] = jnp.zeros((2, 4)).at[0, 0].set(0.1).at[1, 1].set(0.1)
    lin.bias[...] = jnp.array([0.0, 0.0, -0.5, -0.5])
    q = ConditionalFlow(ConditionalNormal(lin), [Logit()])
    d = VariationalDequantization(q)
    x = jnp.array([[2, -1], [0, 4]], jnp.int32)
    z, v = d.forward(x, key=jax.random.key(3))
    u = z - x
    np.testing.assert_allclose(v, -q.log_prob(u, context=x.astype(jnp.float32)), rtol=1e-5)
    np.testing.assert_array_equal(d.inverse(z), x)
    # with scaling the encoder sees x / 2^b and V gains -D b log 2
    d3 = VariationalDequantization(q, num_bits=3)
    x3 = jnp.array([[2, 1], [0, 7]], jnp.int32)
    z3, v3 = d3.forward(x3, key=jax.random.key(3))
    u3 = z3 * 8 - x3
    want = -q.log_prob(u3, context=x3 / 8.0) - 2 * 3 * math.log(2.0)
    np.testing.assert_allclose(v3, want, rtol=1e-4)


def test_variational_with_an_unconditional_uniform_encoder_is_uniform_dequantization():
    x = jnp.array([[2, -1], [0, 4]], jnp.int32)
    z, v = VariationalDequantization(StandardUniform((2,))).forward(x, key=jax.random.key(0))
    np.testing.assert_array_equal(v, [0.0, 0.0])
    np.testing.assert_array_equal(jnp.floor(z), x)


def test_input_validation():
    d = UniformDequantization(num_bits=8)
    with pytest.raises(ValueError, match="UniformDequantization.*integer"):
        d.forward(jnp.zeros((2, 2)), key=jax.random.key(0))
    # integers outside [0, 255]: V = -inf for that row, eagerly and under jit alike
    x = jnp.array([[0, 256], [-1, 3], [0, 255]])
    _, v = d.forward(x, key=jax.random.key(0))
    _, v_jit = jax.jit(lambda d, x, k: d.forward(x, key=k))(d, x, jax.random.key(0))
    np.testing.assert_allclose(v, [-np.inf, -np.inf, -2 * 8 * math.log(2.0)], rtol=1e-6)
    np.testing.assert_array_equal(v_jit, v)
    with jax.enable_x64(False):  # without num_bits: the integers exact in float32, |x| <= 2^24 - 1
        _, v = UniformDequantization().forward(jnp.array([[2**24], [2**24 - 1]]), key=jax.random.key(0))
    np.testing.assert_array_equal(v, [-np.inf, 0.0])
    with pytest.raises(ValueError, match="UniformDequantization.*key"):
        d.forward(jnp.array([[1, 3]]))
    with pytest.raises(ValueError, match="UniformDequantization"):
        d.forward(jnp.array([1, 3]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="UniformDequantization.*floating"):
        d.inverse(jnp.array([[1, 3]]))
    with pytest.raises(ValueError, match="UniformDequantization.*num_bits"):
        UniformDequantization(num_bits=0)
    with pytest.raises(ValueError, match="VariationalDequantization.*encoder sample"):
        VariationalDequantization(_AlmostOne()).forward(jnp.zeros((2, 3), jnp.int32), key=jax.random.key(0))


def test_float64_and_jit():
    with jax.enable_x64(True):
        x = jnp.array([[3, 4]], jnp.int64)
        z, v = jax.jit(lambda d, x, k: d.forward(x, key=k))(UniformDequantization(8), x, jax.random.key(0))
        back = jax.jit(lambda d, z: d.inverse(z))(UniformDequantization(8), z)
    assert z.dtype == v.dtype == jnp.float64
    np.testing.assert_array_equal(back, x)
    z32, _ = UniformDequantization(8, dtype=jnp.float32).forward(jnp.array([[3, 4]]), key=jax.random.key(0))
    assert z32.dtype == jnp.float32


class _Fixed(Distribution):
    """Test-local unconditional encoder returning the fixed samples ``u`` with ``log q = 0``."""

    def __init__(self, u):
        self.u = jnp.asarray(u, jnp.float32)

    def sample(self, key, num_samples=None, *, context=None):
        return self.u

    def sample_and_log_prob(self, key, num_samples=None, *, context=None):
        return self.u, jnp.zeros((self.u.shape[0],))


def _docstring_example(obj) -> str:
    """The indented code block after ``Example`` in ``obj``'s docstring, dedented."""
    doc = obj.__doc__
    lines = doc[doc.index("Example") :].splitlines()[1:]
    block = []
    for line in lines:
        if line.strip() and not line.startswith(" " * 8):
            break
        block.append(line[8:])
    return "\n".join(block)


def test_docstring_example_runs_and_gives_finite_bounds():
    """The encoder of the docstring (Logit data side first) gives finite ELBO and IWBO (2,)."""
    ns: dict = {}
    exec(_docstring_example(VariationalDequantization), ns)
    for name in ("elbo", "iwbo"):
        assert ns[name].shape == (2,)
        assert np.all(np.isfinite(np.asarray(ns[name]))), (name, ns[name])
    assert np.all(np.asarray(ns["elbo"]) < 0)  # a bound of a log-probability of integers


def test_wrong_encoder_with_sigmoid_gives_minus_inf_eagerly_and_under_jit():
    """The reported mistake: Sigmoid() in the encoder's flow sends N(mu, sigma) through a logit."""
    from survae_jax.distributions import StandardNormal
    from survae_jax.flow import Flow
    from survae_jax.nn import MLP
    from survae_jax.transforms.bijections.elementwise import Sigmoid

    enc = ConditionalFlow(ConditionalNormal(MLP(3, 6, rngs=nnx.Rngs(0))), [Sigmoid()])
    flow = Flow(StandardNormal((3,)), [VariationalDequantization(enc, num_bits=3), Logit()])
    x = jnp.array([[0, 3, 7], [5, 1, 2]], jnp.int32)
    # no branch on jit: the rows are -inf or NaN (a Logit of z off [0, 1]), never a finite number
    elbo = flow.elbo(x, key=jax.random.key(1))
    elbo_jit = jax.jit(lambda f, x, k: f.elbo(x, key=k))(flow, x, jax.random.key(1))
    assert not np.any(np.isfinite(np.asarray(elbo))) and not np.any(np.isfinite(np.asarray(elbo_jit)))
    _, v = flow.transforms[0].forward(x, key=jax.random.key(1))
    np.testing.assert_array_equal(v, [-np.inf, -np.inf])  # the layer's own V: -inf, not NaN


def test_out_of_range_sample_gives_minus_inf_eagerly_and_under_jit():
    u = [[0.25, 0.5], [-0.5, 0.5], [0.1, float("nan")], [1.0, 0.0]]  # rows 1 and 2 are wrong
    d = VariationalDequantization(_Fixed(u))
    x = jnp.array([[0, 1], [2, 3], [4, 5], [6, 7]], jnp.int32)
    _, v_eager = d.forward(x, key=jax.random.key(0))
    z, v = jax.jit(lambda d, x, k: d.forward(x, key=k))(d, x, jax.random.key(0))
    np.testing.assert_array_equal(v, [0.0, -np.inf, -np.inf, 0.0])  # log q = 0 on good rows
    np.testing.assert_array_equal(v_eager, v)
    np.testing.assert_array_equal(jnp.floor(z[0]), x[0])
    np.testing.assert_array_equal(jnp.floor(z[3]), x[3])  # u = 1 (saturated) is accepted
    assert np.all(np.asarray(d.inverse(z[3:])) == np.asarray(x[3:]))
    # in range: no error eagerly, and the same V
    _, v_ok = VariationalDequantization(_Fixed([[0.0, 0.999], [1.0, 0.5]])).forward(x[:2], key=jax.random.key(0))
    np.testing.assert_array_equal(v_ok, [0.0, 0.0])
