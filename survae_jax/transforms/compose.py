"""``Compose`` (layers grouped as one layer) and ``Invert`` (a bijection's directions swapped)."""

from __future__ import annotations

from typing import Sequence

from flax import nnx

from survae_jax.functional.compose import compose_forward, compose_inverse, invert_forward, invert_inverse
from survae_jax.transforms.base import Bijection, Transform


class Compose(Transform):
    """Layers grouped as one: ``forward`` runs them data side first and sums their ``V``;
    ``inverse`` runs them in reverse. Exact when every layer is; stochastic in a direction when
    some layer is. A ``Flow``'s list can hold a ``Compose``, so a block of layers is reusable.
    """

    functional = (compose_forward, compose_inverse)

    def __init__(self, transforms: Sequence[Transform]):
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"Compose: transforms[{i}] must be a Transform, got {type(t).__name__}.")
        self.transforms = nnx.List(list(transforms))

    @property
    def stochastic_forward(self) -> bool:  # type: ignore[override]
        return any(t.stochastic_forward for t in self.transforms)

    @property
    def stochastic_inverse(self) -> bool:  # type: ignore[override]
        return any(t.stochastic_inverse for t in self.transforms)

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.transforms)

    def functional_args(self):
        return {"transforms": tuple(self.transforms), "name": self.name}


class Invert(Bijection):
    """A bijection with its directions swapped: ``forward = b.inverse``, ``inverse = b.forward``,
    ``V(z) = -V_b(b.inverse(z))`` (the inverse function theorem). ``V`` costs one extra
    ``b.forward`` pass. Source: distrax ``Inverse``; FlowJAX ``Invert``."""

    functional = (invert_forward, invert_inverse)

    def __init__(self, bijection: Bijection):
        if not isinstance(bijection, Bijection):
            raise TypeError(f"Invert: expected a Bijection, got {type(bijection).__name__}.")
        self.bijection = bijection

    def functional_args(self):
        return {"bijection": self.bijection}
