"""Elementwise bijections on ``(B, ...)``: :class:`ElementwiseBijection`, ``Sigmoid``, ``Logit``, ``Softplus``,
``SoftplusInverse``, ``Tanh``; values outside a domain are not checked: ``+-inf`` or NaN as each says."""

from __future__ import annotations

from survae_jax.functional import elementwise as F
from survae_jax.transforms.base import Bijection


class ElementwiseBijection(Bijection):
    """``z = f(x; params)`` entrywise, ``V = sum log|f'(x; params)|``.

    A subclass names its pair (:func:`~survae_jax.functional.elementwise_pair` of the map, its inverse
    and log-derivative) and adds fixed parameters to ``functional_args`` (see :class:`Logit`)::

        class Sinh(ElementwiseBijection):
            functional = elementwise_pair(
                jnp.sinh, jnp.arcsinh, lambda x: jnp.log(jnp.cosh(x)), "Sinh")
    """

    def functional_args(self) -> dict:
        return {"name": self.name}


class Sigmoid(ElementwiseBijection):
    """``z = sigmoid(x)``, ``x = logit(z)``, ``V = -sum (softplus(x) + softplus(-x)) = sum [log z + log(1 - z)]``.

    Trap: maps real data into ``(0, 1)``; a flow whose *samples* must lie in ``(0, 1)`` needs
    :class:`Logit`. ``sigmoid(x)`` rounds to 1 above ``x ~ 17`` (float32): the inverse is then
    ``+inf``; inverse of ``z`` outside ``[0, 1]``: NaN. Source: the reference code's ``Sigmoid``.
    """

    functional = (F.sigmoid_forward, F.sigmoid_inverse)


class Logit(ElementwiseBijection):
    """``y = eps + (1 - 2 eps) x``, ``z = log y - log(1 - y)``; ``x = (sigmoid(z) - eps) / (1 - 2 eps)``;
    ``V = sum [log(1 - 2 eps) - log y - log(1 - y)] = sum [log(1 - 2 eps) + softplus(z) + softplus(-z)]``.

    Maps ``(0, 1)`` to R (its inverse, sampling, is a sigmoid). Trap: with ``eps = 0``, ``x = 0, 1``
    give ``z = -+inf`` (a flow then gives that row ``-inf``); ``0 < eps < 1/2`` squeezes (RealNVP's
    preprocessing, 0.05 for images). Source: RealNVP (Dinh et al., 2017), Section 4.1.
    """

    functional = (F.logit_forward, F.logit_inverse)

    def __init__(self, eps: float = 0.0):
        if not 0.0 <= float(eps) < 0.5:
            raise ValueError(f"Logit: eps must be in [0, 0.5), got {eps}.")
        self.eps = float(eps)

    def functional_args(self):
        return {**super().functional_args(), "eps": self.eps}


class Softplus(ElementwiseBijection):
    """``z = log(1 + e^x)``, ``x = z + log(1 - e^{-z})``, ``V = -sum softplus(-x) = sum log(1 - e^{-z})``.

    Trap: below ``x ~ -88`` (float32) ``z`` underflows to 0, the inverse is ``-inf``; inverse of
    ``z < 0``: NaN. Source: the reference SurVAE code's ``Softplus``.
    """

    functional = (F.softplus_forward, F.softplus_inverse)


class SoftplusInverse(ElementwiseBijection):
    """``z = x + log(1 - e^{-x})`` (``log(e^x - 1)``), ``x = softplus(z)``,
    ``V = -sum log(1 - e^{-x}) = sum softplus(-z)``.

    Trap: ``x = 0`` gives ``z = -inf``; ``x < 0`` NaN. Source: the reference code's ``SoftplusInverse``."""

    functional = (F.softplus_inverse_forward, F.softplus_inverse_inverse)


class Tanh(ElementwiseBijection):
    """``z = tanh(x)``, ``x = atanh(z)``, ``V = sum 2 (log 2 - x - softplus(-2x)) = sum log(1 - z^2)``.

    Trap: the naive ``log(1 - tanh^2)`` is ``-inf`` once ``tanh`` rounds to +-1 (``|x| > 9``, float32);
    this form stays finite. Inverse of ``|z| > 1``: NaN. Source: distrax ``Tanh`` (the same identity).
    """

    functional = (F.tanh_forward, F.tanh_inverse)
