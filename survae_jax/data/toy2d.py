"""The four 2-D toy datasets of the SurVAE paper (Appendix I.1, Fig. 8 and Table 1).

Each dataset is ``num_points`` points ``(N, 2)`` float32, drawn with a ``numpy.random.Generator``
seeded by ``seed``, so the same seed gives the same points on every machine. All points lie in
``[-4, 4]^2`` (the square the paper's figures show).

============== =========================================================== ==================
name           shape                                                       entropy (nats)
============== =========================================================== ==================
checkerboard   4x4 board on [-4, 4]^2, uniform on the 8 cells whose           log 32 = 3.466
               (column + row) is even; anti-symmetric: p(-x1, x2) != p(x)
corners        four L shapes, one per quadrant: bars [1, 2]x[1, 4] and        ~2.947
               [1, 4]x[1, 2] (reflected), each bar 1/8 of the mass
eight_gaussians 8 Gaussians, std 0.5/1.414, at radius 4/1.414 and angles      ~2.84
               pi/8 + k pi/4 (symmetric under x1 -> -x1 and x2 -> -x2)
four_circles   4 rings of radius 2 centred at (+-1, +-1), radial noise        --
               std 0.1
============== =========================================================== ==================

The entropies are the best test nats a model can reach (up to the finite test set). The last
three are symmetric under flipping the sign of either coordinate, which the symmetric AbsFlow
exploits; the checkerboard is not, which the anti-symmetric AbsFlow handles with a learned sign.

The shapes and scales follow the reference code of the paper (github.com/didriknielsen/
survae_flows, ``experiments/toy``); the generators here are our own numpy code. One deliberate
difference: the Gaussian noise of ``eight_gaussians`` is redrawn for the ~1e-5 of points that
would land outside ``[-4, 4]^2`` (a truncation, not a clip), so the data range is guaranteed;
and a float32 coordinate that rounds to exactly +-4 is moved one ulp inside, so every point lies
in the open square ``(-4, 4)^2``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

TRAIN_POINTS = 128_000
TEST_POINTS = 128_000
BOUND = 4.0


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    # Column x1 in [-2, 2); the row is shifted by one cell on odd columns (RealNVP-style board),
    # then everything is scaled by 2 onto [-4, 4]^2.
    x1 = rng.uniform(-2.0, 2.0, n)
    x2 = rng.uniform(0.0, 1.0, n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], axis=1)


def _corners(rng: np.random.Generator, n: int) -> np.ndarray:
    # Half the points on "vertical" bars |x1| in [1, 2], |x2| in [1, 4], half on "horizontal"
    # bars |x1| in [1, 4], |x2| in [1, 2]; independent random signs put them in all quadrants.
    half = n // 2
    short = 1.0 + rng.uniform(0.0, 1.0, n)
    long = 1.0 + 3.0 * rng.uniform(0.0, 1.0, n)
    x1 = np.concatenate([short[:half], long[half:]])
    x2 = np.concatenate([long[:half], short[half:]])
    signs = 2.0 * rng.integers(0, 2, (n, 2)) - 1.0
    return np.stack([x1, x2], axis=1) * signs


def _eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    angles = np.pi / 8 + np.arange(8) * np.pi / 4
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1) / 1.414
    std = 0.5 / 1.414
    k = rng.integers(0, 8, n)
    noise = std * rng.standard_normal((n, 2))
    x = centres[k] + noise
    bad = np.any(np.abs(x) > BOUND, axis=1)
    while bad.any():  # truncation: redraw the few points outside the square
        x[bad] = centres[k[bad]] + std * rng.standard_normal((int(bad.sum()), 2))
        bad = np.any(np.abs(x) > BOUND, axis=1)
    return x


def _four_circles(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    k = rng.integers(0, 4, n)
    u = rng.uniform(0.0, 1.0, n)
    ring = 2.0 * np.stack([np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)], axis=1)
    # |noise| would need 10 std to leave [-4, 4]^2: never happens, but checked by make_toy2d.
    return ring + 0.1 * rng.standard_normal((n, 2)) - centres[k]


GENERATORS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "checkerboard": _checkerboard,
    "corners": _corners,
    "eight_gaussians": _eight_gaussians,
    "four_circles": _four_circles,
}
"""The dataset names, each mapped to its sampler ``(rng, n) -> (n, 2)``."""

DATASETS = tuple(GENERATORS)


def sample_toy2d(name: str, num_points: int, seed: int | Sequence[int]) -> np.ndarray:
    """Draw ``num_points`` points of dataset ``name`` from ``numpy.random.default_rng(seed)``.

    Returns:
      ``(num_points, 2)`` float32 array inside ``[-4, 4]^2``.

    Raises:
      ValueError: an unknown ``name`` or ``num_points < 1``.
      AssertionError: a generator produced a point outside ``(-4, 4)^2`` (a bug, never expected).

    Source: Nielsen et al. 2020, Appendix I.1 (datasets of Fig. 8 / Table 1); shapes and scales
    follow the reference code's ``experiments/toy``; the numpy generators are this library's.
    """
    if name not in GENERATORS:
        raise ValueError(f"toy2d: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if int(num_points) < 1:
        raise ValueError(f"toy2d: num_points must be >= 1, got {num_points}.")
    rng = np.random.default_rng(seed)
    x = GENERATORS[name](rng, int(num_points))
    x = x[rng.permutation(len(x))].astype(np.float32)  # generators fill groups in order: shuffle
    # A value within 2**-22 of +-4 rounds to exactly +-4 in float32 (~1e-7 of them); move it one
    # ulp inside, so the data lie in the open square and logit(|x| / 4) stays finite.
    edge = np.abs(x) == BOUND
    x[edge] = np.sign(x[edge]) * np.nextafter(np.float32(BOUND), np.float32(0))
    if not np.all(np.abs(x) < BOUND):
        raise AssertionError(f"toy2d: {name} produced points outside [-4, 4]^2 (a bug).")
    return x


def load_toy2d(
    name: str,
    *,
    seed: int = 0,
    num_train: int = TRAIN_POINTS,
    num_test: int = TEST_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The train and test sets of a toy dataset, ``(num_train, 2)`` and ``(num_test, 2)`` float32.

    The two sets are independent draws: train from the stream ``(seed, 0)``, test from
    ``(seed, 1)``, so changing ``num_train`` does not change the test set. The paper uses
    128,000 points for each (Appendix I.1).

    Raises:
      ValueError: an unknown ``name`` or a non-positive size.

    Source: Nielsen et al. 2020, Appendix I.1 (128,000 train and 128,000 test points).
    """
    train = sample_toy2d(name, num_train, [int(seed), 0])
    test = sample_toy2d(name, num_test, [int(seed), 1])
    return train, test
