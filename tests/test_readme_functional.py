"""The README's functional AbsFlow trains with no Flax, and matches the module version step by step."""

import pathlib
import re

import jax
import numpy as np
import optax
from flax import nnx

from survae_jax import Flow
from survae_jax.distributions import StandardNormal
from survae_jax.nn import MLP
from survae_jax.transforms import AbsSurjection, AffineCoupling, Logit, Reverse, Scale

README = pathlib.Path(__file__).parent.parent / "README.md"
STEPS = 20


def _functional_block() -> str:
    text = README.read_text()
    section = text[text.index("## Functional API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _module_flow(params):
    couplings = [AffineCoupling(MLP(1, 2, hidden=(64, 64), rngs=nnx.Rngs(0)), scale_fn="tanh_exp") for _ in params]
    for coupling, layers in zip(couplings, params):
        for linear, (w, b) in zip([*coupling.net.hidden, coupling.net.out], layers):
            linear.kernel.value, linear.bias.value = w, b
    steps = [layer for c in couplings for layer in (c, Reverse(2))]
    return Flow(StandardNormal((2,)), [AbsSurjection(), Scale(0.25), Logit(), *steps])


def test_functional_example_matches_the_module_flow():
    code = _functional_block().replace("data[:2000]", f"data[:{STEPS}]")
    assert f"data[:{STEPS}]" in code, "the README's training loop changed: update this test"
    ns = {}
    initial = {}
    # run the README block up to its training loop, keep the initial parameters, then train
    head, loop = code.split("data = ", 1)
    exec(head, ns)
    initial["params"] = jax.tree.map(lambda a: a, ns["params"])
    exec("data = " + loop, ns)
    losses = ns["losses"]
    assert len(losses) == STEPS and np.all(np.isfinite(losses))

    flow = _module_flow(initial["params"])
    graphdef, params, rest = nnx.split(flow, nnx.Param, ...)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x):
        loss, grads = jax.value_and_grad(lambda p: -nnx.merge(graphdef, p, rest).log_prob(x).mean())(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    module_losses = []
    for x in ns["data"][:STEPS]:
        params, opt_state, loss = step(params, opt_state, x)
        module_losses.append(float(loss))
    np.testing.assert_allclose(module_losses, losses, rtol=2e-5)
    assert losses[-1] < losses[0]
