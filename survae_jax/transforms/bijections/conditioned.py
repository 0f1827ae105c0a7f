"""The base of the layers whose net may take a context: couplings and autoregressive layers."""

from __future__ import annotations

from survae_jax.transforms.base import Bijection


class NetConditioned(Bijection):
    """A bijection with a net (``self.net``), an elementwise family and a ``conditional`` flag: the
    net is called as ``net(h, context)`` when ``conditional``, ``context`` required then and
    ignored otherwise; every direction runs the layer's functional pair with that context."""

    def _check_family(self, family) -> None:
        if not all(hasattr(family, a) for a in ("num_params", "forward", "inverse")):
            raise TypeError(f"{type(self).__name__}: family must have num_params, forward and inverse, "
                            f"got {type(family).__name__}.")

    def _context(self, context):
        if self.conditional and context is None:
            raise ValueError(f"{self.name} is conditional and needs context= (a (B, ...) tensor).")
        return context if self.conditional else None

    def forward(self, x, *, key=None, context=None):
        return super().forward(x, key=key, context=self._context(context))

    def inverse(self, z, *, key=None, context=None):
        return super().inverse(z, key=key, context=self._context(context))

    def inverse_and_log_det(self, z, *, key=None, context=None):
        return super().inverse_and_log_det(z, key=key, context=self._context(context))
