"""A set-to-set Transformer conditioner for point-cloud couplings (Appendix I.2).

Dropout and purity. A forward pass never draws hidden randomness (docs/design.md), and a coupling
calls its conditioner as ``net(x_id)`` without a key. So a :class:`Transformer` is
deterministic (no dropout) unless a dropout key has been put into it explicitly:
:func:`with_dropout` returns a *copy* of any module (a whole flow) in which every Transformer
holds its own key, derived from the one given; the copy's forward is then a pure function of
its state, the same on every call. The training step does ``with_dropout(model, k)`` with a
fresh key ``k`` each step (inside its jitted loss), and evaluation uses the model as it is.
The key is kept as raw ``uint32`` key data in a :class:`DropoutKey` variable (not an
``nnx.Param``, so it is never trained; zeros and unused while dropout is off), and a static
flag ``dropout_on`` says whether to use it (so checkpoints hold a plain, non-empty array).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.nn.dropout import dropout

Array = jax.Array


def _dropout(x: Array, rate: float, key: Array | None, site: int) -> Array:
    """:func:`~survae_jax.nn.dropout.dropout` of ``x`` with the key ``fold_in(key, site)``."""
    return x if key is None else dropout(x, rate, jax.random.fold_in(key, site))


def _attention(q: Array, k: Array, v: Array) -> Array:
    """Scaled dot-product attention over the set axis; ``(B, N, H, d)`` in, ``(B, N, H, d)`` out.

    ``softmax(q k^T / sqrt(d)) v`` computed as ``(e v) / sum_m e`` with ``e = exp(l - max_m l)``,
    ``l = (q / sqrt(d)) k^T``: the normalisation divides the ``(N, d)`` output instead of the
    ``(N, N)`` weights, and the shift (the same for every ``m``, so it cancels) carries no
    gradient. The heads are moved in front, ``(B, H, N, d)``, before the two batched products, and
    the scale multiplies ``q`` rather than the ``(N, N)`` logits: on XLA:CPU a forward pass at
    PermuteFlow size (B = 500, N = 50, 8 heads of 8) takes 30 % less time than the products
    written as one ``einsum`` each over ``(B, N, H, d)`` with the logits scaled.
    """
    q = q * (1.0 / math.sqrt(q.shape[-1]))
    q, k, v = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))
    logits = jnp.matmul(q, jnp.swapaxes(k, -1, -2))
    e = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    return jnp.swapaxes(jnp.matmul(e, v) / jnp.sum(e, axis=-1, keepdims=True), 1, 2)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@jax.custom_jvp
def gelu(x: Array) -> Array:
    """Exact GELU ``x Phi(x)``, ``Phi(x) = erfc(-x / sqrt 2) / 2`` (Hendrycks & Gimpel, 2016),
    with the derivative ``Phi(x) + x phi(x)`` as one rule. ``erfc`` keeps the negative tail in
    float32, where ``(1 + erf) / 2`` cancels to 0 below about -5.5.

    The same values as ``jax.nn.gelu(x, approximate=False)``. Differentiated by JAX, that form
    keeps several ``erf``/``exp`` intermediates of the activation's shape for the backward pass;
    here the one derivative tensor is kept. In a scanned flow every kept tensor is stacked over
    the steps, which on XLA:CPU cost more than the arithmetic (``results/speed.md``).
    """
    return x * (0.5 * jax.lax.erfc(-x * _SQRT_HALF))


@gelu.defjvp
def _gelu_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    cdf = 0.5 * jax.lax.erfc(-x * _SQRT_HALF)
    return x * cdf, dx * (cdf + x * (_INV_SQRT_2PI * jnp.exp(-0.5 * x * x)))


class DropoutKey(nnx.Variable):
    """Raw key data (``uint32[2]``) of a Transformer's dropout; read only when dropout is on.

    Shape: the raw data of one PRNG key, ``(2,)`` ``uint32`` for the default threefry key.
    State, not an ``nnx.Param``: never trained; :func:`with_dropout` sets it.

    Source: dropout, Srivastava et al. (2014), as used in the Transformer (Vaswani et al., 2017).
    """


class _Block(nnx.Module):
    """One pre-norm encoder block: ``h + Drop(MHA(LN h))``, then ``h + Drop(W_2 Drop(gelu(W_1 LN h)))``.

    :func:`gelu` ``(x) = x Phi(x)`` with the normal CDF ``Phi`` (erf), PyTorch's ``nn.GELU``
    default, not the tanh approximation (which is also slower here: XLA:CPU materialises each of
    its scalar constants at the activation's full shape).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.norm1 = nnx.LayerNorm(d_model, rngs=rngs)
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)
        self.attn_out = nnx.Linear(d_model, d_model, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d_model, rngs=rngs)
        self.ff1 = nnx.Linear(d_model, d_ff, rngs=rngs)
        self.ff2 = nnx.Linear(d_ff, d_model, rngs=rngs)

    def __call__(self, h: Array, rate: float, key: Array | None) -> Array:
        b, n, d = h.shape
        qkv = self.qkv(self.norm1(h)).reshape(b, n, 3 * self.num_heads, d // self.num_heads)
        q, k, v = jnp.split(qkv, 3, axis=2)
        h = h + _dropout(self.attn_out(_attention(q, k, v).reshape(b, n, d)), rate, key, 0)
        f = _dropout(gelu(self.ff1(self.norm2(h))), rate, key, 1)
        return h + _dropout(self.ff2(f), rate, key, 2)


class Transformer(nnx.Module):
    """Permutation-equivariant Transformer encoder mapping a set to a set: ``(B, N, d_in) -> (B, N, d_out)``.

    ``h = W_in x (+ P)``, then ``num_blocks`` pre-norm blocks (Xiong et al., 2020; as the
    reference SurVAE code's point-cloud nets) ``h = h + Drop(MHA(LN h))``,
    ``h = h + Drop(W_2 Drop(gelu(W_1 LN h)))``, then ``y = W_out LN(h)``. ``MHA`` is multi-head
    scaled dot-product self-attention over the ``N`` points (no mask).
    Without positional encoding the map is permutation-equivariant over the ``N`` points
    (PermuteFlow); with ``num_points`` set, a learned encoding ``P`` of shape ``(N, d_model)``
    (initialised ``N(0, 0.02^2)``) is added, so the output depends on the order (SortFlow,
    whose sort layer makes the order canonical). ``W_out`` starts at zero by default, so a
    coupling built on this net starts as the identity map.

    Args:
      in_features: ``d_in``, the last axis of the input.
      out_features: ``d_out``, the last axis of the output.
      num_blocks: encoder blocks (2 in Appendix I.2).
      d_model: width of the residual stream (64); must be divisible by ``num_heads``.
      num_heads: attention heads (8).
      d_ff: hidden width of the feed-forward part (256).
      dropout: dropout rate, used only in a copy made by :func:`with_dropout` (0.1 for
        PermuteFlow, 0.2 for SortFlow in the paper); 0 disables it.
      num_points: ``N`` for a learned positional encoding; ``None`` for none.
      zero_init_last: start ``W_out`` (and its bias) at zero.
      rngs: ``nnx.Rngs`` for the initial parameters.

    Call: ``net(x, context=None)`` with ``x`` of shape ``(B, N, d_in)``; ``context`` is
    accepted for the conditional-coupling signature and ignored.

    Raises:
      ValueError: bad sizes at construction, or an input whose shape is not ``(B, N, d_in)``
        (with ``N == num_points`` when a positional encoding is used).

    Source: Vaswani et al. (2017); Nielsen et al. (2020), Appendix I.2 (2 blocks, d_model 64,
    d_ff 256, 8 heads).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        num_blocks: int = 2,
        d_model: int = 64,
        num_heads: int = 8,
        d_ff: int = 256,
        dropout: float = 0.0,
        num_points: int | None = None,
        zero_init_last: bool = True,
        rngs: nnx.Rngs,
    ):
        if d_model % num_heads:
            raise ValueError(f"Transformer: d_model={d_model} is not divisible by num_heads={num_heads}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Transformer: dropout must be in [0, 1), got {dropout}.")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dropout = float(dropout)
        self.num_points = None if num_points is None else int(num_points)
        self.embed = nnx.Linear(self.in_features, d_model, rngs=rngs)
        self.pos = (
            nnx.Param(0.02 * jax.random.normal(rngs.params(), (self.num_points, d_model)))
            if self.num_points is not None else None
        )
        self.blocks = nnx.List([_Block(d_model, num_heads, d_ff, rngs=rngs) for _ in range(num_blocks)])
        self.out_norm = nnx.LayerNorm(d_model, rngs=rngs)
        zeros = nnx.initializers.zeros_init()
        self.out = nnx.Linear(
            d_model, self.out_features, rngs=rngs,
            **({"kernel_init": zeros, "bias_init": zeros} if zero_init_last else {}),
        )
        self.dropout_key = DropoutKey(jnp.zeros_like(jax.random.key_data(jax.random.key(0))))
        self.dropout_on = False  # static: set only in the copies made by with_dropout

    def __call__(self, x: Array, context: Array | None = None) -> Array:
        n = self.num_points
        if x.ndim != 3 or x.shape[-1] != self.in_features or (n is not None and x.shape[1] != n):
            expected = f"(B, {n if n is not None else 'N'}, {self.in_features})"
            raise ValueError(f"Transformer: expected input of shape {expected}, got {tuple(x.shape)}.")
        key = jax.random.wrap_key_data(self.dropout_key[...]) if self.dropout_on else None
        h = self.embed(x)
        if self.pos is not None:
            h = h + self.pos[...].astype(h.dtype)
        for i, block in enumerate(self.blocks):
            h = block(h, self.dropout, None if key is None else jax.random.fold_in(key, i))
        return self.out(self.out_norm(h))


def with_dropout(module: nnx.Module, key: Array | None) -> nnx.Module:
    """A copy of ``module`` whose Transformers apply dropout with keys derived from ``key``.

    Every :class:`Transformer` inside ``module`` (in graph order) gets ``fold_in(key, i)``;
    ``key=None`` gives a copy with dropout off. ``module`` itself is not changed. Call it
    inside the jitted loss with a fresh key each step.

    Args:
      module: any NNX module, e.g. a :class:`~survae_jax.Flow`.
      key: a PRNG key, or ``None``.

    Returns:
      The copy (parameters shared by value, so gradients with respect to the copy's
      parameters flow back to the arguments of the jitted function).

    Shapes: the copy maps the same shapes as ``module`` (a Transformer ``(B, N, d_in) ->
    (B, N, d_out)``); ``key`` is one PRNG key (shape ``()`` typed key).

    Errors of ``nnx.clone`` or of ``jax.random.fold_in`` (a ``key`` that is not a PRNG key) pass
    through.

    Source: dropout, Srivastava et al. (2014), as used in the Transformer (Vaswani et al., 2017).
    """
    copy = nnx.clone(module)
    i = 0
    for _, node in nnx.iter_graph(copy):
        if isinstance(node, Transformer):
            if key is None:
                node.dropout_on = False
                node.dropout_key.set_value(jnp.zeros_like(node.dropout_key[...]))
            else:
                node.dropout_on = True
                k, lead = jax.random.fold_in(key, i), node.dropout_key[...].shape[:-1]
                if lead:  # a Transformer stacked by a Scan: one key per block
                    k = jax.random.split(k, lead)
                node.dropout_key.set_value(jax.random.key_data(k))
            i += 1
    return copy
