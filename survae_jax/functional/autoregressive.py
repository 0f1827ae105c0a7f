"""Autoregressive bijections (MAF): every entry transformed by an elementwise family whose
parameters come from the entries before it in an order.

``theta = conditioner(x)`` ``(B, D, P)`` (``conditioner(x, context)`` when ``context`` is given),
autoregressive: ``theta[:, d]`` depends only on the ``x_j`` that come before ``x_d`` in the
conditioner's order (a :class:`~survae_jax.nn.MADE`, or any net with that property);

- forward (density, one pass): ``z_d = g(x_d; theta_d(x_{<d}))``, ``V = sum_d log|dg/dx_d|``, the
  Jacobian being triangular in the order;
- inverse (sampling, ``D`` passes): ``x_d = g^{-1}(z_d; theta_d(x_{<d}))``, the entries found one
  rank at a time.

Source: Papamakarios et al. (2017), MAF, Section 3.1; Kingma et al. (2016), IAF.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.distributions.base import sum_except_batch
from survae_jax.functional.checks import check_tensor
from survae_jax.functional.elementwise import elementwise_params

Array = jax.Array


def _theta(conditioner, family, x: Array, context, name: str) -> Array:
    try:
        out = conditioner(x) if context is None else conditioner(x, context)
    except Exception as e:
        e.add_note(f"{name}: its autoregressive net rejected the input of shape {tuple(x.shape)}.")
        raise
    theta = elementwise_params(out, x.shape, family.num_params, name, what=f"the net maps {tuple(x.shape)} to")
    return theta.astype(jnp.result_type(x, theta))


def autoregressive_forward(x: Array, conditioner, family, *, key=None, context=None,
                           name: str = "AutoregressiveBijection") -> tuple[Array, Array]:
    """``(z, V)``: ``z = g(x; conditioner(x))`` entrywise, one pass of the net; ``x``: ``(B, D)``."""
    check_tensor(x, name, ndim=2)
    theta = _theta(conditioner, family, x, context, name)
    z, log_det = family.forward(x.astype(theta.dtype), theta)
    return z, sum_except_batch(log_det)


def _solve(z: Array, conditioner, family, context, name: str) -> tuple[Array, Array]:
    """``(x, theta(x))`` with ``x = g^{-1}(z; theta(x))`` by ``D`` passes ``x <- g^{-1}(z; theta(x))``
    from ``x = 0``: after pass ``k`` the entries of ranks ``< k`` are exact (they see only exact
    entries), so after ``D`` passes all are, and the last pass's ``theta`` is ``theta(x)``."""
    check_tensor(z, name, ndim=2)
    theta0 = _theta(conditioner, family, jnp.zeros_like(z), context, name)  # checks shapes before the loop
    z = z.astype(theta0.dtype)

    def step(_, carry):
        x, _theta_prev = carry
        theta = _theta(conditioner, family, x, context, name)
        return family.inverse(z, theta), theta

    x0 = family.inverse(z, theta0)
    return jax.lax.fori_loop(1, z.shape[-1], step, (x0, theta0))


def autoregressive_inverse(z: Array, conditioner, family, *, key=None, context=None,
                           name: str = "AutoregressiveBijection") -> Array:
    """``x`` with ``x_d = g^{-1}(z_d; theta_d(x_{<d}))``: ``D`` passes of the net in a
    ``lax.fori_loop`` (one compiled pass, whatever ``D``; a Python loop would trace the net ``D``
    times). Each pass updates every entry, so no order is needed: the net's own order decides."""
    return _solve(z, conditioner, family, context, name)[0]


def _inverse_and_log_det(z: Array, conditioner, family, *, key=None, context=None,
                         name: str = "AutoregressiveBijection") -> tuple[Array, Array]:
    """``(x, V)`` in the same ``D`` passes: ``V = sum log|dg/dx|`` at ``x`` with the last pass's ``theta``."""
    x, theta = _solve(z, conditioner, family, context, name)
    return x, sum_except_batch(family.forward(x, theta)[1])


autoregressive_inverse.and_log_det = _inverse_and_log_det
