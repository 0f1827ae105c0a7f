"""A flow inside numpyro: a prior (joint log-density), the base of a guide (SVI), and lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import survae_jax as sj
from survae_jax.distributions import StandardNormal
from survae_jax.interop import to_numpyro
from survae_jax.transforms import Scale, Shift


def _affine_flow():
    """x = (z - shift) / scale with z ~ N(0, I): x ~ N(-shift / scale, 1 / scale^2) per axis."""
    return sj.Flow(StandardNormal((2,)), [Scale(jnp.array([2.0, 0.5])), Shift(jnp.array([1.0, -1.0]))])


def _law(x):
    loc, sd = jnp.array([-0.5, 2.0]), jnp.array([0.5, 2.0])
    return jax.scipy.stats.norm.logpdf(x, loc, sd).sum(-1)


def test_flow_prior_in_a_numpyro_model():
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer.util import log_density

    prior = to_numpyro(_affine_flow())
    y = jnp.array([[0.1, 1.0], [0.3, 2.5], [-0.2, 1.5]])

    def model(y):
        theta = numpyro.sample("theta", prior)
        with numpyro.plate("data", y.shape[0]):
            numpyro.sample("y", dist.Normal(theta, 1.0).to_event(1), obs=y)

    theta = jnp.array([0.2, 1.7])
    lp, _ = log_density(model, (y,), {}, {"theta": theta})
    want = _law(theta[None])[0] + jax.scipy.stats.norm.logpdf(y, theta, 1.0).sum()
    np.testing.assert_allclose(lp, want, rtol=1e-5)
    # the prior expanded over a plate: one log-density per row
    np.testing.assert_allclose(prior.expand([3]).log_prob(y), _law(y), rtol=1e-5)


def test_flow_as_the_base_of_a_guide():
    """SVI with a guide ``loc + scale * flow`` fits a Gaussian posterior: loc and scale reach it."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions.transforms import AffineTransform
    from numpyro.infer import SVI, Trace_ELBO

    base = to_numpyro(sj.Flow(StandardNormal((2,)), [Scale(jnp.array([1.0, 1.0]))]))  # N(0, I) as a flow

    def model():
        numpyro.sample("theta", dist.Normal(jnp.array([3.0, -2.0]), jnp.array([0.5, 2.0])).to_event(1))

    def guide():
        loc = numpyro.param("loc", jnp.zeros(2))
        scale = numpyro.param("scale", jnp.ones(2), constraint=dist.constraints.positive)
        numpyro.sample("theta", dist.TransformedDistribution(base, AffineTransform(loc, scale)))

    svi = SVI(model, guide, numpyro.optim.Adam(0.05), Trace_ELBO(num_particles=16))
    result = svi.run(jax.random.key(0), 600, progress_bar=False)
    np.testing.assert_allclose(result.params["loc"], [3.0, -2.0], atol=0.3)
    np.testing.assert_allclose(result.params["scale"], [0.5, 2.0], atol=0.3)


def test_import_survae_jax_without_numpyro():
    """numpyro is an optional extra: blocked, ``import survae_jax`` and ``survae_jax.interop`` work,
    ``to_distrax``/``from_distrax`` work, and ``to_numpyro`` says what to install."""
    code = textwrap.dedent("""
        import sys
        sys.modules["numpyro"] = None  # any import of numpyro now raises ImportError
        import jax.numpy as jnp
        import survae_jax as sj
        import survae_jax.interop as interop
        from survae_jax.distributions import StandardNormal
        from survae_jax.transforms import Reverse
        assert "numpyro" not in [m for m in sys.modules if sys.modules[m] is not None]
        flow = sj.Flow(StandardNormal((2,)), [Reverse(2)])
        print(interop.to_distrax(flow).event_shape)
        try:
            interop.to_numpyro(flow)
        except ImportError as e:
            print("ImportError:", e)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(sj.__file__)))  # the survae_jax under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *sys.path]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(2,)" in out.stdout
    want = "ImportError: to_numpyro needs numpyro, which is not installed: pip install 'survae-jax[interop]'"
    assert want in out.stdout
