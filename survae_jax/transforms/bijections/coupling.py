"""Coupling bijections: ``AffineCoupling``, ``AdditiveCoupling`` (optionally conditional).

One coupling base does the split, the conditioner call and the concatenation once; the
affine and additive maps of the transformed part are small elementwise pieces.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import jax
import jax.numpy as jnp

from survae_jax.transforms.base import Array, Bijection, sum_except_batch



# Scale functions of the reference SurVAE code: name -> (scale(s), log scale(s)). The log is
# written out so that "exp" never computes log(exp(s)) (which overflows).
_SCALE_FNS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "exp": (jnp.exp, lambda s: s),
    "softplus": (jax.nn.softplus, lambda s: jnp.log(jax.nn.softplus(s))),
    "sigmoid": (
        lambda s: jax.nn.sigmoid(s + 2.0) + 1e-3,
        lambda s: jnp.log(jax.nn.sigmoid(s + 2.0) + 1e-3),
    ),
    "tanh_exp": (lambda s: jnp.exp(2.0 * jnp.tanh(s / 2.0)), lambda s: 2.0 * jnp.tanh(s / 2.0)),
}


class Coupling(Bijection):
    """Base of the coupling bijections: split, condition, transform one part elementwise.

    Forward (X -> Z): ``x = concat(x_id, x2)`` along ``axis``; ``z = concat(x_id,
    g(x2; theta))`` with ``theta = net(x_id)`` (or ``net(x_id, context)`` when conditional) and
    ``g`` an elementwise bijection with ``P = num_params`` parameters per element.
    V = ``sum log|dg/dx2|`` over the event, in nats, shape ``(B,)``.
    Inverse (Z -> X): ``x2 = g^{-1}(z2; net(z_id))``; ``x_id = z_id``.

    The split: ``x_id`` is the first ``num_condition`` entries of ``axis`` (default: half,
    rounded up, as ``torch.chunk`` in the reference code), ``x2`` the rest.

    The net's shapes. Input: ``x_id``, i.e. ``x``'s shape with ``axis`` of length
    ``num_condition``. Output: either ``x2.shape[:-1] + (x2.shape[-1] * P,)`` (read interleaved,
    ``theta[..., d, p] = out[..., d * P + p]``, as ``survae_jax.nn.ElementwiseParams``) or
    ``x2.shape + (P,)``. Concretely, with ``n = num_condition`` and ``m`` the rest:

    =========================  ==========  ================  ======================================
    data                       axis        net input         net output
    =========================  ==========  ================  ======================================
    vectors ``(B, D)``         -1          ``(B, n)``        ``(B, m * P)``
    images ``(B, H, W, C)``    -1          ``(B, H, W, n)``  ``(B, H, W, m * P)``
    points ``(B, N, 2)``       -1          ``(B, N, 1)``     ``(B, N, P)``
    points ``(B, N, 2)``       1 (points)  ``(B, n, 2)``     ``(B, m, 2 * P)``
    =========================  ==========  ================  ======================================

    On the point axis the net maps ``n`` points to ``m`` points (``n == m`` for even ``N``): a
    Transformer with one output per input point, or a per-point ``MLP(2, 2 * P)``. The net's
    output is cast to the input's dtype. A conditional net gets ``context`` as it was passed
    to ``forward``/``inverse`` (``MLP`` and ``DenseNet`` concatenate it on the last axis).

    Args:
      net: a callable (an ``nnx.Module``) as above, e.g. ``MLP(1, 2, rngs=rngs)`` for an affine
        coupling on 2-D data.
      axis: the split axis, counted with the batch axis (not 0).
      num_condition: length of the identity part along ``axis`` (default: ceil(size / 2)).
      conditional: call ``net(x_id, context)``; ``context`` is then required.

    Raises:
      ValueError: ``axis=0`` or ``num_condition < 1`` (at construction); input of rank < 2 or
        non-floating, an ``axis`` too short to split, a missing ``context`` for a conditional
        coupling, a net that rejects the identity part, or a net output of the wrong shape
        (all naming the layer and the shapes).

    Source: RealNVP (Dinh et al., 2017); the reference SurVAE code's ``CouplingBijection``.
    """

    num_params: ClassVar[int] = 1

    def __init__(self, net, *, axis: int = -1, num_condition: int | None = None, conditional: bool = False):
        if axis == 0:
            raise ValueError(f"{type(self).__name__}: axis 0 is the batch axis; split an event axis.")
        if num_condition is not None and int(num_condition) < 1:
            raise ValueError(f"{type(self).__name__}: num_condition must be >= 1, got {num_condition}.")
        self.net = net
        self.axis = int(axis)
        self.num_condition = None if num_condition is None else int(num_condition)
        self.conditional = bool(conditional)

    # ----------------------------------------------------------------- split / params
    def _split(self, x: Array) -> tuple[Array, Array]:
        self._check_input(x, min_ndim=2)
        axis = self.axis % x.ndim
        if axis == 0:
            raise ValueError(f"{self.name}: axis {self.axis} is the batch axis of input {tuple(x.shape)}.")
        size = x.shape[axis]
        n = self.num_condition if self.num_condition is not None else size - size // 2
        if not 1 <= n < size:
            raise ValueError(
                f"{self.name}: expected axis {self.axis} of length > num_condition={n} (>= 2 to split), "
                f"got input of shape {tuple(x.shape)}."
            )
        return jnp.split(x, [n], axis=axis)

    def _params(self, x_id: Array, x2: Array, context: Array | None) -> Array:
        if self.conditional and context is None:
            raise ValueError(f"{self.name} is conditional and needs context= (a (B, ...) tensor).")
        try:
            out = self.net(x_id, context) if self.conditional else self.net(x_id)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{self.name}: its net rejected the identity part of shape {tuple(x_id.shape)} "
                f"(transformed part {tuple(x2.shape)}, split along axis {self.axis}): {e}"
            ) from e
        p = self.num_params
        flat = (*x2.shape[:-1], x2.shape[-1] * p)
        if tuple(out.shape) == (*x2.shape, p):
            theta = out
        elif tuple(out.shape) == flat:
            theta = out.reshape(*x2.shape, p)
        else:
            raise ValueError(
                f"{self.name}: the net maps the identity part {tuple(x_id.shape)} to {tuple(out.shape)}; "
                f"expected {flat} or {(*x2.shape, p)} ({p} parameter(s) per transformed element)."
            )
        return theta.astype(x2.dtype)

    # ----------------------------------------------------------------- elementwise piece
    def _elementwise_forward(self, x2: Array, theta: Array) -> tuple[Array, Array]:
        """Return ``(z2, log|dz2/dx2|)`` elementwise, both of ``x2``'s shape."""
        raise NotImplementedError

    def _elementwise_inverse(self, z2: Array, theta: Array) -> Array:
        raise NotImplementedError

    # ----------------------------------------------------------------- contract
    def forward(self, x, *, key=None, context=None):
        x_id, x2 = self._split(x)
        z2, log_det = self._elementwise_forward(x2, self._params(x_id, x2, context))
        return jnp.concatenate([x_id, z2], axis=self.axis), sum_except_batch(log_det)

    def inverse(self, z, *, key=None, context=None):
        z_id, z2 = self._split(z)
        x2 = self._elementwise_inverse(z2, self._params(z_id, z2, context))
        return jnp.concatenate([z_id, x2], axis=self.axis)


class AffineCoupling(Coupling):
    """Affine coupling: ``z2 = scale(s) * x2 + t``, ``(s, t) = theta[..., 0], theta[..., 1]``.

    Forward (X -> Z): ``z_id = x_id``, ``z2 = scale(s) * x2 + t`` with ``theta = net(x_id)``.
    V = ``sum log scale(s)`` over the transformed part (nats, ``(B,)``).
    Inverse (Z -> X): ``x2 = (z2 - t) / scale(s)``. ``P = 2`` parameters per element, in the order
    (unconstrained scale, shift). The scale functions are those of the reference SurVAE code:

    - ``"exp"``: ``exp(s)`` (log-scale ``s``, RealNVP);
    - ``"softplus"``: ``softplus(s)``;
    - ``"sigmoid"``: ``sigmoid(s + 2) + 1e-3`` (Glow's choice; scale in (0.001, 1.001));
    - ``"tanh_exp"``: ``exp(2 tanh(s / 2))`` (log-scale bounded in (-2, 2)).

    One line for 2-D data: ``AffineCoupling(MLP(1, 2, rngs=rngs))``. See :class:`Coupling` for
    the split and the net's input and output shapes.

    Args:
      net, axis, num_condition, conditional: as :class:`Coupling`.
      scale_fn: one of the names above.

    Raises:
      ValueError: an unknown ``scale_fn``; the construction and input/net checks of
        :class:`Coupling`.

    Source: RealNVP (Dinh et al., 2017), Eq. 7-9; Appendix H.4, Listing 1.
    """

    num_params: ClassVar[int] = 2

    def __init__(self, net, *, axis: int = -1, num_condition: int | None = None,
                 conditional: bool = False, scale_fn: str = "exp"):
        if scale_fn not in _SCALE_FNS:
            raise ValueError(f"AffineCoupling: scale_fn must be one of {sorted(_SCALE_FNS)}, got {scale_fn!r}.")
        super().__init__(net, axis=axis, num_condition=num_condition, conditional=conditional)
        self.scale_fn = scale_fn

    def _elementwise_forward(self, x2, theta):
        scale, log_scale = _SCALE_FNS[self.scale_fn]
        s, t = theta[..., 0], theta[..., 1]
        return scale(s) * x2 + t, log_scale(s)

    def _elementwise_inverse(self, z2, theta):
        scale, _ = _SCALE_FNS[self.scale_fn]
        s, t = theta[..., 0], theta[..., 1]
        return (z2 - t) / scale(s)


class AdditiveCoupling(Coupling):
    """Additive coupling (NICE): ``z2 = x2 + t`` with ``t = net(x_id)``; V = 0 nats.

    Forward (X -> Z): ``z_id = x_id``, ``z2 = x2 + net(x_id)``. Inverse (Z -> X):
    ``x2 = z2 - net(z_id)``. Volume preserving: V = ``log|det dz/dx| = 0`` nats.

    Args:
      net, axis, num_condition, conditional: as :class:`Coupling`.

    Shapes: ``x`` and ``z`` ``(B, ...)`` of the same shape, split along ``axis``, e.g. ``(B, D)``
    with ``axis=-1``; the net maps ``x_id`` to ``x2``'s shape (``P = 1``; ``x2.shape + (1,)``
    is accepted too), e.g. ``(B, n) -> (B, D - n)``; see the table of :class:`Coupling`.
    V: ``(B,)`` zeros.

    Raises:
      ValueError: the construction and input/net checks of :class:`Coupling`.

    Source: NICE (Dinh et al., 2015); the reference SurVAE code's ``AdditiveCouplingBijection``.
    """

    num_params: ClassVar[int] = 1

    def _elementwise_forward(self, x2, theta):
        return x2 + theta[..., 0], jnp.zeros_like(x2)

    def _elementwise_inverse(self, z2, theta):
        return z2 - theta[..., 0]
