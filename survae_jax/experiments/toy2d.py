"""The 2-D experiments of the SurVAE paper (Appendix I.1, Table 1, Fig. 8; Appendix H.4).

Models (all on ``(B, 2)`` points; ``forward`` = data -> latent):

* ``baseline``: 4 affine couplings with ``MLP(1, 2, hidden=(200, 100))`` ReLU conditioners and
  ``Reverse`` in between, standard normal base (Appendix I.1, "Baseline").
* ``absflow`` on a symmetric dataset (corners, eight_gaussians, four_circles): ``AbsSurjection``
  (fair sign coins), then ``Scale(1/4), Logit`` (corners) or ``SoftplusInverse``
  (eight_gaussians, four_circles), then the baseline's layers: the same parameters as the
  baseline (Appendix I.1, "Symmetric AbsFlow"). ``range_flow`` picks Logit/SoftplusInverse.
* ``absflow`` on checkerboard: the anti-symmetric AbsFlow. ``AbsSurjection`` on ``x1`` only,
  whose sign comes from a learned classifier ``p(s | |x1|, x2) = Bernoulli(sigmoid(MLP(2, 1)))``,
  then ``Shift((0, 4))`` and ``Scale((1/4, 1/8))`` map ``[0, 4] x [-4, 4]`` onto the unit
  square, standard uniform base. ``log p(x) = log(1/32) + log p(s|z)``: 3.466 nats when the
  classifier is perfect; ~1/4 of the baseline's parameters (Appendix I.1, "Anti-Symmetric").
* ``augmented``: Appendix H.4 Listing 2 with 4 couplings: ``Augment(StandardNormal((2,)), 2)``
  then couplings on 4-D points ``MLP(2, 4)``, standard normal base over 4-D; ``log_prob`` is a
  one-sample ELBO.
* ``spline``: the baseline with rational-quadratic spline couplings (``RQSCoupling``,
  ``SPLINE_BINS`` bins on ``[-SPLINE_TAIL_BOUND, SPLINE_TAIL_BOUND]``, identity outside; Durkan et
  al. 2019) in place of the affine ones; the same MLPs, wider last layer (``3K - 1`` parameters
  per transformed entry).
* ``spline_absflow``: the AbsFlow with spline couplings. On a symmetric dataset: the symmetric
  AbsFlow's head (``|x|``, range flow: SoftplusInverse by default on every dataset, see
  ``Toy2DConfig.range_flow``), then the spline couplings. On checkerboard: the
  anti-symmetric AbsFlow's learned sign of ``x1``, then the spline couplings on ``(|x1|, x2)``
  and a standard normal base, in place of the fixed map onto a uniform square (no knowledge of
  the support built in).

Coupling scale function (affine couplings only): ``exp`` on checkerboard, ``softplus`` on the
other datasets (the settings of the reference runs quoted in the issue), for every model.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from survae_jax.data.toy2d import DATASETS, load_toy2d
from survae_jax.distributions import ConditionalBernoulli, StandardNormal, StandardUniform
from survae_jax.experiments.flags import positive_int
from survae_jax.experiments.registry import Experiment, num_parameters
from survae_jax.flow import Flow
from survae_jax.nn.mlp import MLP
from survae_jax.plotting import grid_points, plot_density, plot_samples
from survae_jax.training import evaluate
from survae_jax.functional.spline import RationalQuadraticSpline
from survae_jax.transforms.bijections.coupling import AffineCoupling, RQSCoupling
from survae_jax.transforms.bijections.elementwise import Logit, SoftplusInverse
from survae_jax.transforms.bijections.permutation import Reverse
from survae_jax.transforms.bijections.scale_shift import Scale, Shift
from survae_jax.transforms.surjections.abs import AbsSurjection
from survae_jax.transforms.surjections.slicing import Augment

MODELS = ("baseline", "absflow", "augmented", "spline", "spline_absflow")
SPLINE_MODELS = ("spline", "spline_absflow")
ABSFLOWS = ("absflow", "spline_absflow")
SYMMETRIC = ("corners", "eight_gaussians", "four_circles")
#: The spline couplings' bins and tail bound (the toy data lie in [-4, 4]).
SPLINE_BINS, SPLINE_TAIL_BOUND = 8, 4.0


@dataclasses.dataclass(frozen=True)
class Toy2DConfig:
    """One 2-D run. Defaults: the paper's schedule (Adam 1e-3, batch 128, 10,000 steps).

    Attributes:
      dataset: one of ``checkerboard, corners, eight_gaussians, four_circles``.
      model: ``baseline``, ``absflow``, ``augmented``, ``spline`` or ``spline_absflow``.
      scale_fn: affine coupling scale function; ``None``: exp on checkerboard, softplus elsewhere
        (not allowed for the checkerboard AbsFlow, which has no couplings, nor the spline models).
      range_flow: symmetric AbsFlow's map of ``|x|`` to R, ``"logit"`` (after ``Scale(1/4)``) or
        ``"softplus"`` (``SoftplusInverse``); ``None``: for ``absflow`` logit on corners, softplus
        otherwise; for ``spline_absflow`` softplus everywhere (only for ``model="absflow"`` or
        ``"spline_absflow"`` on a symmetric dataset). The trap: the logit sends ``|x| -> 4`` to
        ``+inf``, where the spline's identity tails cannot compress it (corners: 3.16 nats with
        the logit, 2.97 with SoftplusInverse, whose image of ``(0, 4)`` ends at 3.98 < 4).
      num_train, num_test: dataset sizes (128,000 each in the paper); ``data_seed`` their seed.

    Raises:
      ValueError: an unknown dataset, model, scale function or range flow, or a ``range_flow``
        / ``scale_fn`` given to a model that does not use it.

    Source: Nielsen et al. 2020, Appendix I.1 (schedule, dataset sizes, MLP (200, 100)); Adam
    from Kingma & Ba 2015.
    """

    dataset: str = "checkerboard"
    model: str = "baseline"
    steps: int = 10_000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    data_seed: int = 0
    num_train: int = 128_000
    num_test: int = 128_000
    num_couplings: int = 4
    hidden: tuple[int, ...] = (200, 100)
    scale_fn: str | None = None
    range_flow: str | None = None
    log_every: int = 100
    checkpoint_every: int = 1_000

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"toy2d: unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        if self.model not in MODELS:
            raise ValueError(f"toy2d: unknown model {self.model!r}; choose one of {', '.join(MODELS)}.")
        if self.scale_fn not in (None, "exp", "softplus", "sigmoid", "tanh_exp"):
            raise ValueError(f"toy2d: unknown scale_fn {self.scale_fn!r}.")
        if self.range_flow not in (None, "logit", "softplus"):
            raise ValueError(f"toy2d: range_flow must be 'logit' or 'softplus', got {self.range_flow!r}.")
        # An option the chosen model does not use is an error, not silently ignored.
        if self.range_flow is not None and not (self.model in ABSFLOWS and self.dataset in SYMMETRIC):
            raise ValueError(
                f"toy2d: range_flow (--range-flow) only applies to the symmetric AbsFlow (--model absflow or "
                f"spline_absflow on "
                f"{', '.join(SYMMETRIC)}); it has no effect on {self.model} on {self.dataset}."
            )
        if self.scale_fn is not None and self.model == "absflow" and self.dataset == "checkerboard":
            raise ValueError(
                "toy2d: scale_fn (--scale-fn) has no effect on the checkerboard AbsFlow, which has no couplings."
            )
        if self.scale_fn is not None and self.model in SPLINE_MODELS:
            raise ValueError(
                f"toy2d: scale_fn (--scale-fn) has no effect on {self.model}, whose couplings are splines."
            )

    @property
    def coupling_scale_fn(self) -> str:
        """The scale function used: ``scale_fn``, or the dataset's default."""
        return self.scale_fn or ("exp" if self.dataset == "checkerboard" else "softplus")

    @property
    def abs_range_flow(self) -> str:
        """The symmetric AbsFlow's range flow used: ``range_flow``, or the dataset's default."""
        if self.range_flow is not None:
            return self.range_flow
        return "logit" if self.model == "absflow" and self.dataset in ("checkerboard", "corners") else "softplus"


def reference_init(model: nnx.Module, key: jax.Array) -> nnx.Module:
    """Re-draw every ``nnx.Linear`` of ``model`` as PyTorch's default ``nn.Linear`` init.

    Weights and biases ``~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the init of the reference
    code's MLPs. It matters here: with flax's default (lecun normal weights, about sqrt(3) times
    wider, zero biases) the exp-scaled couplings overflow at step 0, and with a zero last layer
    instead the checkerboard baseline ends ~0.08 nats worse after 10,000 steps (3.76 vs 3.68).
    Updates ``model`` in place and returns it. A kernel ``(fan_in, fan_out)`` keeps its shape
    and dtype.

    Source: PyTorch's default ``nn.Linear`` init, as used by the SurVAE reference code
    (github.com/didriknielsen/survae_flows).
    """
    linears = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Linear)]
    for lin, k in zip(linears, jax.random.split(key, max(len(linears), 1))):
        k_w, k_b = jax.random.split(k)
        w = lin.kernel[...]
        bound = 1.0 / np.sqrt(w.shape[0])
        lin.kernel[...] = jax.random.uniform(k_w, w.shape, w.dtype, -bound, bound)
        if lin.bias is not None:
            b = lin.bias[...]
            lin.bias[...] = jax.random.uniform(k_b, b.shape, b.dtype, -bound, bound)
    return model


def coupling_layers(config: Toy2DConfig, rngs: nnx.Rngs, dim: int = 2) -> list:
    """``num_couplings`` couplings on ``(B, dim)`` with ``Reverse`` between them: affine, or
    rational-quadratic splines for the spline models.

    Each coupling's net is ``MLP(ceil(dim/2), P * floor(dim/2), hidden)`` with ReLU, ``P = 2``
    (affine) or ``3 SPLINE_BINS - 1`` (spline) (its weights are re-drawn by
    :func:`reference_init` in :func:`build_model`).

    Returns a list of ``2 * num_couplings - 1`` layers; forward maps ``(B, dim) -> (B, dim)``.

    Source: Nielsen et al. 2020, Appendix I.1 (coupling layers with MLP (200, 100) conditioners);
    affine coupling from Dinh et al. 2017 (Real NVP).
    """
    half = dim - dim // 2
    layers = []
    spline = config.model in SPLINE_MODELS
    p = RationalQuadraticSpline(SPLINE_BINS, SPLINE_TAIL_BOUND).num_params if spline else 2
    for i in range(config.num_couplings):
        net = MLP(half, p * (dim - half), config.hidden, rngs=rngs)
        if spline:
            layers.append(RQSCoupling(net, num_bins=SPLINE_BINS, tail_bound=SPLINE_TAIL_BOUND))
        else:
            layers.append(AffineCoupling(net, scale_fn=config.coupling_scale_fn))
        if i < config.num_couplings - 1:
            layers.append(Reverse(dim))
    return layers


def build_baseline(config: Toy2DConfig, rngs: nnx.Rngs) -> Flow:
    """The baseline flow of Appendix I.1: 4 affine couplings on ``(B, 2)``, standard normal base
    (spline couplings for ``model="spline"``).

    Forward maps data ``(B, 2)`` to latent ``(B, 2)``; ``log_prob`` is exact, nats.

    Source: Nielsen et al. 2020, Appendix I.1 ("Baseline").
    """
    return Flow(StandardNormal((2,)), coupling_layers(config, rngs))


def build_symmetric_absflow(config: Toy2DConfig, rngs: nnx.Rngs) -> Flow:
    """Symmetric AbsFlow: ``|x|``, then Scale(1/4)+Logit or SoftplusInverse, then the baseline's
    couplings (splines for ``model="spline_absflow"``).

    Forward maps data ``(B, 2)`` to latent ``(B, 2)``; ``log_prob`` is exact (fair sign coins
    give ``V = -2 log 2`` per point), nats.

    Source: Nielsen et al. 2020, Appendix I.1 ("Symmetric AbsFlow").
    """
    if config.abs_range_flow == "logit":
        head = [AbsSurjection(), Scale(0.25), Logit()]
    else:
        head = [AbsSurjection(), SoftplusInverse()]
    return Flow(StandardNormal((2,)), head + coupling_layers(config, rngs))


def build_antisymmetric_absflow(config: Toy2DConfig, rngs: nnx.Rngs) -> Flow:
    """Anti-symmetric AbsFlow of the checkerboard: learned sign of ``x1``, uniform base.

    Forward maps data ``(B, 2)`` in ``(-4, 4)^2`` to the unit square ``(B, 2)``:
    ``z = (|x1| / 4, (x2 + 4) / 8)``; ``log p(x) = log(1/32) + log p(s | |x1|, x2)`` nats,
    exact. The classifier is ``MLP(2, 1, hidden)`` giving Bernoulli logits.

    Source: Nielsen et al. 2020, Appendix I.1 ("Anti-Symmetric AbsFlow").
    """
    classifier = ConditionalBernoulli(MLP(2, 1, config.hidden, rngs=rngs))
    return Flow(
        StandardUniform((2,)),
        [
            AbsSurjection(classifier, features=(0,)),
            Shift(jnp.array([0.0, 4.0])),
            Scale(jnp.array([0.25, 0.125])),
        ],
    )


def build_antisymmetric_spline_absflow(config: Toy2DConfig, rngs: nnx.Rngs) -> Flow:
    """Checkerboard spline AbsFlow: the learned sign of ``x1`` (as the anti-symmetric AbsFlow),
    then the spline couplings on ``(|x1|, x2)``, standard normal base.

    Forward maps data ``(B, 2)`` to latent ``(B, 2)``; ``log p(x) = log p_flow(|x1|, x2) +
    log p(s | |x1|, x2)`` nats, exact.

    Source: Nielsen et al. 2020, Appendix I.1 ("Anti-Symmetric AbsFlow"); Durkan et al. 2019.
    """
    classifier = ConditionalBernoulli(MLP(2, 1, config.hidden, rngs=rngs))
    return Flow(StandardNormal((2,)), [AbsSurjection(classifier, features=(0,))] + coupling_layers(config, rngs))


def build_augmented(config: Toy2DConfig, rngs: nnx.Rngs) -> Flow:
    """Appendix H.4 Listing 2 with ``num_couplings`` couplings on the augmented 4-D points.

    Forward maps data ``(B, 2)`` to latent ``(B, 4)`` (``Augment`` draws ``z2 ~ N(0, I)``
    ``(B, 2)``); ``log_prob`` is a one-sample ELBO in nats (``exact`` is False).

    Source: Nielsen et al. 2020, Appendix H.4, Listing 2 (augmented flow, Huang et al. 2020).
    """
    return Flow(StandardNormal((4,)), [Augment(StandardNormal((2,)), 2)] + coupling_layers(config, rngs, 4))


def build_model(config: Toy2DConfig) -> Flow:
    """The model named by ``config.model`` for ``config.dataset``, weights from ``config.seed``.

    The MLPs get the reference code's (PyTorch's) default init, :func:`reference_init`.
    Every model maps data ``(B, 2)`` forward to its latent (``(B, 2)``, or ``(B, 4)`` for
    ``augmented``).

    Source: Nielsen et al. 2020, Appendix I.1 and H.4.
    """
    rngs = nnx.Rngs(config.seed)
    if config.model in ("baseline", "spline"):
        model = build_baseline(config, rngs)
    elif config.model == "augmented":
        model = build_augmented(config, rngs)
    elif config.dataset == "checkerboard" and config.model == "spline_absflow":
        model = build_antisymmetric_spline_absflow(config, rngs)
    elif config.dataset == "checkerboard":
        model = build_antisymmetric_absflow(config, rngs)
    else:
        model = build_symmetric_absflow(config, rngs)
    return reference_init(model, jax.random.fold_in(jax.random.key(config.seed), 1))


class Toy2DExperiment(Experiment):
    """``survae-jax train toy2d --dataset ... --model ...``: the paper's 2-D experiments.

    Data ``(N, 2)`` float32 (:func:`~survae_jax.data.toy2d.load_toy2d`); test metric in nats;
    figures: the density on a 300 x 300 grid beside the test data, and 50,000 samples.

    Raises:
      ValueError: bad flag values (through :class:`Toy2DConfig`).

    Source: Nielsen et al. 2020, Appendix I.1 (Table 1, Fig. 8); this library's experiment
    registry.
    """

    name = "toy2d"
    description = "2-D toy densities (Appendix I.1): baseline flow, AbsFlow, augmented flow, their spline versions"
    config_cls = Toy2DConfig

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", default="checkerboard", help=f"one of {', '.join(DATASETS)}")
        parser.add_argument("--model", default="baseline", help=f"one of {', '.join(MODELS)}")
        parser.add_argument("--scale-fn", dest="scale_fn", default=None,
                            help="coupling scale function (default: exp on checkerboard, else softplus; "
                                 "not for the checkerboard AbsFlow, which has no couplings, nor the spline models)")
        parser.add_argument("--range-flow", dest="range_flow", default=None,
                            help="symmetric AbsFlow only (--model absflow or spline_absflow on "
                                 f"{', '.join(SYMMETRIC)}): logit or softplus (default: per dataset)")
        parser.add_argument("--num-train", dest="num_train", type=positive_int, default=None,
                            help="training points (default 128,000)")
        parser.add_argument("--num-test", dest="num_test", type=positive_int, default=None,
                            help="test points (default 128,000)")

    def common_flag_help(self) -> dict[str, str]:
        return {**super().common_flag_help(), "steps": "optimizer steps (default: the paper's 10,000)"}

    def run_name(self, config: Toy2DConfig) -> str:
        extra = f"_{config.range_flow}" if config.range_flow else ""
        return f"toy2d_{config.dataset}_{config.model}{extra}_s{config.seed}"

    def load_data(self, config: Toy2DConfig):
        return load_toy2d(config.dataset, seed=config.data_seed, num_train=config.num_train,
                          num_test=config.num_test)

    def build_model(self, config: Toy2DConfig) -> Flow:
        return build_model(config)

    def plot(self, model, config, test_data, run_dir, key) -> list[str]:
        k_grid, k_sample = jax.random.split(key)
        grid = grid_points(size=300)
        log_p = evaluate(model, grid, batch_size=len(grid), key=k_grid)
        title = f"{config.model} ({'exact' if model.exact else 'ELBO'})"
        density = plot_density(log_p, test_data[:50_000], os.path.join(run_dir, "density.png"), title=title)
        samples = self.sample(model, config, os.path.join(run_dir, "samples.png"), k_sample, 50_000)
        return [density, samples]

    def sample(self, model, config, path, key, num_samples) -> str:
        """``num_samples`` points ``(N, 2)`` float32, saved beside the figure as ``<path stem>.npy``."""
        x = np.asarray(jax.jit(lambda m, k: m.sample(k, num_samples))(model, key))
        np.save(os.path.splitext(path)[0] + ".npy", x)
        return plot_samples(x, path, title=f"{config.model} samples")


EXPERIMENT = Toy2DExperiment()
