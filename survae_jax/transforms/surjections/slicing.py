"""Slicing both ways (Tables 6 and 7); maths in :mod:`survae_jax.functional.slicing`."""

from __future__ import annotations

from survae_jax.functional.slicing import (augment_forward, augment_inverse, slice_forward, slice_inverse,
                                           slice_surjection)
from survae_jax.transforms.base import GenerativeSurjection, InferenceSurjection


class Slice(InferenceSurjection):
    """Inference slicing (Table 7): keep the first ``num_keep`` entries along ``axis``.

    - forward: ``(z, x2) = split(x)``, ``z = x1``;
    - inverse: ``x2 ~ p(x2|z)``, ``x = concat(z, x2)``;
    - ``V = log p(x2|z)``, exact if the ``decoder``'s ``log_prob`` is (any distribution over
      ``x2``, context ``z``); default ``p(x2|z) = N(0, I)``, whose ``inverse`` needs ``size = D``.

    Shapes: ``x (B, ..., D, ...) -> z (B, ..., num_keep, ...)``.

    Source: Nielsen et al. (2020), Table 7; the multi-scale architecture of Dinh et al. (2017).
    """

    def __init__(self, num_keep: int, decoder=None, *, axis: int = -1, size: int | None = None):
        self.num_keep, self.decoder, self.axis = int(num_keep), decoder, int(axis)
        self.size = None if size is None else int(size)
        slice_surjection(self.num_keep, axis=self.axis, size=self.size, name="Slice")  # validates

    functional = (slice_forward, slice_inverse)

    @property
    def exact(self) -> bool:
        return bool(getattr(self.decoder, "exact", True))

    def functional_args(self):
        return {"num_keep": self.num_keep, "dist": self.decoder, "axis": self.axis, "size": self.size,
                "name": self.name}


class Augment(GenerativeSurjection):
    """Generative slicing (Table 6; Appendix H.3, Listing 2), the dual of :class:`Slice`.

    - forward: ``z2 ~ q(z2|x)``, ``z = concat(x, z2)`` along ``axis``;
    - inverse: ``x = z[:x_size]`` along ``axis``;
    - ``V = -log q(z2|x)``, a bound term, tight when ``q(z2|x)`` is the base's ``p(z2|x)``; the
      ``encoder`` is e.g. ``StandardNormal((2,))`` (Listing 2) or ``ConditionalNormal(net)``.

    Shapes: ``x (B, ..., x_size, ...) -> z (B, ..., x_size + D2, ...)``.

    Source: Nielsen et al. (2020), Table 6 and Appendix H.3; Huang et al. (2020); Chen et al. (2020).
    """

    def __init__(self, encoder, x_size: int, *, axis: int = -1):
        self.encoder, self.x_size, self.axis = encoder, int(x_size), int(axis)
        slice_surjection(self.x_size, axis=self.axis, name="Augment")  # validates

    functional = (augment_forward, augment_inverse)

    def functional_args(self):
        return {"num_keep": self.x_size, "dist": self.encoder, "axis": self.axis, "name": self.name}
