"""Point-cloud flows on SpatialMNIST (Appendix I.2): PermuteFlow and SortFlow.

Both model a set of ``N = 50`` points in the plane, ``x`` of shape ``(B, 50, 2)``, with a
density that does not depend on the order of the points.

* **PermuteFlow**: a ``StochasticPermutation`` of the points, then ``num_steps`` steps of
  ``[ActNorm, affine coupling across the two coordinates ((B, 50, 1) | (B, 50, 1)), Reverse of
  the two coordinates, affine coupling across the two halves of the points ((B, 25, 2) |
  (B, 25, 2)), StochasticPermutation]``; Transformer conditioners without positional
  encoding. Its ``log_prob`` is a one-sample ELBO (Appendix G: the permutation has V = 0 and
  makes the bound tight only if the rest is exchangeable); evaluated with the ELBO and the IWBO.
* **SortFlow**: a ``SortSurjection`` (points ordered by x, then y; V = -log 50!, exact), then the
  same steps with fixed permutations (``Permute``, drawn once from the seed) in place of the
  stochastic ones and a learned positional encoding in the Transformers. Exact likelihood.

Before the steps both map the coordinates from ``[0, 28]`` to ``[-0.5, 0.5]`` with a fixed
``Scale(1/28)`` and ``Shift(-0.5)`` (as the reference code; V = -100 log 28 nats, counted).
The ``Reverse`` acts on the coordinates (as the reference code's ``Reverse(D, dim=1)``), so that
successive coordinate couplings transform x and y in turn; reversing the points would be
undone by the permutation that ends each step anyway.

Metric: per-point log-likelihood ``PPLL = log p(x) / 50`` nats (higher is better). The paper
(500 epochs, GPU): PermuteFlow ELBO -5.32, IWBO(k=1000) -5.30; SortFlow exact -5.53.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from survae_jax import metrics
from survae_jax.data.spatial_mnist import load_spatial_mnist
from survae_jax.distributions.standard import StandardNormal
from survae_jax.experiments.flags import dropout_rate, positive_int
from survae_jax.experiments.registry import Experiment, num_parameters
from survae_jax.flow import Flow
from survae_jax.nn.transformer import Transformer, with_dropout
from survae_jax.evaluation import evaluate
from survae_jax.training import TrainConfig
from survae_jax.transforms.bijections.actnorm import ActNorm
from survae_jax.functional.elementwise import Affine
from survae_jax.functional.spline import RationalQuadraticSpline
from survae_jax.transforms.bijections.coupling import Coupling
from survae_jax.transforms.bijections.permutation import Permute, Reverse
from survae_jax.transforms.compose import Compose
from survae_jax.transforms.scan import Scan
from survae_jax.transforms.bijections.scale_shift import Scale, Shift
from survae_jax.transforms.stochastic.permutation import StochasticPermutation
from survae_jax.transforms.surjections.sort import SortSurjection

NUM_POINTS = 50
MODELS = ("permuteflow", "sortflow")
COUPLINGS = ("affine", "spline")
#: The spline couplings' bins and tail bound (their inputs follow an ActNorm: about unit scale).
SPLINE_BINS, SPLINE_TAIL_BOUND = 8, 4.0
PAPER_PPLL = {"permuteflow": {"elbo": -5.32, "iwbo": -5.30}, "sortflow": {"exact": -5.53}}
PAPER_DROPOUT = {"permuteflow": 0.1, "sortflow": 0.2}


@dataclasses.dataclass(frozen=True)
class PointCloudConfig:
    """Model, schedule and evaluation of one SpatialMNIST run (defaults: the paper's, I.2).

    Attributes:
      model: ``"permuteflow"`` or ``"sortflow"``.
      num_steps: flow steps (32 in the paper), one rematerialised ``Scan(..., remat=True)``.
      num_blocks, d_model, num_heads, d_ff: the Transformer conditioners (2, 64, 8, 256).
      dropout: Transformer dropout during training; ``None``: the paper's tuned value
        (0.1 PermuteFlow, 0.2 SortFlow).
      coupling: ``"affine"`` (the paper's) or ``"spline"``: rational-quadratic spline couplings
        (``SPLINE_BINS`` bins on ``[-SPLINE_TAIL_BOUND, SPLINE_TAIL_BOUND]``, linear tails;
        Durkan et al. 2019) in place of the affine ones, the same Transformers with wider outputs.
      scale_fn: the affine couplings' scale function (:class:`~survae_jax.functional.Affine`);
        softplus as the reference code's default (another value with spline couplings is an error).
      epochs, batch_size: 500 epochs of batch 128 (390 steps per epoch on 50,000 clouds).
      steps: optimizer steps; ``None``: ``epochs`` epochs (the CLI's ``--steps`` overrides).
      lr: Adam's learning rate, 1e-3.
      warmup_steps: linear warm-up of the learning rate over the first 2,000 steps.
      decay_per_epoch: learning-rate factor per epoch, 0.995 (both act together, as in the
        reference code: ``lr(t) = lr * min(1, t / warmup) * decay ** floor(t / steps_per_epoch)``).
      iwbo_samples: ``k`` of the IWBO for PermuteFlow (1,000 in the paper).
      iwbo_examples: test clouds the IWBO is computed on (``None``: all 10,000).
      iwbo_chunk: importance samples per vectorised chunk (memory).
      seed: model init, fixed permutations, batches and evaluation keys.
      data_seed: the SpatialMNIST construction seed.
      log_every, checkpoint_every: steps per compiled block / between checkpoints (an epoch).

    Data: clouds ``(B, 50, 2)``; metrics in nats and PPLL.

    Raises:
      ValueError: ``model`` not ``"permuteflow"`` or ``"sortflow"``, ``coupling`` not
        ``"affine"`` or ``"spline"``.

    Source: Nielsen et al. 2020, Appendix I.2 (architecture, schedule, dropout, IWBO k = 1000);
    Adam from Kingma & Ba 2015.
    """

    model: str = "sortflow"
    num_steps: int = 32
    num_blocks: int = 2
    d_model: int = 64
    num_heads: int = 8
    d_ff: int = 256
    dropout: float | None = None
    coupling: str = "affine"
    scale_fn: str = "softplus"
    epochs: int = 500
    batch_size: int = 128
    steps: int | None = None
    lr: float = 1e-3
    warmup_steps: int = 2000
    decay_per_epoch: float = 0.995
    iwbo_samples: int = 1000
    iwbo_examples: int | None = None
    iwbo_chunk: int = 50
    seed: int = 0
    data_seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 390

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"PointCloudConfig: model must be one of {MODELS}, got {self.model!r}.")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"PointCloudConfig: coupling must be one of {COUPLINGS}, got {self.coupling!r}.")
        if self.coupling == "spline" and self.scale_fn != "softplus":
            raise ValueError(f"PointCloudConfig: scale_fn={self.scale_fn!r} has no effect with spline couplings "
                             "(it is the affine couplings' scale function).")

    @property
    def family(self):
        """The couplings' elementwise family: ``Affine(scale_fn)`` or the rational-quadratic spline."""
        if self.coupling == "spline":
            return RationalQuadraticSpline(num_bins=SPLINE_BINS, tail_bound=SPLINE_TAIL_BOUND)
        return Affine(self.scale_fn)

    @property
    def dropout_rate(self) -> float:
        """The dropout used in training (the paper's value when ``dropout is None``)."""
        return PAPER_DROPOUT[self.model] if self.dropout is None else float(self.dropout)


    @property
    def num_train_steps(self) -> int:
        """``steps``, or ``epochs`` epochs of the 50,000 training clouds."""
        return self.epochs * steps_per_epoch(self) if self.steps is None else int(self.steps)


def paper_config(model: str) -> PointCloudConfig:
    """The paper's full configuration (Appendix I.2): 32 steps, 500 epochs; about 40 GPU hours.

    Args:
      model: ``"permuteflow"`` or ``"sortflow"`` (models clouds ``(B, 50, 2)``).

    Raises:
      ValueError: an unknown ``model``.

    Source: Nielsen et al. 2020, Appendix I.2.
    """
    return PointCloudConfig(model=model)


def cpu_config(model: str) -> PointCloudConfig:
    """A reduced schedule for a 2-core CPU (about 15 minutes per model on 2 cores, measured).

    4 steps of couplings whose Transformers have 1 block, d_model 32, 4 heads, d_ff 64; no
    dropout (too short a schedule to overfit); 16 epochs with a 300-step warm-up; PermuteFlow's
    IWBO with k = 1000 on the first 250 test clouds.

    Raises:
      ValueError: an unknown ``model``.

    Source: this library (a reduced version of Nielsen et al. 2020, Appendix I.2, sized for
    the CPU; the timing is measured, not from the paper).
    """
    return PointCloudConfig(model=model, num_steps=4, num_blocks=1, d_model=32, num_heads=4, d_ff=64,
                            dropout=0.0, epochs=16, warmup_steps=300,
                            iwbo_samples=1000, iwbo_examples=250, iwbo_chunk=50)


PRESETS = {"paper": paper_config, "cpu": cpu_config}
# Clouds per compiled call in evaluation (cloud evaluations, counting IWBO samples): large enough
# that a call costs far more than its dispatch, small enough that the attention's (B, 8, 50, 50)
# weights (8 MB at 100) stay in cache: on this 2-core CPU 100 took about 10 % less time than 500
# (PermuteFlow-8 ELBO of 400 clouds 0.63 vs 0.69 s, IWBO(k = 10) 6.46 vs 7.15 s); 20 was slower.
EVAL_BATCH = 100



def _transformer(cfg: PointCloudConfig, d_in: int, d_out: int, num_points: int | None, rngs):
    return Transformer(d_in, d_out, num_blocks=cfg.num_blocks, d_model=cfg.d_model,
                       num_heads=cfg.num_heads, d_ff=cfg.d_ff, dropout=cfg.dropout_rate,
                       num_points=num_points, rngs=rngs)


def build_model(cfg: PointCloudConfig, *, key: jax.Array | None = None) -> Flow:
    """The PermuteFlow or SortFlow of ``cfg`` over ``(B, 50, 2)`` point clouds.

    Args:
      cfg: the configuration (``cfg.model`` picks the flow).
      key: initialisation key (parameters and SortFlow's fixed permutations); default
        ``key(cfg.seed)``.

    Returns:
      A :class:`~survae_jax.Flow` with a ``StandardNormal((50, 2))`` base. Its ActNorms are not
      initialised yet (``initialize_actnorm``, which the training loop runs). Forward maps
      data ``(B, 50, 2)`` in ``[0, 28)^2`` to latent ``(B, 50, 2)``.

    Source: Nielsen et al. 2020, Appendix I.2 (PermuteFlow, SortFlow; Transformer conditioners
    of Vaswani et al. 2017 without/with positional encoding).
    """
    key = jax.random.key(cfg.seed) if key is None else key
    k_net, k_perm = jax.random.split(key)
    rngs = nnx.Rngs(k_net)
    sort = cfg.model == "sortflow"
    half, p = NUM_POINTS // 2, cfg.family.num_params
    layers = [Scale(1.0 / 28.0), Shift(-0.5)]
    layers.append(SortSurjection(axis=1, by=0) if sort else StochasticPermutation(axis=1))
    steps = [Compose([
        ActNorm(2, axis=-1),
        Coupling(_transformer(cfg, 1, p, NUM_POINTS if sort else None, rngs), cfg.family, axis=-1),
        Reverse(2, axis=-1),
        Coupling(_transformer(cfg, 2, 2 * p, half if sort else None, rngs), cfg.family, axis=1),
        Permute(axis=1, size=NUM_POINTS, rngs=nnx.Rngs(jax.random.fold_in(k_perm, i))) if sort
        else StochasticPermutation(axis=1),
    ]) for i in range(cfg.num_steps)]
    # one step compiled, not num_steps (docs/design.md, "Deep chains"); rematerialised: on XLA:CPU
    # faster at 4, 16 and 32 steps, level at 8 (results/speed.md, "Rematerialised scan")
    layers.append(Scan(steps, remat=True))
    return Flow(StandardNormal((NUM_POINTS, 2)), layers)


def steps_per_epoch(cfg: PointCloudConfig, num_train: int = 50_000) -> int:
    """Optimizer steps in one epoch (the last incomplete batch is dropped): ``num_train // B``.

    390 for 50,000 clouds in batches of 128.

    Raises:
      ZeroDivisionError: ``cfg.batch_size == 0``.

    Source: this library (the epoch of :func:`~survae_jax.training.train`).
    """
    return num_train // cfg.batch_size


def learning_rate_schedule(cfg: PointCloudConfig, num_train: int = 50_000) -> optax.Schedule:
    """``lr(t) = lr * min(1, (t + 1) / warmup) * decay ** floor(t / steps_per_epoch)`` (I.2).

    Returns an optax schedule: step ``t`` (a scalar ``()``) -> learning rate ``()`` float32.

    Raises:
      ZeroDivisionError: ``cfg.batch_size == 0`` (see :func:`steps_per_epoch`).

    Source: Nielsen et al. 2020, Appendix I.2 (warm-up and per-epoch decay, as in the
    reference code).
    """
    per_epoch = steps_per_epoch(cfg, num_train)
    warmup = max(int(cfg.warmup_steps), 1)

    def schedule(t):
        t = jnp.asarray(t, jnp.float32)
        return (cfg.lr * jnp.minimum(1.0, (t + 1.0) / warmup)
                * cfg.decay_per_epoch ** jnp.floor(t / per_epoch))

    return schedule


def make_optimizer(cfg: PointCloudConfig, num_train: int = 50_000) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) with :func:`learning_rate_schedule` (scalar step -> lr ``()``).

    Raises:
      ZeroDivisionError: ``cfg.batch_size == 0`` (see :func:`steps_per_epoch`).

    Source: Nielsen et al. 2020, Appendix I.2.
    """
    return optax.adam(learning_rate_schedule(cfg, num_train))


def loss_fn(model: Flow, batch: jax.Array, key: jax.Array) -> jax.Array:
    """Training loss: ``-mean log p(x)`` in nats (negative ELBO for PermuteFlow), with dropout.

    Dropout is switched on in a copy of the model (:func:`~survae_jax.nn.with_dropout`), with a
    key of its own; the model passed in is not changed.

    Args:
      model: the flow; batch: clouds ``(B, 50, 2)``; key: PRNG key (split for dropout and flow).

    Returns:
      A scalar, nats per cloud.

    The flow's errors pass through (``ValueError`` for a badly shaped batch).

    Source: Nielsen et al. 2020, Appendix I.2 (training with Transformer dropout); the ELBO of
    Eq. 4.
    """
    k_drop, k_flow = jax.random.split(key)
    return -jnp.mean(with_dropout(model, k_drop).log_prob(batch, key=k_flow))


def ppll(log_prob: jax.Array | np.ndarray) -> float:
    """Per-point log-likelihood: the mean of ``log p(x) / 50`` in nats.

    Args:
      log_prob: ``(N,)`` nats per cloud of 50 points.

    Returns a Python float (higher is better; paper: SortFlow -5.53).

    Unchecked: an empty array gives NaN with a warning; use
    :func:`survae_jax.metrics.per_point_log_likelihood` for a checked version.

    Source: Nielsen et al. 2020, Appendix I.2 (PPLL).
    """
    return float(np.mean(np.asarray(log_prob)) / NUM_POINTS)


@functools.lru_cache(maxsize=16)  # the same function for the same (k, chunk): evaluate's cache hits
def iwbo_fn(num_samples: int, chunk_size: int):
    """A ``log_prob_fn(model, batch, key)`` for :func:`survae_jax.evaluation.evaluate`: the IWBO.

    The function maps a batch ``(B, 50, 2)`` to the IWBO ``(B,)`` in nats,
    ``logsumexp_k ELBO_k - log K`` with ``K = num_samples`` one-sample ELBOs. The ``K`` ELBOs of
    a chunk of ``chunk_size`` samples come from one ``log_prob`` call on the batch repeated
    ``chunk_size`` times, ``(chunk_size * B, 50, 2)`` (every row draws its own permutations, so
    the rows are independent samples): the Transformers see one large batch instead of a
    ``vmap`` over keys; the chunks run one after the other (``lax.map``).

    Raises:
      ValueError: ``chunk_size`` that is not a positive divisor of ``num_samples``.

    Source: Burda et al. 2016 (IWBO); Nielsen et al. 2020, Appendix I.2 (k = 1000).
    """
    num_samples, chunk = int(num_samples), int(chunk_size)
    if num_samples < 1 or chunk < 1 or num_samples % chunk:
        raise ValueError(f"iwbo_fn: chunk_size={chunk_size} must be a positive divisor of "
                         f"num_samples={num_samples}.")

    def fn(model, batch, key):
        b = batch.shape[0]
        tiled = jnp.broadcast_to(batch, (chunk, *batch.shape)).reshape(chunk * b, *batch.shape[1:])

        def one(k):
            return model.log_prob(tiled, key=k).reshape(chunk, b)

        keys = jax.random.split(key, num_samples // chunk)
        log_w = one(keys[0]) if num_samples == chunk else jax.lax.map(one, keys).reshape(num_samples, b)
        return jax.nn.logsumexp(log_w, axis=0) - np.log(num_samples).astype(np.float32)

    return fn


def iwbo_metrics(flow: Flow, clouds, cfg: PointCloudConfig, *, key: jax.Array, elbo=None) -> dict:
    """PermuteFlow's IWBO (``k = cfg.iwbo_samples``) and ELBO on the first ``cfg.iwbo_examples`` clouds, PPLL.

    Args:
      flow: the trained flow; clouds: test clouds ``(N, 50, 2)``; cfg: the config; key: PRNG key.
      elbo: the one-sample ELBOs ``(N,)`` of ``clouds`` already computed (the test evaluation's):
        their first ``iwbo_examples`` are used and no ELBO is computed again; ``None``: computed.

    Returns:
      ``{"test_iwbo_ppll", "test_elbo_ppll_iwbo_subset", "iwbo_samples", "iwbo_examples"}``.

    Source: Burda et al. 2016 (IWBO); Nielsen et al. 2020, Appendix I.2.
    """
    m = len(clouds) if cfg.iwbo_examples is None else min(int(cfg.iwbo_examples), len(clouds))
    x, chunk = np.asarray(clouds[:m]), _iwbo_chunk(cfg)
    k_elbo, k_iwbo = jax.random.split(key)
    if elbo is None:
        elbo = evaluate(flow, x, batch_size=EVAL_BATCH, key=k_elbo)
    iw = evaluate(flow, x, batch_size=max(1, EVAL_BATCH // chunk), key=k_iwbo,
                  log_prob_fn=iwbo_fn(cfg.iwbo_samples, chunk))
    return {"test_iwbo_ppll": ppll(iw), "test_elbo_ppll_iwbo_subset": ppll(np.asarray(elbo)[:m]),
            "iwbo_samples": int(cfg.iwbo_samples), "iwbo_examples": m}


def _iwbo_chunk(cfg: PointCloudConfig) -> int:
    """The largest divisor of ``iwbo_samples`` that is at most ``iwbo_chunk``."""
    k = int(cfg.iwbo_samples)
    return max(d for d in range(1, min(int(cfg.iwbo_chunk), k) + 1) if k % d == 0)


def plot_point_clouds(rows: dict, path, *, per_row: int = 8) -> str:
    """Save a grid of point clouds, one row per entry of ``rows`` (name -> ``(n, 50, 2)``); return ``path``.

    Each row shows its first ``per_row`` clouds on ``[0, 28]^2``.

    Raises:
      IndexError: a row with fewer than ``per_row`` clouds.
      OSError: ``path`` cannot be written.

    Source: this library (sample figures as in Nielsen et al. 2020, Appendix I.2).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.4 * per_row, 1.5 * len(rows)))
    axes = fig.subplots(len(rows), per_row, squeeze=False)
    for r, (name, clouds) in enumerate(rows.items()):
        for c in range(per_row):
            ax = axes[r][c]
            ax.scatter(clouds[c, :, 0], clouds[c, :, 1], s=4)
            ax.set(xlim=(0, 28), ylim=(0, 28), aspect="equal", xticks=[], yticks=[])
        axes[r][0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


_DATA_CACHE: dict = {}


class SpatialMNISTExperiment(Experiment):
    """``survae-jax train spatial_mnist --model sortflow|permuteflow [--preset paper|cpu]``.

    Test metrics: ``test_nats`` (``-mean log p``, or ``-mean ELBO`` for PermuteFlow) and PPLL:
    ``test_ppll`` (exact, SortFlow) or ``test_elbo_ppll`` and ``test_iwbo_ppll`` (PermuteFlow).
    Data: SpatialMNIST clouds ``(N, 50, 2)``.

    Raises:
      ValueError: conflicting or unused flags (see :meth:`config_from_args`).
      FileNotFoundError: MNIST is not installed (when the data are built).

    Source: Nielsen et al. 2020, Appendix I.2; SpatialMNIST of Edwards & Storkey 2017.
    """

    name = "spatial_mnist"
    description = "PermuteFlow / SortFlow on SpatialMNIST point clouds (Appendix I.2)"
    config_cls = PointCloudConfig

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", choices=MODELS, default="sortflow")
        parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                            help="paper (default): Appendix I.2 in full, meant for a GPU; cpu: the reduced "
                                 "CPU schedule (~15 min per model on 2 cores)")
        parser.add_argument("--epochs", type=positive_int, default=None,
                            help="epochs of 390 steps (default: 500 paper, 16 cpu); not with --steps")
        parser.add_argument("--flow-steps", dest="num_steps", type=positive_int, default=None,
                            help="flow steps (default: 32 paper, 4 cpu)")
        parser.add_argument("--dropout", type=dropout_rate, default=None,
                            help="Transformer dropout in [0, 1) (default: 0.1 PermuteFlow, 0.2 SortFlow; 0 cpu)")
        parser.add_argument("--coupling", choices=COUPLINGS, default=None,
                            help="affine (default, the paper's) or spline: rational-quadratic spline couplings "
                                 f"({SPLINE_BINS} bins, tail bound {SPLINE_TAIL_BOUND:g}) with either preset")
        parser.add_argument("--iwbo-samples", dest="iwbo_samples", type=positive_int, default=None,
                            help="PermuteFlow only: importance samples k of the test IWBO (default 1000)")
        parser.add_argument("--iwbo-examples", dest="iwbo_examples", type=positive_int, default=None,
                            help="PermuteFlow only: test clouds of the IWBO (default: all 10,000 paper, 250 cpu)")

    def common_flag_help(self) -> dict[str, str]:
        per_epoch = steps_per_epoch(PointCloudConfig())
        return {
            **super().common_flag_help(),
            "steps": f"optimizer steps (default: --epochs epochs of {per_epoch} steps, i.e. "
                     f"{paper_config('sortflow').num_train_steps:,} for the paper preset, "
                     f"{cpu_config('sortflow').num_train_steps:,} for cpu); not with --epochs",
            "lr": "peak Adam learning rate after the warm-up, then x0.995 per epoch (default 1e-3)",
            "checkpoint_every": f"steps between checkpoints, 0: only at the end (default {per_epoch}: an epoch)",
        }

    def config_from_args(self, args: argparse.Namespace) -> PointCloudConfig:
        """The preset's config with the given flags.

        Raises:
          ValueError: ``--steps`` with ``--epochs``, or an IWBO flag with SortFlow (exact: no
            IWBO): flags that would have no effect.
        """
        model = getattr(args, "model", "sortflow")
        if getattr(args, "steps", None) is not None and getattr(args, "epochs", None) is not None:
            raise ValueError("spatial_mnist: --steps and --epochs both set the schedule's length; give one.")
        if model == "sortflow":
            given = [f for f, d in (("--iwbo-samples", "iwbo_samples"), ("--iwbo-examples", "iwbo_examples"))
                     if getattr(args, d, None) is not None]
            if given:
                raise ValueError(f"spatial_mnist: {', '.join(given)} only apply to --model permuteflow "
                                 "(SortFlow's likelihood is exact: no IWBO).")
        base = PRESETS[getattr(args, "preset", "paper")](model)
        names = {f.name for f in dataclasses.fields(PointCloudConfig)} - {"model"}
        return dataclasses.replace(base, **{k: v for k, v in vars(args).items() if k in names and v is not None})

    def notes(self, config: PointCloudConfig, args: argparse.Namespace) -> list[str]:
        """On a CPU backend, the paper preset's cost and the ``--preset cpu`` alternative."""
        if getattr(args, "preset", "paper") == "paper" and jax.default_backend() == "cpu":
            return [f"--preset paper ({config.num_steps} flow steps, {config.num_train_steps:,} optimizer steps"
                    + (f", IWBO k={config.iwbo_samples} on all test clouds" if config.model == "permuteflow" else "")
                    + ") is meant for a GPU and takes many hours on this CPU backend; "
                    "--preset cpu is the reduced schedule (~15 min per model on 2 CPU cores)."]
        return []

    def run_name(self, config: PointCloudConfig) -> str:
        spline = "_spline" if config.coupling == "spline" else ""
        return f"{self.name}_{config.model}{spline}_s{config.seed}"

    def train_config(self, config: PointCloudConfig, *, progress: bool = True) -> TrainConfig:
        return TrainConfig(steps=config.num_train_steps, batch_size=config.batch_size, seed=config.seed,
                           log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                           progress=progress)

    def load_data(self, config: PointCloudConfig):
        if config.data_seed not in _DATA_CACHE:
            _DATA_CACHE.clear()  # one data set held at a time
            _DATA_CACHE[config.data_seed] = load_spatial_mnist(seed=config.data_seed)
        data = _DATA_CACHE[config.data_seed]
        return data.train, data.test

    def eval_batch_size(self, config: PointCloudConfig) -> int:
        return EVAL_BATCH

    def build_model(self, config: PointCloudConfig) -> Flow:
        return build_model(config)

    def optimizer(self, config: PointCloudConfig) -> optax.GradientTransformation:
        return make_optimizer(config)

    def loss_fn(self, config: PointCloudConfig):
        return loss_fn

    def test_metrics(self, config: PointCloudConfig, log_likelihood, model, *, iwbo_samples=None) -> dict:
        out = {"test_nats": metrics.nats(log_likelihood), "test_exact": bool(model.exact),
               "num_parameters": num_parameters(model)}
        if model.exact:
            return {**out, "test_ppll": ppll(log_likelihood)}
        if iwbo_samples is not None:  # the runner's pass was the IWBO
            return {**out, "test_iwbo_ppll": ppll(log_likelihood), "iwbo_samples": int(iwbo_samples),
                    "iwbo_examples": len(log_likelihood)}
        test = self.load_data(config)[1]  # cached: not built again
        key = jax.random.fold_in(jax.random.key(config.seed), 11)
        return {**out, "test_elbo_ppll": ppll(log_likelihood),
                **iwbo_metrics(model, test, config, key=key, elbo=log_likelihood)}

    def plot(self, model, config, test_data, run_dir, key) -> list[str]:
        return [self.sample(model, config, os.path.join(run_dir, "samples.png"), key, 16, real=test_data)]

    def sample(self, model, config, path, key, num_samples, *, real=None) -> str:
        real = self.load_data(config)[1] if real is None else real
        n = max(8, min(int(num_samples), 64))
        x = np.asarray(jax.jit(lambda f, k: f.sample(k, n))(model, key))
        np.save(os.path.splitext(path)[0] + ".npy", x)
        return plot_point_clouds({"SpatialMNIST": np.asarray(real[:8]), config.model: x[:8]}, path)


EXPERIMENT = SpatialMNISTExperiment()
