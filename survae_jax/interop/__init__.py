"""Bridges to the rest of the JAX ecosystem: distrax, TFP (through distrax) and numpyro.

* :func:`to_distrax` (``flow -> distrax.Distribution``): any flow; exact flows give the exact
  ``log_prob``, a flow with bounds says so (``.exact = False``, ``.inexact`` names the layers)
  and its ``log_prob`` is a one-sample ELBO drawn with a key.
* :func:`to_numpyro` (``flow -> numpyro.distributions.Distribution``): exact flows only, as a
  prior, a likelihood or the base of a guide.
* :func:`from_distrax` (``bijector -> survae_jax Bijection``): a distrax or TFP bijector as a
  layer of a ``Flow``, with the direction converted (distrax's ``forward`` is latent -> data,
  survae_jax's is data -> latent).

distrax and numpyro are imported only when one of these is called (numpyro is the optional
extra ``pip install 'survae-jax[interop]'``), so ``import survae_jax`` and ``import
survae_jax.interop`` never need them. The classes (``DistraxFlow``, ``NumpyroFlow``,
``DistraxBijection``) load the same way on first access; they live in the modules
``distrax_flow``, ``numpyro_flow`` and ``distrax_bijection`` (named apart from the functions,
which a submodule import would otherwise overwrite).
"""

from __future__ import annotations

from typing import Any

from survae_jax.interop._common import require

__all__ = ["to_distrax", "from_distrax", "to_numpyro", "DistraxFlow", "NumpyroFlow", "DistraxBijection"]

_CLASSES = {
    "DistraxFlow": ("distrax", "survae_jax.interop.distrax_flow"),
    "NumpyroFlow": ("numpyro", "survae_jax.interop.numpyro_flow"),
    "DistraxBijection": ("distrax", "survae_jax.interop.distrax_bijection"),
}


def _load(name: str, who: str):
    needs, module = _CLASSES[name]
    require(needs, who, "interop")
    return getattr(require(module, who, "interop"), name)


def to_distrax(flow, *, key=None, context=None):
    """``flow`` as a ``distrax.Distribution`` (:class:`~survae_jax.interop.distrax_flow.DistraxFlow`).

    ``log_prob(value)`` for ``value`` of shape ``sample_shape + event_shape``, ``sample(seed=,
    sample_shape=)``, ``sample_and_log_prob``. Exact when ``flow.exact``; otherwise ``log_prob``
    is a one-sample ELBO that uses ``log_prob(value, key=k)`` or the ``key`` given here (reused on
    every call) and raises ``ValueError`` with neither. ``context``: the context of one example
    for a conditional flow (required then), giving ``p(x | context)``.
    """
    return _load("DistraxFlow", "to_distrax")(flow, key=key, context=context)


def to_numpyro(flow, *, context=None, support=None, validate_args=None):
    """An exact ``flow`` as a ``numpyro.distributions.Distribution``
    (:class:`~survae_jax.interop.numpyro_flow.NumpyroFlow`); an inexact flow raises ``ValueError``
    naming its inexact layers. ``support`` defaults to ``real`` on every event axis."""
    cls = _load("NumpyroFlow", "to_numpyro")
    return cls(flow, context=context, support=support, validate_args=validate_args)


def from_distrax(bijector, params: Any = None):
    """A distrax or TFP bijector as a survae_jax ``Bijection``
    (:class:`~survae_jax.interop.distrax_bijection.DistraxBijection`): ``forward(x) =
    bijector.inverse_and_log_det(x)`` (log-det summed over the event), ``inverse(z) =
    bijector.forward(z)``. ``from_distrax(make, params)``: ``params`` trainable, ``make(params)``
    the bijector."""
    return _load("DistraxBijection", "from_distrax")(bijector, params)


def __getattr__(name: str):
    if name in _CLASSES:
        return _load(name, f"survae_jax.interop.{name}")
    raise AttributeError(f"module 'survae_jax.interop' has no attribute {name!r}")
