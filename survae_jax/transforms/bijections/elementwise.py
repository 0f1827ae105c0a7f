"""Elementwise bijections: the base :class:`ElementwiseBijection`; ``Sigmoid``, ``Logit``,
``Softplus``, ``SoftplusInverse``, ``Tanh`` on ``(B, ...)``. Values outside a map's domain are
not checked (they may be traced): they give ``+-inf`` or NaN as each layer says."""

from __future__ import annotations

from survae_jax.functional import elementwise as F
from survae_jax.transforms.base import Bijection


class ElementwiseBijection(Bijection):
    """``z = f(x; params)`` entrywise, ``V = sum log|f'(x; params)|``.

    A subclass names its pair, :func:`~survae_jax.functional.elementwise_pair` of the entrywise
    map, its inverse and its log-derivative, and adds any fixed parameters to
    ``functional_args`` (see :class:`Logit`). E.g. ``z = sinh(x)``, ``V = sum log cosh(x)``::

        class Sinh(ElementwiseBijection):
            functional = elementwise_pair(
                jnp.sinh, jnp.arcsinh, lambda x: jnp.log(jnp.cosh(x)), "Sinh")
    """

    def functional_args(self) -> dict:
        return {"name": self.name}


class Sigmoid(ElementwiseBijection):
    """``z = sigmoid(x)``, ``x = logit(z)``, ``V = -sum (softplus(x) + softplus(-x))
    = sum [log z + log(1 - z)]``, finite for every finite ``x``.

    Trap: maps real data into ``(0, 1)``; a flow whose *samples* must lie in ``(0, 1)`` needs
    :class:`Logit`. In float32 ``sigmoid(x)`` rounds to 1 above ``x ~ 17``: the inverse is then
    ``+inf`` (V stays finite). Inverse: ``z = 0, 1 -> -+inf``, outside ``[0, 1]`` NaN.

    Source: the reference SurVAE code's ``Sigmoid``; Appendix A, Eq. 5.
    """

    functional = (F.sigmoid_forward, F.sigmoid_inverse)


class Logit(ElementwiseBijection):
    """``y = eps + (1 - 2 eps) x``, ``z = log y - log(1 - y)``; ``x = (sigmoid(z) - eps) / (1 - 2 eps)``;
    ``V = sum [log(1 - 2 eps) - log y - log(1 - y)] = sum [log(1 - 2 eps) + softplus(z) + softplus(-z)]``.

    Maps ``(0, 1)`` to R, so its inverse (sampling) is a sigmoid: e.g. the dequantization
    encoder ``ConditionalFlow(ConditionalNormal(net), [Logit()])``. Trap: with ``eps = 0``,
    ``x = 0, 1`` give ``z = -+inf`` and ``V = +inf`` (not clipped); ``0 < eps < 1/2`` squeezes
    (RealNVP's preprocessing, 0.05 for images) and keeps V finite on ``[0, 1]``.

    Source: RealNVP (Dinh et al., 2017), Section 4.1; the reference SurVAE code's ``Logit``.
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

    Trap: below ``x ~ -88`` (float32) ``z`` underflows to 0 and the inverse is ``-inf`` (V stays
    finite); inverse of ``z < 0`` is NaN.

    Source: the reference SurVAE code's ``Softplus``.
    """

    functional = (F.softplus_forward, F.softplus_inverse)


class SoftplusInverse(ElementwiseBijection):
    """``z = x + log(1 - e^{-x})`` (``log(e^x - 1)``), ``x = softplus(z)``,
    ``V = -sum log(1 - e^{-x}) = sum softplus(-z)``.

    Trap: ``x = 0`` gives ``z = -inf``, ``V = +inf``; ``x < 0`` NaN.

    Source: the reference SurVAE code's ``SoftplusInverse``.
    """

    functional = (F.softplus_inverse_forward, F.softplus_inverse_inverse)


class Tanh(ElementwiseBijection):
    """``z = tanh(x)``, ``x = atanh(z)``, ``V = sum 2 (log 2 - x - softplus(-2x)) = sum log(1 - z^2)``.

    Trap: the naive ``log(1 - tanh^2)`` is ``-inf`` once ``tanh`` rounds to +-1 (``|x| > 9`` in
    float32); this form stays finite, but the inverse is then ``+-inf``; ``|z| > 1`` gives NaN.

    Source: distrax ``Tanh`` (the same identity); Appendix A, Eq. 5.
    """

    functional = (F.tanh_forward, F.tanh_inverse)
