"""Tensor slicing in both directions: ``Slice`` (inference, Table 7) and ``Augment`` (Table 6).

``Slice`` drops part of the input on the way to the latent (the multi-scale architecture of
RealNVP/Glow as a surjection); ``Augment`` adds dimensions on the way to the latent (augmented
normalizing flows, Appendix H.3). Direction: ``forward`` is data -> latent (X -> Z) everywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from survae_jax.distributions.standard import StandardNormal
from survae_jax.transforms.base import GenerativeSurjection, InferenceSurjection
from survae_jax.transforms.surjections import _conditioning as cond

Array = jax.Array

def _event_axis(layer, x: Array, axis: int, what: str) -> int:
    """The non-negative index of ``axis`` in ``x``; raise ``ValueError`` for rank < 2 or the batch axis."""
    layer._check_input(x, min_ndim=2, what=what)
    ax = axis % x.ndim if -x.ndim <= axis < x.ndim else None
    if ax is None or ax == 0:
        raise ValueError(
            f"{layer.name}: axis {axis} is not an event axis of {what} of shape {tuple(x.shape)}."
        )
    return ax


class Slice(InferenceSurjection):
    """Inference slicing surjection (Table 7, "Slicing"): keep the first ``num_keep`` entries.

    Forward (X -> Z, deterministic): split ``x`` along ``axis`` into ``(x1, x2)`` with ``x1`` the
    first ``num_keep`` entries, and return ``z = x1``.

    Inverse (Z -> X, stochastic): ``x1 = z``, ``x2 ~ p(x2|z)``, ``x = concat(x1, x2)``.

    Likelihood contribution (Table 7): ``V = log p(x2|z)`` in nats, shape ``(B,)``; exact, since
    ``p(x2|z)`` has support on the whole fibre ``{(z, x2)}`` of ``z`` (Appendix B).

    ``p(x2|z)`` (the decoder) is by default the paper's parameter-free choice, a standard
    normal ``N(0, I)`` independent of ``z``. Instead one can pass any distribution of this
    library (``StandardNormal``, ``ConditionalNormal(net)``, a ``Flow`` or ``ConditionalFlow``):
    a conditional one is called with ``context=z``, an unconditional one draws ``B`` samples.
    ``V`` is exact only when the decoder's ``log_prob`` is (a flow with stochastic layers as the
    decoder gives a one-sample bound of ``log p(x2|z)`` instead).

    Args:
      num_keep: how many entries along ``axis`` go to the latent (``>= 1``).
      decoder: ``p(x2|z)``, a distribution over ``(B, ..., D - num_keep, ...)``; ``None`` for
        the standard normal.
      axis: the sliced axis, counted with the batch axis (``-1``: features/channels of
        ``(B, D)`` or ``(B, H, W, C)``; ``1``: the points of a point cloud ``(B, N, 2)``).
      size: the input's length ``D`` along ``axis``. Optional; checked in ``forward`` when
        given, and needed by ``inverse`` with the default decoder, which must know how many
        entries to draw.

    Shapes: ``x`` ``(B, ..., D, ...)`` -> ``z`` ``(B, ..., num_keep, ...)``, ``V`` ``(B,)``.

    Raises:
      ValueError: ``num_keep < 1``, ``axis`` the batch axis, an input with at most
        ``num_keep`` entries along ``axis`` (or not ``size`` of them), a latent without exactly
        ``num_keep`` entries, ``inverse`` without ``key``, ``inverse`` with the default
        decoder and no ``size``, or a decoder sample of the wrong shape.

    Source: Nielsen et al. (2020), Table 7; multi-scale flows (Dinh et al., 2017).
    """

    def __init__(self, num_keep: int, decoder=None, *, axis: int = -1, size: int | None = None):
        if int(num_keep) < 1:
            raise ValueError(f"Slice: num_keep must be >= 1, got {num_keep}.")
        if axis == 0:
            raise ValueError("Slice: axis 0 is the batch axis; slice an event axis.")
        if size is not None and int(size) <= int(num_keep):
            raise ValueError(f"Slice: size must exceed num_keep={num_keep}, got size={size}.")
        self.num_keep = int(num_keep)
        self.decoder = decoder
        self.axis = int(axis)
        self.size = None if size is None else int(size)

    def forward(self, x, *, key=None, context=None):
        """``z = x1`` (first ``num_keep`` along ``axis``), ``V = log p(x2|z)`` ``(B,)`` nats."""
        ax = _event_axis(self, x, self.axis, "input")
        n = x.shape[ax]
        if n <= self.num_keep or (self.size is not None and n != self.size):
            want = f"{self.size}" if self.size is not None else f"more than {self.num_keep}"
            raise ValueError(
                f"{self.name}: expected input with {want} entries along axis {self.axis}, "
                f"got shape {tuple(x.shape)}."
            )
        z, x2 = jnp.split(x, [self.num_keep], axis=ax)
        if self.decoder is None:
            v = StandardNormal(x2.shape[1:]).log_prob(x2)
        else:
            v = cond.log_prob(self.decoder, x2, z, key, layer=self.name)
        return z, v

    def inverse(self, z, *, key=None, context=None):
        """``x = concat(z, x2)`` with ``x2 ~ p(x2|z)`` along ``axis``; needs ``key``."""
        key = self._require_key(key, "inverse")
        ax = _event_axis(self, z, self.axis, "latent")
        if z.shape[ax] != self.num_keep:
            raise ValueError(
                f"{self.name}: expected latent with {self.num_keep} entries along axis "
                f"{self.axis}, got shape {tuple(z.shape)}."
            )
        if self.decoder is None:
            if self.size is None:
                raise ValueError(
                    f"{self.name}.inverse with the default standard-normal p(x2|z) needs the "
                    f"input size along axis {self.axis}: build Slice(num_keep, size=D)."
                )
            shape = list(z.shape)
            shape[ax] = self.size - self.num_keep
            x2 = jax.random.normal(key, tuple(shape), z.dtype)
        else:
            x2 = cond.sample(self.decoder, key, z.shape[0], z, layer=self.name)
            cond.check_like(self.name, "decoder sample", x2, z, axis=ax)
        return jnp.concatenate([z, x2.astype(jnp.result_type(z, x2))], axis=ax)


class Augment(GenerativeSurjection):
    """Generative slicing surjection (Table 6, "Slicing"; Appendix H.3): add new dimensions.

    Forward (X -> Z, stochastic): ``z2 ~ q(z2|x)`` and ``z = concat(x, z2)`` along ``axis``.

    Inverse (Z -> X, deterministic): ``x = z[:x_size]`` along ``axis`` (drop ``z2``).

    Likelihood contribution (Table 6): ``V = -log q(z2|x)`` in nats, shape ``(B,)``, a
    one-sample bound term: ``E_q[log p(z) + V] <= log p(x)``, with equality only when
    ``q(z2|x)`` is the base's conditional ``p(z2|x)``.

    The encoder ``q(z2|x)`` is any distribution of this library: an unconditional one (the
    paper's ``Augment(Normal((2,)), ...)`` of Listing 2) is sampled with ``num_samples = B``;
    a conditional one (``ConditionalNormal(net)``, ``ConditionalFlow``) with ``context=x``.

    Args:
      encoder: ``q(z2|x)``, a distribution over ``(B, ..., D2, ...)``.
      x_size: the input's length ``D`` along ``axis``.
      axis: the augmented axis, counted with the batch axis (``-1`` by default).

    Shapes: ``x`` ``(B, ..., x_size, ...)`` -> ``z`` ``(B, ..., x_size + D2, ...)``, ``V`` ``(B,)``.

    Raises:
      ValueError: ``forward`` without ``key``, an input without ``x_size`` entries along
        ``axis``, an encoder sample whose shape differs from the input's off ``axis``, or a
        latent with at most ``x_size`` entries along ``axis``.

    Source: Nielsen et al. (2020), Table 6 and Appendix H.3 (Listing 2); Huang et al. (2020),
    Chen et al. (2020).
    """

    def __init__(self, encoder, x_size: int, *, axis: int = -1):
        if int(x_size) < 1:
            raise ValueError(f"Augment: x_size must be >= 1, got {x_size}.")
        if axis == 0:
            raise ValueError("Augment: axis 0 is the batch axis; augment an event axis.")
        self.encoder = encoder
        self.x_size = int(x_size)
        self.axis = int(axis)

    def forward(self, x, *, key=None, context=None):
        """``z = concat(x, z2)``, ``z2 ~ q(z2|x)``; ``V = -log q(z2|x)`` ``(B,)`` nats."""
        key = self._require_key(key, "forward")
        ax = _event_axis(self, x, self.axis, "input")
        if x.shape[ax] != self.x_size:
            raise ValueError(
                f"{self.name}: expected input with {self.x_size} entries along axis {self.axis}, "
                f"got shape {tuple(x.shape)}."
            )
        z2, log_q = cond.draw(self.encoder, key, x.shape[0], x, layer=self.name)
        cond.check_like(self.name, "encoder sample", z2, x, axis=ax)
        dtype = jnp.result_type(x, z2, log_q)  # widen to the wider of x and q; never narrow
        z = jnp.concatenate([x.astype(dtype), z2.astype(dtype)], axis=ax)
        return z, -log_q.astype(dtype)

    def inverse(self, z, *, key=None, context=None):
        """``x`` = the first ``x_size`` entries of ``z`` along ``axis``."""
        ax = _event_axis(self, z, self.axis, "latent")
        if z.shape[ax] <= self.x_size:
            raise ValueError(
                f"{self.name}: expected latent with more than {self.x_size} entries along axis "
                f"{self.axis}, got shape {tuple(z.shape)}."
            )
        return jax.lax.slice_in_dim(z, 0, self.x_size, axis=ax)
