"""The transform contract shared by every SurVAE layer (Nielsen et al., 2020, Appendix H).

``forward(x, *, key=None, context=None) -> (z, V)`` is the inference direction X -> Z with the
likelihood contribution ``V`` ``(B,)`` in nats; ``inverse(z, *, key=None, context=None) -> x`` is
the generative direction Z -> X (sampling). As in the reference PyTorch code; Tables 6 and 7 of
the appendix call our ``forward`` "Inverse". ``log p(x) = log p(z) + sum of V`` over the layers
(Eq. 4), exact when every layer is exact, else a one-sample lower bound (ELBO):

============================  ===========================  ==================================
kind                          V                            exact
============================  ===========================  ==================================
bijection                     ``log|det dz/dx|``           yes (Appendix A, Eq. 5)
inference surjection          ``log p(s|z)`` on the fibre  yes (Appendix B, Table 7)
generative surjection         ``-log q(s|x)``              no: one-sample bound (Table 6)
stochastic layer (VAE, ...)   ``log p(x|z) - log q(z|x)``  no: one-sample bound (Appendix H.1)
============================  ===========================  ==================================

Every random draw comes from ``key`` (a stochastic direction called without one raises
``ValueError``); ``context`` is accepted everywhere and ignored by unconditional layers. Shapes
are batch first: ``(B, D)``, images ``(B, H, W, C)``, point clouds ``(B, N, 2)``; a wrong rank,
size or dtype raises ``ValueError`` naming the layer, the expected and the received shape. The
maths of every layer is a pure pair in :mod:`survae_jax.functional`: a module holds the
parameters, names its pair in ``functional`` and passes ``functional_args()`` to it.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import jax
from flax import nnx

from survae_jax.functional.checks import check_tensor
from survae_jax.functional.surjection import require_key

Array = jax.Array


class Transform(nnx.Module):
    """Base class of every layer; ``stochastic_forward`` / ``stochastic_inverse``: that direction
    draws randomness and needs ``key``."""

    stochastic_forward: ClassVar[bool] = False
    stochastic_inverse: ClassVar[bool] = False
    #: The layer's pure pair ``(forward, inverse)`` from :mod:`survae_jax.functional`.
    functional: ClassVar[tuple[Callable, Callable]]

    @property
    def exact(self) -> bool:
        """Whether V is exact: ``forward`` is deterministic (bijections, inference surjections)."""
        return not self.stochastic_forward

    def functional_args(self) -> dict:
        """The parameters and settings this layer passes to its pair, as keyword arguments."""
        return {}

    def forward(self, x: Array, *, key: Array | None = None, context: Array | None = None):
        """Inference direction X -> Z: ``(z, V)``."""
        return type(self).functional[0](x, **self.functional_args(), key=key, context=context)

    def inverse(self, z: Array, *, key: Array | None = None, context: Array | None = None):
        """Generative direction Z -> X: ``x``."""
        return type(self).functional[1](z, **self.functional_args(), key=key, context=context)

    def inverse_and_log_det(self, z: Array, *, key: Array | None = None, context: Array | None = None):
        """``(inverse(z), V)``, V from ``functional[1].and_log_det`` (latent side) or else ``forward``."""
        latent_side = getattr(type(self).functional[1], "and_log_det", None)
        if latent_side is not None:
            return latent_side(z, **self.functional_args(), key=key, context=context)
        x = self.inverse(z, key=key, context=context)
        return x, self.forward(x, key=key, context=context)[1]

    @property
    def name(self) -> str:
        """The layer's class name, used in error messages."""
        return type(self).__name__

    def _require_key(self, key: Array | None, direction: str) -> Array:
        return require_key(key, f"{self.name}.{direction}")

    def _check_input(self, x: Array, **expected) -> None:
        """``ValueError`` naming the layer unless ``x`` is as ``expected`` (``min_ndim``, ``ndim``,
        ``event_shape``, ``floating``; see :func:`survae_jax.functional.checks.check_tensor`)."""
        check_tensor(x, self.name, **expected)


class Fixed(nnx.Variable):
    """A fixed array drawn at construction (a permutation, signs): saved state, not a ``Param``."""


class Bijection(Transform):
    """A diffeomorphism; ``V = log|det dz/dx|`` (Appendix A, Eq. 5); ``x`` and ``z`` have the
    same number of elements."""


class Surjection(Transform):
    """A surjective layer written once as its inference op (a
    :class:`~survae_jax.functional.Surjective`); ``self.fibre``: a learned fibre distribution, or
    ``None`` for the op's default. :func:`generative_dual` derives the Table 6 layer."""

    fibre = None


class InferenceSurjection(Surjection):
    """Surjective X -> Z (Table 7): ``(z, s) = split(x)``, ``V = log p(s|z)`` exact;
    ``inverse`` draws ``s ~ p(s|z)`` and returns ``merge(z, s)`` (Appendix B)."""

    stochastic_inverse: ClassVar[bool] = True

    @property
    def exact(self) -> bool:
        return bool(getattr(self.fibre, "exact", True))


class GenerativeSurjection(Surjection):
    """Surjective Z -> X (Table 6), the dual of an inference surjection: ``forward`` draws
    ``s ~ q(s|x)`` and returns ``z = merge(x, s)``, ``V = -log q(s|x)`` (a bound term);
    ``inverse(z) = split(z)[0]``, so ``inverse(forward(x)) == x``."""

    stochastic_forward: ClassVar[bool] = True


def generative_dual(
    inference: type[InferenceSurjection], name: str, functional: tuple[Callable, Callable], doc: str
) -> type[GenerativeSurjection]:
    """The Table 6 layer of an inference surjection class: its constructor and parameters, with
    ``functional`` the dual pair (:func:`survae_jax.functional.generative_pair` of the same op).
    ``inference.__init__`` must not call zero-argument ``super()``."""
    return type(name, (GenerativeSurjection,), {
        "__init__": inference.__init__, "functional_args": inference.functional_args, "functional": functional,
        "__doc__": doc, "__module__": inference.__module__, "__qualname__": name})


class StochasticTransform(Transform):
    """A stochastic map both ways (VAE, stochastic permutation): ``z ~ q(z|x)``,
    ``V = log p(x|z) - log q(z|x)``, a one-sample bound term (Appendix A, Eq. 4; Appendix H.1)."""

    stochastic_forward: ClassVar[bool] = True
    stochastic_inverse: ClassVar[bool] = True
