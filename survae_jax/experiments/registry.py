"""``Experiment``: what the CLI and the runner need to know about one family of models.

An experiment is a config dataclass plus a few builders (docs/design.md: "an experiment is a small
config plus a model builder, run by the one training loop and the one CLI"). The CLI adds the
experiment's own flags, the runner (:mod:`survae_jax.experiments.runner`) trains, evaluates,
plots and writes the run folder the same way for every experiment.

To add one: subclass :class:`Experiment` in ``survae_jax/experiments/<family>.py``, set
``name`` and ``config_cls``, implement :meth:`load_data` and :meth:`build_model` (and override
whatever else differs), create the instance as the module's ``EXPERIMENT``, and add one line
``"<name>": "survae_jax.experiments.<family>"`` to ``EXPERIMENT_MODULES`` in
``survae_jax/experiments/__init__.py``. Then ``survae-jax train <name> ...`` works.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, ClassVar

import jax
import numpy as np
import optax
from flax import nnx

from survae_jax import metrics
from survae_jax.training import LossFn, TrainConfig, nll_loss


def num_parameters(model: nnx.Module) -> int:
    """The number of trained scalars (``nnx.Param`` entries) of ``model``, a Python ``int``.

    A parameter of shape ``(200, 100)`` counts 20,000; non-trained state (ActNorm flags, rng
    counters) is not counted.

    Source: this library (the ``num_parameters`` metric of each run).
    """
    return int(sum(np.size(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))


class Experiment:
    """Base class of an experiment: config, data, model, optimizer, loss, metrics, figures.

    The config dataclass (``config_cls``) must have the fields ``steps``, ``batch_size``,
    ``lr``, ``seed``, ``log_every``, ``checkpoint_every``; its other fields are the
    experiment's own. A CLI flag ``--foo-bar`` whose destination ``foo_bar`` is a config field
    sets that field; flags left at ``None`` keep the dataclass default.

    Data shapes are the subclass's: ``(N, 2)`` points for toy2d, ``(N, 50, 2)`` clouds for
    spatial_mnist; metrics are in nats (and PPLL for point clouds).

    Raises: the base methods ``load_data``, ``build_model`` and ``sample`` raise
    ``NotImplementedError`` until a subclass overrides them; ``config_from_args`` /
    ``config_from_dict`` raise ``ValueError`` for values or fields the config rejects.

    Source: this library (docs/design.md: "an experiment is a small config plus a model builder, run
    by the one training loop and the one CLI").
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_cls: ClassVar[type]

    # ----------------------------------------------------------------- config
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the experiment's own flags (e.g. ``--dataset``, ``--model``); default none."""

    def common_flag_help(self) -> dict[str, str]:
        """Help texts of the common ``train`` flags, keyed by destination (``steps``, ``lr``...).

        Default: the name and the config dataclass's default of ``steps``, ``batch_size``,
        ``lr``, ``log_every``, ``checkpoint_every``. Override where a default is not a plain
        number (e.g. a schedule counted in epochs).
        """
        d = self.config_cls()

        def default(name: str, fmt: str = ",") -> str:
            value = getattr(d, name, None)
            return "" if value is None else f" (default {value:{fmt}})"

        return {
            "steps": "optimizer steps" + default("steps"),
            "batch_size": "examples per optimizer step" + default("batch_size"),
            "lr": "Adam learning rate" + default("lr", "g"),
            "log_every": "steps per compiled block / progress update" + default("log_every"),
            "checkpoint_every": "steps between checkpoints, 0: only at the end" + default("checkpoint_every"),
        }

    def notes(self, config: Any, args: argparse.Namespace) -> list[str]:
        """One-line notes printed on stderr before training (e.g. a long schedule); default none."""
        return []

    def config_from_args(self, args: argparse.Namespace) -> Any:
        """The config from parsed flags: fields named like a non-``None`` flag are set from it.

        Raises:
          ValueError: a field value the config rejects (its ``__post_init__``).
        """
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        given = {k: v for k, v in vars(args).items() if k in names and v is not None}
        return self.config_cls(**given)

    def config_from_dict(self, d: dict) -> Any:
        """Rebuild the config from ``config.json`` (lists become tuples)."""
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(d) - names - {"experiment"})
        if unknown:
            raise ValueError(f"{self.name}: config has unknown fields {unknown}.")
        return self.config_cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        )

    def run_name(self, config: Any) -> str:
        """Default run folder name under ``runs/``."""
        return f"{self.name}_s{config.seed}"

    def train_config(self, config: Any, *, progress: bool = True) -> TrainConfig:
        """The :class:`~survae_jax.training.TrainConfig` of a config."""
        return TrainConfig(
            steps=config.steps, batch_size=config.batch_size, seed=config.seed,
            log_every=config.log_every, checkpoint_every=config.checkpoint_every, progress=progress,
        )

    # ----------------------------------------------------------------- builders
    def load_data(self, config: Any) -> tuple[Any, Any]:
        """``(train, test)`` arrays (or pytrees of arrays with a common first axis)."""
        raise NotImplementedError

    def load_valid_data(self, config: Any) -> Any:
        """The validation set of :func:`~survae_jax.train` (``valid_data``: early stopping and the
        best validated parameters, with ``train_config``'s ``valid_every``/``patience``), like the
        training data; default ``None``: no validation."""
        return None

    def build_model(self, config: Any) -> nnx.Module:
        """A fresh model, its initial weights drawn from ``config.seed``."""
        raise NotImplementedError

    def optimizer(self, config: Any) -> optax.GradientTransformation:
        """Default: ``optax.adam(config.lr)`` (Appendix I.1)."""
        return optax.adam(config.lr)

    def loss_fn(self, config: Any) -> LossFn:
        """Default: mean negative log-likelihood (or negative ELBO) in nats."""
        return nll_loss

    def init_fn(self, config: Any) -> Callable | str | None:
        """Data-dependent init for :func:`~survae_jax.train` (default ``"auto"``: ActNorm)."""
        return "auto"

    def eval_batch_size(self, config: Any) -> int:
        """Test examples per batch of :func:`~survae_jax.evaluation.evaluate` (default 8,192;
        image models use fewer, their activations are large)."""
        return 8192

    def log_prob_fn(self, config: Any) -> Callable | None:
        """Per-example test log-likelihood ``fn(model, batch, key) -> (B,)``; default ``log_prob``."""
        return None

    # ----------------------------------------------------------------- outputs
    def test_metrics(self, config: Any, log_likelihood: np.ndarray, model: nnx.Module, *,
                     iwbo_samples: int | None = None) -> dict:
        """Metrics of the test log-likelihoods ``(N,)`` nats: ``test_nats``, ``test_exact``,
        ``num_parameters``. With ``iwbo_samples=K`` (``survae-jax eval --iwbo K``) the
        log-likelihoods are IWBOs with ``K`` samples: an experiment reports them as its IWBO and
        computes no bound of its own."""
        return {"test_nats": metrics.nats(log_likelihood), "test_exact": bool(getattr(model, "exact", True)),
                "num_parameters": num_parameters(model)}

    def plot(self, model: nnx.Module, config: Any, test_data: Any, run_dir: str, key) -> list[str]:
        """Write the run's figures into ``run_dir``; return their paths. Default: none."""
        return []

    def sample(self, model: nnx.Module, config: Any, path: str, key, num_samples: int) -> str:
        """Draw samples, save them beside the figure as ``<path stem>.npy`` (``np.save``) and write
        the figure to ``path``; return the figure's path."""
        raise NotImplementedError(f"{self.name}: sampling figures are not implemented.")
