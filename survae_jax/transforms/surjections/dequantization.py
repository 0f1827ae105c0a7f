"""Dequantization as generative rounding surjections (Table 6 "Rounding"; Appendix H.2).

The data ``x`` are integers (pixel values, counts); the latent ``z`` is continuous. The
generative map is ``x = floor(z)`` (times ``2**num_bits`` when scaling), so ``forward``
(X -> Z, data to latent) dequantizes: ``z = x + u`` with ``u`` in ``[0, 1)^D``. These are the
only layers of the library whose input is discrete.

Scaling. With ``num_bits=None`` (default) the latent stays in data units, ``z = x + u``, and
``V`` is just ``-log q(u|x)`` (0 for uniform noise), as in Appendix H.2. With ``num_bits=b``
the data must lie in ``{0, ..., 2**b - 1}`` and the latent is rescaled to ``[0, 1)``:
``z = (x + u) / 2**b``; the scaling is a bijection with ``log|det| = -D b log 2``, which is
added to ``V`` so that ``log p(x)`` stays in nats of the integer data.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from survae_jax.transforms.base import GenerativeSurjection
from survae_jax.transforms.surjections import _conditioning as cond
from survae_jax.transforms.surjections.rounding import add_below_next_integer

Array = jax.Array


def _event_size(x: Array) -> int:
    return int(np.prod(x.shape[1:], dtype=np.int64))


class _Dequantization(GenerativeSurjection):
    """Shared parts: integer-input validation, scaling and the ``floor`` inverse."""

    def _init(self, num_bits, dtype):
        if num_bits is not None and not 1 <= int(num_bits) <= 24:
            raise ValueError(f"{self.name}: num_bits must be None or in 1..24, got {num_bits}.")
        if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{self.name}: dtype must be None or a floating dtype, got {dtype}.")
        self.num_bits = None if num_bits is None else int(num_bits)
        self.dtype = dtype

    @property
    def float_dtype(self):
        """The latent's dtype: ``dtype``, or JAX's default float (float64 under x64) if ``None``."""
        if self.dtype is None:
            return jax.dtypes.canonicalize_dtype(jnp.float64)
        return jnp.dtype(self.dtype)

    def _check_integers(self, x: Array) -> None:
        """Rank and integer dtype always; the value range when ``x`` is concrete (not traced)."""
        self._check_input(x, min_ndim=2, floating=False)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(
                f"{self.name}: expected an integer input (discrete data), got dtype {x.dtype}; "
                "floats are already continuous, dequantize integers only."
            )
        if isinstance(x, jax.core.Tracer):
            return  # values cannot be checked under jit
        if self.num_bits is not None:
            lo, hi = 0, 2**self.num_bits - 1
        else:
            hi = 2 ** (jnp.finfo(self.float_dtype).nmant + 1) - 1  # integers exact in self.dtype
            lo = -hi
        values = np.asarray(x)  # concrete, even when closed over inside a jit trace
        xmin, xmax = int(values.min()), int(values.max())
        if xmin < lo or xmax > hi:
            raise ValueError(
                f"{self.name}: expected integers in [{lo}, {hi}], got values in [{xmin}, {xmax}]."
            )

    def _to_latent(self, x: Array, u: Array, log_q: Array) -> tuple[Array, Array]:
        """``z = (x + u) / 2**b`` (or ``x + u``), ``V = -log q - D b log 2``."""
        dtype = jnp.result_type(self.float_dtype, u.dtype, log_q.dtype)  # widen, never narrow
        y = add_below_next_integer(x.astype(dtype), u.astype(dtype))
        v = -log_q.astype(dtype)
        if self.num_bits is None:
            return y, v
        scale = 2.0**self.num_bits  # a power of two: the division and its inverse are exact
        return y / scale, v - _event_size(x) * self.num_bits * math.log(2.0)

    def inverse(self, z, *, key=None, context=None):
        """``x = floor(z)`` (or ``floor(z * 2**num_bits)``) as ``int32``; not clipped."""
        self._check_input(z, min_ndim=2, what="latent")
        y = z if self.num_bits is None else z * (2.0**self.num_bits)
        return jnp.floor(y).astype(jnp.int32)


class UniformDequantization(_Dequantization):
    """Uniform dequantization (Table 6, "Rounding"; Appendix H.2): ``z = x + u``, ``u ~ U[0, 1)^D``.

    Forward (X -> Z, stochastic): ``z = x + u`` (``num_bits=None``) or ``z = (x + u) / 2**b``
    (``num_bits=b``), ``u ~ U[0, 1)^D``; the sum is kept strictly below ``x + 1``.

    Inverse (Z -> X, deterministic): ``x = floor(z)`` or ``floor(z * 2**b)``, ``int32``. Not
    clipped: a latent outside the data range gives an integer outside it.

    Likelihood contribution (Table 6): ``V = -log q(u|x) = 0`` nats for ``num_bits=None``;
    ``V = -D b log 2`` with scaling (``D`` = event size). ``log p(z) + V`` is a one-sample
    lower bound of ``log P(x)``, the log-probability of the integer ``x`` (Theis et al., 2016).

    Args:
      num_bits: ``None`` (latent in data units) or ``b`` (data in ``{0..2**b - 1}``, latent in
        ``[0, 1)``).
      dtype: floating dtype of the latent; ``None`` (default): JAX's default float, float32,
        or float64 under ``jax_enable_x64`` (like ``jnp.zeros``).

    Shapes: ``x`` ``(B, ...)`` integers -> ``z`` ``(B, ...)`` floats, ``V`` ``(B,)``.

    Raises:
      ValueError: ``forward`` without ``key``; a non-integer or rank-0/1 input; integers outside
        ``[0, 2**b - 1]`` (or not exactly representable in ``dtype``), checked when ``x`` is
        concrete (not under ``jit``); a non-floating latent.

    Source: Nielsen et al. (2020), Table 6 and Appendix H.2; Uria et al. (2013).
    """

    def __init__(self, num_bits: int | None = None, *, dtype=None):
        self._init(num_bits, dtype)

    def forward(self, x, *, key=None, context=None):
        """``z = x + u`` (scaled if ``num_bits``), ``u ~ U[0, 1)``; ``V`` ``(B,)`` nats."""
        key = self._require_key(key, "forward")
        self._check_integers(x)
        dtype = self.float_dtype
        u = jax.random.uniform(key, x.shape, dtype)
        return self._to_latent(x, u, jnp.zeros((x.shape[0],), dtype))


_ENCODER_HINT = (
    "The encoder q(u|x) must put its samples in [0, 1): layers are listed data side first and "
    "its flow's forward maps u (data) to its base, so it needs Logit() (whose inverse, the "
    "sampling direction, is the sigmoid), e.g. ConditionalFlow(ConditionalNormal(net), [Logit()]), "
    "not Sigmoid()."
)


class VariationalDequantization(_Dequantization):
    """Variational dequantization (Ho et al., 2019): ``z = x + u``, ``u ~ q(u|x)`` learned.

    Forward (X -> Z, stochastic): ``u ~ q(u|x)`` on ``[0, 1)^D``, ``z = x + u`` (or
    ``(x + u) / 2**b``).

    Inverse (Z -> X, deterministic): ``x = floor(z)`` (or ``floor(z * 2**b)``), ``int32``.

    Likelihood contribution (Table 6, "Rounding"): ``V = -log q(u|x)`` nats (``- D b log 2``
    with scaling), shape ``(B,)``; a one-sample bound term, tighter than the uniform one when
    ``q`` matches the base's conditional on the cell ``[x, x + 1)``.

    Args:
      encoder: ``q(u|x)``, a distribution over ``[0, 1)^D`` with the data's event shape. It
        gets as ``context`` the data as floats: ``x`` (``num_bits=None``) or ``x / 2**b`` in
        ``[0, 1)``. An unconditional one draws ``B`` samples (a learned but ``x``-independent
        noise). The usual choice is a ``ConditionalFlow`` over ``u`` whose data-side layer is
        ``Logit()``: layers are listed data side first and a flow's ``forward`` maps its data
        ``u`` to its base, so ``Logit`` takes ``u`` in ``(0, 1)`` to the real line, and sampling
        runs its inverse, the sigmoid, on the Gaussian base. ``Sigmoid()`` there is the wrong
        way round (it sends the Gaussian through a logit: NaN for base samples outside
        ``(0, 1)``).
      num_bits: as for :class:`UniformDequantization`.
      dtype: floating dtype of the latent (``None``: JAX's default float); an encoder whose
        samples are wider (float64) widens it.

    Shapes: ``x`` ``(B, ...)`` integers -> ``z`` ``(B, ...)`` floats, ``V`` ``(B,)``.

    Raises:
      ValueError: as :class:`UniformDequantization`; an encoder sample whose shape differs
        from ``x``'s; and, when the sample ``u`` is concrete (eager calls, not under ``jit``,
        ``vmap`` or ``Flow.iwbo``, which traces), an entry of ``u`` outside ``[0, 1]`` or NaN
        (a wrong encoder), with the range found and the rows.

    Values: a sample ``u`` of exactly 1 (a saturated sigmoid in float32) is moved just below 1
    so that ``floor`` recovers ``x``. Under ``jit`` a wrong encoder cannot raise; a row whose
    ``u`` has an entry outside ``[0, 1]`` or NaN gets ``V = -inf`` (the log of a zero
    importance weight: the model puts no mass on ``x + u`` outside the cell of ``x``), so its
    ELBO is ``-inf``, or NaN where a later layer turns the out-of-cell ``z`` into NaN (e.g. a
    ``Logit`` of ``z`` outside ``[0, 1]``); ``Flow.iwbo`` drops such samples (weight 0) and is
    ``-inf`` when all are. Check a new encoder with one eager ``forward`` (or ``Flow.elbo``).

    Example (finite ELBO and IWBO; 3-bit data in ``{0..7}^3``)::

        import jax, jax.numpy as jnp
        from flax import nnx
        from survae_jax.distributions import ConditionalNormal, StandardNormal
        from survae_jax.flow import ConditionalFlow, Flow
        from survae_jax.nn import MLP
        from survae_jax.transforms import Logit, VariationalDequantization

        rngs = nnx.Rngs(0)
        # q(u|x): Gaussian base N(mu(x), sigma(x)) -> sigmoid (the inverse of Logit) -> u in (0, 1)
        encoder = ConditionalFlow(ConditionalNormal(MLP(3, 6, rngs=rngs)), [Logit()])
        flow = Flow(StandardNormal((3,)), [VariationalDequantization(encoder, num_bits=3), Logit()])
        x = jnp.array([[0, 3, 7], [5, 1, 2]], jnp.int32)
        elbo = flow.elbo(x, key=jax.random.key(1))  # (2,) nats, finite
        iwbo = flow.iwbo(x, key=jax.random.key(2), num_samples=8)  # (2,) nats, finite

    Source: Ho et al. (2019), "Flow++", Sec. 3.1; Nielsen et al. (2020), Table 6.
    """

    def __init__(self, encoder, num_bits: int | None = None, *, dtype=None):
        self._init(num_bits, dtype)
        self.encoder = encoder

    def forward(self, x, *, key=None, context=None):
        """``u, log q = q(u|x)``; ``z = x + u`` (scaled if ``num_bits``); ``V = -log q`` ``(B,)``.

        Raises ``ValueError`` for a concrete ``u`` outside ``[0, 1]``; under ``jit`` such rows
        get ``V = -inf``.
        """
        key = self._require_key(key, "forward")
        self._check_integers(x)
        c = x.astype(self.float_dtype)
        if self.num_bits is not None:
            c = c / (2.0**self.num_bits)
        u, log_q = cond.draw(self.encoder, key, x.shape[0], c, layer=self.name)
        cond.check_like(self.name, "encoder sample", u, x)
        ok = cond.in_unit_interval(self.name, "encoder sample u", u, _ENCODER_HINT)
        z, v = self._to_latent(x, u, log_q)
        return z, jnp.where(ok, v, -jnp.inf)
