"""``Scan``: a deep chain of blocks that share one structure, compiled once however deep."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from survae_jax.functional.scan import scan_forward, scan_inverse
from survae_jax.transforms.base import Transform


def _stack(states):
    """One state from ``L`` states of one structure: every array gains a leading axis ``L``."""
    return jax.tree.map(lambda *a: jnp.stack(a), *states)


class Scan(Transform):
    """``L`` blocks with the same structure as one layer: block ``l``'s parameters are stacked at
    index ``l`` of one module and the chain runs as a ``jax.lax.scan``.

    The maths is that of ``Compose(blocks)``: ``z = b_{L-1}(... b_0(x))``, ``V = sum_l V_l``, block
    ``l`` drawing with ``split(key, L)[l]``; ``inverse`` runs ``L - 1`` first. What changes is the
    program: one block is traced and compiled, not ``L``, so a 32-step flow compiles about as fast
    as a one-step flow (an unrolled chain lets XLA fuse across blocks; for heavy blocks the scan
    costs little at run time: measure with ``make bench``).

    Args:
      blocks: ``L >= 1`` layers (usually ``Compose`` of one flow step) built alike: the same classes,
        array shapes and settings, differing only in array values (weights, fixed permutations).
        Each block must map its input to the same shape and dtype. Blocks are copied into the
        stack; a module shared between blocks is not shared in the stack.
      remat: recompute each block's intermediates in the backward pass (``jax.checkpoint`` of the
        scan body) instead of storing them for all ``L`` blocks: a gradient keeps ``L`` block
        inputs and one block's intermediates, and runs each block's forward pass twice. Values
        and gradients are the same. On XLA:CPU, for the Transformer point-cloud flows'
        training step, it was faster at 16 and 32 steps (1.36x, about 2x) and slower at 8
        (0.78x); after their dropout and GELU kept less, faster at 4 (1.09x) and level at 8
        (``results/speed.md``). No effect without a gradient.

    Raises:
      ValueError: no blocks, or a block whose structure differs from ``blocks[0]``'s (named).
      TypeError: a block that is not a ``Transform``.

    The stacked module is ``self.block`` (every array with a leading axis ``L``);
    :meth:`unstack` gives the blocks back, :meth:`restack` writes blocks into the stack.
    Source: the ``lax.scan`` over layers of this library's design note (docs/design.md).
    """

    functional = (scan_forward, scan_inverse)

    def __init__(self, blocks: Sequence[Transform], *, remat: bool = False):
        blocks = list(blocks)
        if not blocks:
            raise ValueError("Scan: expected at least one block, got none.")
        for i, b in enumerate(blocks):
            if not isinstance(b, Transform):
                raise TypeError(f"Scan: blocks[{i}] must be a Transform, got {type(b).__name__}.")
        graphdef, first = nnx.split(blocks[0])
        states = [first]
        for i, b in enumerate(blocks[1:], 1):
            g, s = nnx.split(b)
            shapes = jax.tree.map(lambda a: (a.shape, a.dtype), s)
            if g != graphdef or shapes != jax.tree.map(lambda a: (a.shape, a.dtype), first):
                raise ValueError(f"Scan: every block must have the structure of blocks[0] (the same layers, array "
                                 f"shapes and settings); blocks[{i}] ({type(b).__name__}) differs.")
            states.append(s)
        self.block = nnx.merge(graphdef, _stack(states))
        self.num_blocks = len(blocks)
        self.remat = bool(remat)

    @property
    def stochastic_forward(self) -> bool:  # type: ignore[override]
        return self.block.stochastic_forward

    @property
    def stochastic_inverse(self) -> bool:  # type: ignore[override]
        return self.block.stochastic_inverse

    @property
    def exact(self) -> bool:
        return self.block.exact

    def unstack(self) -> list[Transform]:
        """The ``L`` blocks as separate modules (copies of the stack's values)."""
        graphdef, state = nnx.split(self.block)
        return [nnx.merge(graphdef, jax.tree.map(lambda a: a[i], state)) for i in range(self.num_blocks)]

    def restack(self, blocks: Sequence[Transform]) -> None:
        """Write the values of ``blocks`` (as from :meth:`unstack`) into the stack, in place."""
        blocks = list(blocks)
        graphdef = nnx.graphdef(self.block)
        if len(blocks) != self.num_blocks or any(nnx.graphdef(b) != graphdef for b in blocks):
            raise ValueError(f"Scan.restack: expected {self.num_blocks} blocks of the stack's structure "
                             f"(as from unstack()), got {len(blocks)}.")
        nnx.update(self.block, _stack([nnx.state(b) for b in blocks]))

    def functional_args(self):
        return {"block": self.block, "num_blocks": self.num_blocks, "name": self.name, "remat": self.remat}
