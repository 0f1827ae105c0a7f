"""Couplings: one :class:`Coupling` for every elementwise family; ``AffineCoupling``,
``AdditiveCoupling``, ``RQSCoupling`` and ``LogisticMixtureCoupling`` name its usual families."""

from __future__ import annotations

from survae_jax.functional.coupling import coupling_forward, coupling_inverse
from survae_jax.functional.elementwise import Additive, Affine, ElementwiseFamily
from survae_jax.functional.logistic_mixture import LogisticMixtureCDF
from survae_jax.functional.spline import RationalQuadraticSpline
from survae_jax.transforms.bijections.conditioned import NetConditioned


class Coupling(NetConditioned):
    """Coupling with a net and an elementwise family ``g`` with ``P = family.num_params``.

    - forward: ``x = concat(x_id, x2)`` along ``axis``; ``z = concat(x_id, g(x2; theta))``,
      ``theta = net(x_id)`` (``net(x_id, context)`` when ``conditional``);
    - inverse: ``x2 = g^{-1}(z2; net(z_id))``, ``x_id = z_id``;
    - ``V = sum log|dg/dx2|`` over the transformed part.

    ``x_id``: the first ``num_condition`` entries of ``axis`` (default: half, rounded up). The net
    gives ``x2.shape[:-1] + (x2.shape[-1] * P,)`` (:func:`~survae_jax.functional.elementwise_params`)
    or ``x2.shape + (P,)``, cast to the input's dtype. With ``n`` identity, ``m`` transformed entries:

    =========================  ==========  ================  =====================
    data                       axis        net input         net output
    =========================  ==========  ================  =====================
    vectors ``(B, D)``         -1          ``(B, n)``        ``(B, m * P)``
    images ``(B, H, W, C)``    -1          ``(B, H, W, n)``  ``(B, H, W, m * P)``
    points ``(B, N, 2)``       -1          ``(B, N, 1)``     ``(B, N, P)``
    points ``(B, N, 2)``       1 (points)  ``(B, n, 2)``     ``(B, m, 2 * P)``
    =========================  ==========  ================  =====================

    ``axis`` is counted with the batch axis; ``context`` is required with ``conditional`` (ignored
    otherwise). Source: RealNVP (Dinh et al., 2017); the reference code's ``CouplingBijection``.
    """

    functional = (coupling_forward, coupling_inverse)

    def __init__(self, net, family: ElementwiseFamily, *, axis: int = -1, num_condition: int | None = None,
                 conditional: bool = False):
        name = type(self).__name__
        if axis == 0:
            raise ValueError(f"{name}: axis 0 is the batch axis; split an event axis.")
        if num_condition is not None and int(num_condition) < 1:
            raise ValueError(f"{name}: num_condition must be >= 1, got {num_condition}.")
        self._check_family(family)
        self.net, self.family, self.axis, self.conditional = net, family, int(axis), bool(conditional)
        self.num_condition = None if num_condition is None else int(num_condition)

    def functional_args(self):
        return {"conditioner": self.net, "family": self.family, "axis": self.axis,
                "num_condition": self.num_condition, "name": self.name}


class AffineCoupling(Coupling):
    """``Coupling(net, Affine(scale_fn))``: ``z2 = scale(s) x2 + t``, ``V = sum log scale(s)``,
    ``x2 = (z2 - t) / scale(s)``; ``theta = (s, t)`` per element (``P = 2``), ``scale_fn`` one of
    ``"tanh_exp"`` (default), ``"exp"``, ``"softplus"``, ``"sigmoid"`` (:class:`~survae_jax.functional.Affine`).

    Source: RealNVP (Dinh et al., 2017), Eqs. 7-9; Appendix H.4, Listing 1.
    """

    def __init__(self, net, *, axis: int = -1, num_condition: int | None = None, conditional: bool = False,
                 scale_fn: str = "tanh_exp"):
        super().__init__(net, Affine(scale_fn), axis=axis, num_condition=num_condition, conditional=conditional)


class AdditiveCoupling(Coupling):
    """``Coupling(net, Additive())``: ``z2 = x2 + t``, ``V = 0``, ``x2 = z2 - t`` (``P = 1``).

    Source: NICE (Dinh et al., 2015); the reference SurVAE code's ``AdditiveCouplingBijection``.
    """

    def __init__(self, net, *, axis: int = -1, num_condition: int | None = None, conditional: bool = False):
        super().__init__(net, Additive(), axis=axis, num_condition=num_condition, conditional=conditional)


class RQSCoupling(Coupling):
    """``Coupling(net, RationalQuadraticSpline(...))``: ``z2`` the monotone rational-quadratic spline
    of ``x2`` on ``[-tail_bound, tail_bound]``, the identity outside; ``P = 3 num_bins - 1``
    (:class:`~survae_jax.functional.RationalQuadraticSpline` has the maths). A net whose output is
    0 gives the identity.

    Source: Durkan et al., "Neural Spline Flows" (2019), Section 3.
    """

    def __init__(self, net, *, num_bins: int = 8, tail_bound: float = 3.0, min_bin_width: float = 1e-3,
                 min_bin_height: float = 1e-3, min_derivative: float = 1e-3, axis: int = -1,
                 num_condition: int | None = None, conditional: bool = False):
        family = RationalQuadraticSpline(num_bins, tail_bound, min_bin_width, min_bin_height, min_derivative)
        super().__init__(net, family, axis=axis, num_condition=num_condition, conditional=conditional)


class LogisticMixtureCoupling(Coupling):
    """``Coupling(net, LogisticMixtureCDF(num_components, scale_fn))``: ``z2 = scale(a) logit(F(x2)) + b``,
    ``F`` a mixture of ``num_components`` logistics; the inverse by bisection; ``P = 3 num_components + 2``
    (:class:`~survae_jax.functional.LogisticMixtureCDF` has the maths). A net whose output is 0 gives
    the identity.

    Source: Ho et al., "Flow++" (2019), Section 3.1.
    """

    def __init__(self, net, *, num_components: int = 4, scale_fn: str = "tanh_exp", axis: int = -1,
                 num_condition: int | None = None, conditional: bool = False):
        family = LogisticMixtureCDF(num_components, scale_fn)
        super().__init__(net, family, axis=axis, num_condition=num_condition, conditional=conditional)
