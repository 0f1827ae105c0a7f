"""The paper's experiments, one module per family, found by name through a registry.

``EXPERIMENT_MODULES`` maps an experiment's CLI name to the module that defines it as
``EXPERIMENT`` (an :class:`~survae_jax.experiments.registry.Experiment`). Modules are imported
on demand, so one family's missing optional data never breaks another. To add a family: write
its module and add one line here (see :mod:`survae_jax.experiments.registry`).
"""

from __future__ import annotations

import importlib

from survae_jax.experiments.registry import Experiment

EXPERIMENT_MODULES: dict[str, str] = {
    "toy2d": "survae_jax.experiments.toy2d",
    "spatial_mnist": "survae_jax.experiments.point_cloud",
    "image": "survae_jax.experiments.image",
    "vae": "survae_jax.experiments.vae",
    "tabular": "survae_jax.experiments.tabular",
}


def get_experiment(name: str) -> Experiment:
    """The registered experiment called ``name`` (a key of ``EXPERIMENT_MODULES``).

    Args:
      name: the CLI name, e.g. ``"toy2d"`` or ``"spatial_mnist"``.

    Returns:
      The module's ``EXPERIMENT`` instance (e.g. toy 2-D models on ``(N, 2)`` data, point-cloud
      models on ``(N, 50, 2)`` clouds).

    Source: this library (docs/design.md: an experiment is a small config plus a model builder, run by
    the one training loop and the one CLI).

    Raises:
      ValueError: an unknown name, or a module that fails to import or defines no ``EXPERIMENT``.
    """
    if name not in EXPERIMENT_MODULES:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENT_MODULES)}.")
    try:
        module = importlib.import_module(EXPERIMENT_MODULES[name])
    except ImportError as e:
        raise ValueError(f"experiment {name!r} is not available: {type(e).__name__}: {e}") from e
    exp = getattr(module, "EXPERIMENT", None)
    if not isinstance(exp, Experiment):
        raise ValueError(f"experiment {name!r}: module {module.__name__} defines no EXPERIMENT.")
    return exp


__all__ = ["EXPERIMENT_MODULES", "Experiment", "get_experiment"]
