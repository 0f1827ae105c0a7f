"""Every registered layer against its pure pair in ``survae_jax.functional``.

For each case: the module's ``forward``/``inverse`` equal its pair called with
``functional_args()``; and the pair itself, with no module around it, runs under ``jax.jit``,
``jax.vmap`` over examples and ``jax.grad`` (finite gradients w.r.t. the input and every array
parameter it is passed); the last two jitted, since op-by-op they compile each operation apart.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import CASES

from survae_jax.testing.case import bind

IDS = [case.name for case in CASES]


def _setup(case):
    b = bind(case)
    t = b.transform
    fwd, inv = type(t).functional
    return b, t, fwd, inv, t.functional_args()


def _floating(a):
    return jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_module_equals_its_pair(case):
    b, t, fwd, inv, kw = _setup(case)
    x, c, k = b.x, b.context, b.key
    z, v = t.forward(x, key=k, context=c)
    z2, v2 = fwd(x, **kw, key=k, context=c)
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(inv(z, **kw, key=k, context=c), t.inverse(z, key=k, context=c))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pair_under_jit_vmap_grad(case):
    b, t, fwd, inv, kw = _setup(case)
    x, c, k = b.x, b.context, b.key
    tol = dict(rtol=case.rtol, atol=case.atol)
    z, v = fwd(x, **kw, key=k, context=c)

    # jit: the pair with its parameters closed over compiles and agrees with the eager call
    zj, vj = jax.jit(lambda x, k, c: fwd(x, **kw, key=k, context=c))(x, k, c)
    np.testing.assert_allclose(zj, z, **tol)
    np.testing.assert_allclose(vj, v, **tol)
    xj = jax.jit(lambda z, k, c: inv(z, **kw, key=k, context=c))(z, k, c)
    np.testing.assert_allclose(xj, inv(z, **kw, key=k, context=c), **tol)

    # vmap over single examples: equal values where forward is deterministic, else shapes
    def one(xi, ci):
        zi, vi = fwd(xi[None], **kw, key=k, context=None if ci is None else ci[None])
        return zi[0], vi[0]

    zs, vs = jax.jit(jax.vmap(one))(x, c)  # under jit: one compilation, not one per operation
    assert zs.shape == z.shape and vs.shape == v.shape
    if not t.stochastic_forward:
        np.testing.assert_allclose(zs, z, **tol)
        np.testing.assert_allclose(vs, v, **tol)

    # grad: w.r.t. a floating input and every floating array parameter
    arrays = {n: a for n, a in kw.items() if isinstance(a, jax.Array) and _floating(a)}

    def loss(x, arrays):
        zz, vv = fwd(x, **{**kw, **arrays}, key=k, context=c)
        return jnp.sum(vv) + (jnp.sum(zz) if _floating(zz) else 0.0)

    gx, ga = jax.jit(jax.grad(loss, argnums=(0, 1), allow_int=True))(x, arrays)
    if _floating(x):
        assert bool(jnp.all(jnp.isfinite(gx))), "gradient w.r.t. x is not finite"
    for n, g in ga.items():
        assert bool(jnp.all(jnp.isfinite(g))), f"gradient w.r.t. {n} is not finite"
