"""The transform contract shared by every SurVAE layer.

Every layer of a SurVAE flow (Nielsen et al., 2020, Appendix H) has three parts:

1. ``forward(x, *, key=None, context=None) -> (z, V)``: the **inference direction**, data ``x``
   to latent ``z`` (X -> Z), together with the likelihood contribution ``V(x, z)``;
2. ``inverse(z, *, key=None, context=None) -> x``: the **generative direction**, latent to data
   (Z -> X), the direction used for sampling;
3. the likelihood contribution ``V``, shape ``(B,)``, in nats, summed over the event.

Direction. ``forward`` maps data to latent everywhere in this library, as in the reference
PyTorch code. The paper's prose calls Z -> X "forward"; Tables 6 and 7 of the appendix name the
generative map "Forward" and the inference map "Inverse". Our ``forward`` is their "Inverse".

The log-likelihood of a flow is ``log p(x) = log p(z) + sum of V`` over its layers (Eq. 4 of
the appendix), exact when every layer is exact and a one-sample lower bound (ELBO) otherwise.
What V is depends on the kind of layer:

============================  ==========================  ===================================
kind                          V                           exact
============================  ==========================  ===================================
bijection                     ``log|det dz/dx|``          yes (Appendix A, Eq. 5)
inference surjection          ``log p(x|z)``, e.g.        yes (Appendix B, Table 7)
(deterministic ``forward``)   ``log p(s|z)`` for abs
generative surjection         ``-log q(z|x)``, e.g.       no: one-sample bound (Table 6)
(stochastic ``forward``)      ``-log q(s|x)`` for abs
stochastic layer (VAE, ...)   ``log p(x|z) - log q(z|x)``  no: one-sample bound (Appendix H.1)
============================  ==========================  ===================================

Randomness. ``forward`` and ``inverse`` never mutate the module and never draw hidden
randomness: every random draw comes from ``key``. A layer whose direction is stochastic raises
``ValueError`` naming the layer when called with ``key=None``; deterministic directions accept a
key and ignore it.

Shapes. Batch first: vectors ``(B, D)``, images ``(B, H, W, C)`` (NHWC), point clouds
``(B, N, 2)``. A wrong rank, size or dtype raises ``ValueError`` at trace time naming the layer,
the expected and the received shape.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.distributions.base import sum_except_batch  # re-exported for the layers

Array = jax.Array


class Transform(nnx.Module):
    """Base class of every layer: ``forward`` maps X -> Z and returns ``(z, V)``.

    Subclasses set the class flags and implement :meth:`forward` and :meth:`inverse`.

    Class attributes:
      stochastic_forward: ``forward`` (X -> Z) draws randomness and needs ``key``.
      stochastic_inverse: ``inverse`` (Z -> X) draws randomness and needs ``key``.
      exact: ``V`` is exact (bijections, inference surjections); ``False`` when ``V`` is a
        one-sample bound term (generative surjections, stochastic layers).

    Shapes: ``x`` is ``(B, *event_x)`` and ``z`` is ``(B, *event_z)`` (equal for bijections);
    ``V`` is ``(B,)`` in nats.

    Raises (every subclass):
      ValueError: an input whose rank, size or dtype the layer cannot take (the message names
        the layer, the expected and the received shape), or a stochastic direction called with
        ``key=None``.

    Source: Nielsen et al. (2020), Appendix H ("The Software Perspective").
    """

    stochastic_forward: ClassVar[bool] = False
    stochastic_inverse: ClassVar[bool] = False
    exact: ClassVar[bool] = True

    def forward(self, x: Array, *, key: Array | None = None, context: Array | None = None):
        """Inference direction X -> Z.

        Args:
          x: data, batch first, e.g. ``(B, D)``.
          key: a PRNG key; required when ``stochastic_forward``.
          context: optional conditioning tensor ``(B, ...)`` for conditional layers.

        Returns:
          ``(z, V)`` with ``V`` of shape ``(B,)`` in nats.
        """
        raise NotImplementedError

    def inverse(self, z: Array, *, key: Array | None = None, context: Array | None = None):
        """Generative direction Z -> X; returns ``x``. Needs ``key`` when ``stochastic_inverse``."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers for subclasses
    @property
    def name(self) -> str:
        """The layer's class name, used in error messages."""
        return type(self).__name__

    def _require_key(self, key: Array | None, direction: str) -> Array:
        """Return ``key`` or raise ``ValueError`` saying that this layer's ``direction`` needs one."""
        if key is None:
            raise ValueError(
                f"{self.name}.{direction} is stochastic and needs a PRNG key: "
                f"call it with key=jax.random.key(...)."
            )
        return key

    def _check_input(
        self,
        x: Array,
        *,
        event_shape: Sequence[int | None] | None = None,
        min_ndim: int | None = None,
        ndim: int | None = None,
        floating: bool = True,
        what: str = "input",
    ) -> None:
        """Validate ``x`` at trace time; raise ``ValueError`` naming the layer otherwise.

        Args:
          x: the batched tensor ``(B, *event)``.
          event_shape: expected event shape; ``None`` entries match any size.
          min_ndim: the least rank of ``x`` including the batch axis.
          ndim: the exact rank of ``x`` including the batch axis.
          floating: whether ``x`` must have a floating dtype.
          what: the argument's name in the message.
        """
        shape = tuple(x.shape)
        if event_shape is not None:
            expected = ("B", *("*" if s is None else s for s in event_shape))
            ok = len(shape) == len(event_shape) + 1 and all(
                e is None or e == s for e, s in zip(event_shape, shape[1:])
            )
            if not ok:
                raise ValueError(
                    f"{self.name}: expected {what} of shape ({', '.join(map(str, expected))}), "
                    f"got {shape}."
                )
        if ndim is not None and len(shape) != ndim:
            raise ValueError(
                f"{self.name}: expected {what} of rank {ndim} (batch first), got shape {shape}."
            )
        if min_ndim is not None and len(shape) < min_ndim:
            raise ValueError(
                f"{self.name}: expected {what} of rank >= {min_ndim} (batch first), got shape {shape}."
            )
        if floating and not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(
                f"{self.name}: expected a floating-point {what}, got dtype {x.dtype}."
            )


class Bijection(Transform):
    """A diffeomorphism; ``V = log|det dz/dx|`` (Appendix A, Eq. 5). Deterministic both ways.

    ``x`` and ``z`` have the same number of elements, ``(B, *event)``; ``V`` is ``(B,)`` nats.
    Raises ``ValueError`` as :class:`Transform` says. Source: Appendix A, Eq. 5 and 12.
    """

    stochastic_forward: ClassVar[bool] = False
    stochastic_inverse: ClassVar[bool] = False
    exact: ClassVar[bool] = True


class Surjection(Transform):
    """A surjective layer (Tables 6 and 7 of the appendix).

    Generative surjections (Table 6) are surjective in the generative direction Z -> X: their
    ``forward`` (X -> Z) samples ``z ~ q(z|x)`` and ``V = -log q(z|x)`` is a one-sample bound
    term. Set ``stochastic_forward = True`` and ``exact = False``.

    Inference surjections (Table 7) are surjective in the inference direction X -> Z: their
    ``forward`` is deterministic, their ``inverse`` samples ``x ~ p(x|z)`` on the fibre of ``z``,
    and ``V = log p(x|z)`` is exact (Appendix B). Set ``stochastic_inverse = True``,
    ``exact = True``.

    Shapes and errors as :class:`Transform`. Source: Nielsen et al. (2020), Tables 6 and 7.
    """


class GenerativeSurjection(Surjection):
    """Surjective Z -> X: stochastic ``forward``, deterministic ``inverse``, V a bound (Table 6).

    ``forward(x, key=k)`` draws ``z ~ q(z|x)`` ``(B, *event_z)`` and returns ``V = -log q(z|x)``
    ``(B,)`` nats; ``inverse(forward(x, key=k)) == x`` for every key. Raises ``ValueError`` for
    ``forward`` without a key. Source: Table 6; Appendix A, Eq. 4.
    """

    stochastic_forward: ClassVar[bool] = True
    stochastic_inverse: ClassVar[bool] = False
    exact: ClassVar[bool] = False


class InferenceSurjection(Surjection):
    """Surjective X -> Z: deterministic ``forward``, stochastic ``inverse``, V exact (Table 7).

    ``forward(x)`` gives ``z = f(x)`` ``(B, *event_z)`` and ``V = log p(x|z)`` ``(B,)`` nats;
    ``inverse(z, key=k)`` draws ``x ~ p(x|z)`` on the fibre of ``z``, so ``forward(inverse(z,
    key=k)) == z``. Raises ``ValueError`` for ``inverse`` without a key. Source: Table 7;
    Appendix B (the bound is tight when ``p(x|z)`` lives on the fibre).
    """

    stochastic_forward: ClassVar[bool] = False
    stochastic_inverse: ClassVar[bool] = True
    exact: ClassVar[bool] = True


class StochasticTransform(Transform):
    """A stochastic map both ways (VAE, stochastic permutation); V a one-sample bound term.

    ``V = log p(x|z) - log q(z|x)`` with ``z ~ q(z|x)`` (Appendix A, Eq. 4; Appendix H.1).
    ``V`` is ``(B,)`` nats; both directions raise ``ValueError`` without a key.
    Source: Appendix A, Eq. 4; Appendix G and H.1.
    """

    stochastic_forward: ClassVar[bool] = True
    stochastic_inverse: ClassVar[bool] = True
    exact: ClassVar[bool] = False
