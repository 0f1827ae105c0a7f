"""Autoregressive bijections (MAF): one :class:`AutoregressiveBijection` for every elementwise
family; ``AffineAutoregressive`` and ``AdditiveAutoregressive`` name its two usual families."""

from __future__ import annotations

from survae_jax.functional.autoregressive import autoregressive_forward, autoregressive_inverse
from survae_jax.functional.elementwise import Additive, Affine, ElementwiseFamily
from survae_jax.transforms.bijections.conditioned import NetConditioned


class AutoregressiveBijection(NetConditioned):
    """Autoregressive layer on ``(B, D)`` with an autoregressive net (a :class:`~survae_jax.nn.MADE`)
    and an elementwise family ``g`` with ``P = family.num_params``.

    - forward (density direction, one pass of the net): ``theta = net(x)`` ``(B, D, P)`` (``net(x,
      context)`` when ``conditional``), ``z_d = g(x_d; theta_d)``, ``V = sum_d log|dg/dx_d|`` (the
      Jacobian is triangular in the net's order, so its log-determinant is the sum of its diagonal);
    - inverse (sampling direction, ``D`` passes): ``x_d = g^{-1}(z_d; theta_d(x_{<d}))``, found one
      rank of the order per pass of the net (a ``lax.fori_loop``).

    The net's output is ``(B, D, P)`` or ``(B, D * P)`` in the sequential layout
    (:func:`~survae_jax.functional.elementwise_params`); it must be autoregressive (output ``d``
    independent of ``x_d`` and of every later entry in its order), which this layer does not and
    cannot check cheaply: with a plain MLP, ``V`` would be wrong and the inverse would not invert.
    The order lives in the net (``MADE(..., order=...)``); stack layers with ``Reverse(D)`` between
    them (or give each MADE another order) so that every entry gets conditioned on the others.

    IAF: ``Invert(AutoregressiveBijection(...))`` samples in one pass and evaluates densities in
    ``D`` passes; use it when sampling speed matters and training is on its own samples (e.g. a
    variational posterior); for density estimation on data, this layer (MAF) is the fast one.

    ``context`` is required with ``conditional`` (ignored otherwise). Sources: Papamakarios et
    al. (2017), MAF, Section 3; Kingma et al. (2016), IAF; Germain et al. (2015), MADE.
    """

    functional = (autoregressive_forward, autoregressive_inverse)

    def __init__(self, net, family: ElementwiseFamily | None = None, *, conditional: bool = False):
        name = type(self).__name__
        family = Affine() if family is None else family
        self._check_family(family)
        made_p = getattr(net, "num_params", None)
        if made_p is not None and int(made_p) != int(family.num_params):
            raise ValueError(f"{name}: the net gives {made_p} parameter(s) per entry but the family "
                             f"{type(family).__name__} needs {family.num_params}.")
        self.net, self.family, self.conditional = net, family, bool(conditional)

    def functional_args(self):
        return {"conditioner": self.net, "family": self.family, "name": self.name}


class AffineAutoregressive(AutoregressiveBijection):
    """``AutoregressiveBijection(net, Affine(scale_fn))``: ``z_d = scale(s_d) x_d + t_d``,
    ``V = sum_d log scale(s_d)``, ``x_d = (z_d - t_d) / scale(s_d)``, ``(s_d, t_d)`` from ``x_{<d}``
    (``P = 2``); ``scale_fn`` as :class:`~survae_jax.functional.Affine` (default ``"tanh_exp"``).

    Source: Papamakarios et al. (2017), MAF, Section 3.1 (``exp`` there).
    """

    def __init__(self, net, *, conditional: bool = False, scale_fn: str = "tanh_exp"):
        super().__init__(net, Affine(scale_fn), conditional=conditional)


class AdditiveAutoregressive(AutoregressiveBijection):
    """``AutoregressiveBijection(net, Additive())``: ``z_d = x_d + t_d(x_{<d})``, ``V = 0``
    (volume preserving, ``P = 1``).

    Source: Dinh et al. (2015), NICE (the additive transformer); Papamakarios et al. (2017), MAF.
    """

    def __init__(self, net, *, conditional: bool = False):
        super().__init__(net, Additive(), conditional=conditional)
