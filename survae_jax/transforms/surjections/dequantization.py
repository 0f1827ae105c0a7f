"""Dequantization: rounding in the generative direction (Table 6, row "Rounding"; Appendix H.2).
The only layers whose input is discrete. The maths is :mod:`survae_jax.functional.rounding`."""

from __future__ import annotations

from survae_jax.functional.rounding import dequantization_forward, dequantization_inverse, rounding_surjection
from survae_jax.transforms.base import GenerativeSurjection


class UniformDequantization(GenerativeSurjection):
    """Uniform dequantization: ``z = (x + u) / 2^b``, ``u ~ U[0, 1)^D`` (Table 6; Appendix H.2).

    - forward: ``u ~ q(u|x)``, ``z = (x + u) / 2^b``, kept below ``(x + 1) / 2^b``
      (``b = num_bits``, ``b = 0`` for ``None``: the latent stays in data units);
    - inverse: ``x = floor(2^b z)`` as ``int32``, not clipped;
    - ``V = -log q(u|x) - D b log 2`` (``D`` the event size; ``-D b log 2`` for the uniform):
      ``log p(z) + V`` is a one-sample bound of ``log P(x)`` (Theis et al., 2016). A row whose
      integers lie outside ``[0, 2^b - 1]`` (without ``num_bits``: outside the integers exact
      in ``dtype``) gets ``V = -inf``. ``num_bits``: ``None`` or ``1..24``.

    Shapes: ``x (B, ...)`` integers -> ``z (B, ...)`` floats of ``dtype`` (``None``: JAX's default).

    Source: Nielsen et al. (2020), Table 6 and Appendix H.2; Uria et al. (2013).
    """

    encoder = None

    def __init__(self, num_bits: int | None = None, *, dtype=None):
        self.num_bits = None if num_bits is None else int(num_bits)
        self.dtype = dtype
        rounding_surjection(num_bits=self.num_bits, dtype=dtype, name=self.name)  # validates

    functional = (dequantization_forward, dequantization_inverse)

    def functional_args(self):
        return {"dist": self.encoder, "num_bits": self.num_bits, "dtype": self.dtype, "name": self.name}


class VariationalDequantization(UniformDequantization):
    """Variational dequantization (Ho et al., 2019): as :class:`UniformDequantization` with a
    learned ``q(u|x)`` on ``[0, 1)^D``; ``V = -log q(u|x) - D b log 2``, tighter than uniform
    when ``q`` matches the model's conditional on the cell of ``x``. The ``encoder`` (context
    ``x / 2^b`` as floats) is usually a ``ConditionalFlow`` whose data-side layer is ``Logit()``
    (sampling runs the sigmoid; ``Sigmoid()`` is the wrong way round); a wider one widens ``z``.

    Trap: a row whose sample ``u`` leaves ``[0, 1]`` (or is NaN: a wrong encoder) gets
    ``V = -inf``, under ``jit`` or not; ``u = 1`` (a saturated sigmoid) is kept below 1.

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
        UniformDequantization.__init__(self, num_bits, dtype=dtype)
        self.encoder = encoder
