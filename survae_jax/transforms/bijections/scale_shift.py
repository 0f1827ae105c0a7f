"""``Scale`` and ``Shift``: fixed (untrained) elementwise affine maps."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from survae_jax.transforms.base import Array, Bijection


def _fixed(value, who: str) -> Array:
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"{who}: expected finite values, got {np.asarray(arr)}.")
    return arr


class _FixedElementwise(Bijection):
    def _check(self, x: Array, param: Array) -> None:
        self._check_input(x, min_ndim=1)
        event = tuple(x.shape[1:])
        try:
            ok = np.broadcast_shapes(param.shape, event) == event
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{self.name}: its parameter of shape {tuple(param.shape)} does not broadcast to the "
                f"event shape {event} of input {tuple(x.shape)} (expected (B, ...) with an event shape "
                f"the parameter broadcasts to)."
            )


class Scale(_FixedElementwise):
    """Fixed scaling ``z = scale * x`` (elementwise, broadcast over the event); not trained.

    Forward (X -> Z): ``z = scale * x``. Inverse (Z -> X): ``x = z / scale``.
    V = ``sum over the event of log|scale|`` (broadcast to the event shape), nats, ``(B,)``.

    Args:
      scale: a nonzero scalar or array broadcastable to the event shape, e.g. ``(D,)`` for
        ``(B, D)`` inputs or ``(C,)`` for NHWC images.

    Shapes: ``x`` and ``z`` ``(B, ...)``, e.g. ``(B, D)``; V ``(B,)``.

    Raises:
      ValueError: a zero or non-finite scale (at construction); an input of rank 0 or
        non-floating, or whose event shape the scale does not broadcast to.

    Source: the reference SurVAE code's ``ScalarAffineBijection``; Appendix A, Eq. 5.
    """

    def __init__(self, scale):
        s = _fixed(scale, "Scale")
        if np.any(np.asarray(s) == 0):
            raise ValueError(f"Scale: a zero scale is not invertible, got {np.asarray(s)}.")
        self.scale = s

    def forward(self, x, *, key=None, context=None):
        self._check(x, self.scale)
        s = self.scale.astype(x.dtype)
        v = jnp.sum(jnp.broadcast_to(jnp.log(jnp.abs(s)), x.shape[1:]))
        return x * s, jnp.broadcast_to(v, (x.shape[0],))

    def inverse(self, z, *, key=None, context=None):
        self._check(z, self.scale)
        return z / self.scale.astype(z.dtype)


class Shift(_FixedElementwise):
    """Fixed shift ``z = x + shift`` (elementwise, broadcast over the event); V = 0 nats.

    Forward (X -> Z): ``z = x + shift``. Inverse (Z -> X): ``x = z - shift``. Volume
    preserving: V = ``log|det dz/dx| = 0`` nats.

    Args:
      shift: a finite scalar or array broadcastable to the event shape, e.g. ``(D,)`` for
        ``(B, D)`` inputs or ``(C,)`` for NHWC images.

    Shapes: ``x`` and ``z`` ``(B, ...)``, e.g. ``(B, D)``; V ``(B,)`` zeros.

    Raises:
      ValueError: a non-finite shift (at construction); an input of rank 0 or non-floating, or
        whose event shape the shift does not broadcast to.

    Source: the reference SurVAE code's ``ScalarAffineBijection``.
    """

    def __init__(self, shift):
        self.shift = _fixed(shift, "Shift")

    def forward(self, x, *, key=None, context=None):
        self._check(x, self.shift)
        return x + self.shift.astype(x.dtype), jnp.zeros((x.shape[0],), x.dtype)

    def inverse(self, z, *, key=None, context=None):
        self._check(z, self.shift)
        return z - self.shift.astype(z.dtype)
