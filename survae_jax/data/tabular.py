"""Tabular density estimation on real data that ships offline, with fixed train/valid/test splits.

============  ===========  =========================  ==================================================
name          shape        splits (train/valid/test)  source (read from an installed wheel, no download)
============  ===========  =========================  ==================================================
``galaxy``    ``(N, 7)``   80,000 / 10,000 / 10,000   PyPI ``pzflow``'s ``example_files/galaxy-data.pkl``
``patches``   ``(N, 63)``  200,000 / 25,000 / 50,000  scikit-image's bundled photographs (default sizes)
============  ===========  =========================  ==================================================

``galaxy``: 100,000 simulated galaxies (Buzzard, DeRose et al. 2019), columns ``redshift, u, g,
r, i, z, y`` (redshift and LSST magnitudes), split by a fixed permutation (``seed``).

``patches``, made the way BSDS300 is (Papamakarios et al. 2017, Appendix; data of Martin et al.
2001): grey levels ``0..255`` of the photographs :data:`PATCH_IMAGES` (colour ones converted by
``skimage.color.rgb2gray``, luminance ``0.2125 R + 0.7154 G + 0.0721 B``), dequantised
``(level + U(0, 1)) / 256``; 8x8 patches at uniform positions; each patch minus its own mean; the
bottom-right pixel dropped (it is minus the sum of the other 63). The splits never share a pixel: each photograph is cut
into 32x32 tiles, each tile drawn once to train, valid or test (probabilities 0.7 / 0.1 / 0.2),
and a patch lies inside one tile.

Every split is standardised with the *training* split's per-column mean and standard deviation
(``TabularData.mean``, ``.std``); a log-density of the standardised data converts to the data's
units by ``log p(x) = log p(x_std) - sum(log std)`` (:meth:`TabularData.to_data_units`).
"""

from __future__ import annotations

import importlib.util
import os
from typing import NamedTuple

import numpy as np

DATASETS = ("galaxy", "patches")
GALAXY_COLUMNS = ("redshift", "u", "g", "r", "i", "z", "y")
#: scikit-image's bundled natural photographs (``skimage.data.<name>()`` reads them from the wheel).
PATCH_IMAGES = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "moon", "rocket")
PATCH_SIZE = 8
TILE = 32
_TILE_SPLITS = (0.7, 0.1, 0.2)


class TabularData(NamedTuple):
    """Standardised splits ``(N, D)`` float32 and the training split's ``mean``, ``std`` ``(D,)`` float64."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def to_data_units(self, log_prob):
        """``log p(x) = log p(x_std) - sum(log std)``: nats of the standardised data -> nats of the data."""
        return np.asarray(log_prob, np.float64) - float(np.sum(np.log(self.std)))


def galaxy_path() -> str:
    """The path of ``galaxy-data.pkl`` inside the installed ``pzflow`` (the package is not imported).

    Raises:
      FileNotFoundError: ``pzflow`` is not installed, or the file is missing.
    """
    spec = importlib.util.find_spec("pzflow")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("galaxy data: the pzflow wheel is not installed (pip install pzflow; "
                                "its example_files/galaxy-data.pkl is read, nothing is downloaded).")
    path = os.path.join(spec.submodule_search_locations[0], "example_files", "galaxy-data.pkl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"galaxy data: {path} not found in the installed pzflow.")
    return path


def load_galaxy_raw() -> np.ndarray:
    """The 100,000 x 7 galaxy table (``GALAXY_COLUMNS``), float64, in the file's row order."""
    import pandas as pd

    frame = pd.read_pickle(galaxy_path())
    if tuple(frame.columns) != GALAXY_COLUMNS:
        raise ValueError(f"galaxy data: expected columns {GALAXY_COLUMNS}, got {tuple(frame.columns)}.")
    return frame.to_numpy(np.float64)


def grey_levels(name: str) -> np.ndarray:
    """Photograph ``name`` of :data:`PATCH_IMAGES` as grey levels ``(H, W)`` uint8."""
    if name not in PATCH_IMAGES:
        raise ValueError(f"patches: unknown image {name!r}; choose from {PATCH_IMAGES}.")
    import skimage.color
    import skimage.data
    import skimage.util

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = skimage.util.img_as_ubyte(skimage.color.rgb2gray(image[..., :3]))
    return np.asarray(image, np.uint8)


def _tiles(images, rng) -> list[list[tuple[int, int, int]]]:
    """``(image, row, col)`` of every full ``TILE`` x ``TILE`` tile, dealt to train/valid/test."""
    out = [[], [], []]
    for i, image in enumerate(images):
        h, w = image.shape
        for r in range(0, h - TILE + 1, TILE):
            for c in range(0, w - TILE + 1, TILE):
                out[int(rng.choice(3, p=_TILE_SPLITS))].append((i, r, c))
    return out


def _cut_patches(images, tiles, num: int, rng) -> np.ndarray:
    """``num`` dequantised, mean-removed patches ``(num, 63)`` float64 from uniform tiles and positions."""
    tiles = np.asarray(tiles)
    pick = tiles[rng.integers(len(tiles), size=num)]
    offset = rng.integers(TILE - PATCH_SIZE + 1, size=(num, 2))
    r0, c0 = pick[:, 1] + offset[:, 0], pick[:, 2] + offset[:, 1]
    k = np.arange(PATCH_SIZE)
    patches = np.empty((num, PATCH_SIZE, PATCH_SIZE), np.float64)
    for i, image in enumerate(images):
        sel = np.flatnonzero(pick[:, 0] == i)
        patches[sel] = image[(r0[sel, None, None] + k[:, None]), (c0[sel, None, None] + k[None, :])]
    patches = (patches + rng.uniform(size=patches.shape)) / 256.0
    flat = patches.reshape(num, -1)
    return (flat - flat.mean(axis=1, keepdims=True))[:, :-1]


def make_patches(num_train: int = 200_000, num_valid: int = 25_000, num_test: int = 50_000, *,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (not standardised) ``(N, 63)`` float64 patches of the three splits, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    images = [grey_levels(n) for n in PATCH_IMAGES]
    tiles = _tiles(images, rng)
    return tuple(_cut_patches(images, t, n, rng) for t, n in zip(tiles, (num_train, num_valid, num_test)))


def _standardise(train, valid, test) -> TabularData:
    mean, std = train.mean(axis=0), train.std(axis=0)
    if not np.all(std > 0):
        raise ValueError("tabular: a column of the training split is constant; it cannot be standardised.")
    f = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return TabularData(f(train), f(valid), f(test), mean, std)


def load_tabular(name: str, *, seed: int = 0, num_train: int | None = None, num_valid: int | None = None,
                 num_test: int | None = None) -> TabularData:
    """The standardised splits of ``name`` (one of :data:`DATASETS`).

    Args:
      name: ``"galaxy"`` (``D = 7``) or ``"patches"`` (``D = 63``).
      seed: the fixed split (and, for patches, tile, position and dequantisation) seed; keep the
        default 0 to compare with other runs.
      num_train, num_valid, num_test: sizes; galaxy: the first rows of each split of the default
        80,000 / 10,000 / 10,000 (at most those); patches: the numbers of patches drawn (default
        200,000 / 25,000 / 50,000).

    Returns:
      :class:`TabularData` with ``train``, ``valid``, ``test`` ``(N, D)`` float32.

    Raises:
      ValueError: an unknown name, or a size out of range.
      FileNotFoundError / ImportError: ``pzflow`` (galaxy) or ``scikit-image`` (patches) not installed.
    """
    if name not in DATASETS:
        raise ValueError(f"tabular: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    sizes = (num_train, num_valid, num_test)
    if any(n is not None and int(n) < 1 for n in sizes):
        raise ValueError(f"tabular: split sizes must be >= 1, got {sizes}.")
    if name == "galaxy":
        table = load_galaxy_raw()
        perm = np.random.default_rng(seed).permutation(len(table))
        full = (80_000, 10_000, 10_000)
        if any(n is not None and int(n) > f for n, f in zip(sizes, full)):
            raise ValueError(f"tabular: galaxy splits hold at most {full}, got {sizes}.")
        starts = np.cumsum((0, *full))
        splits = [table[perm[a:b][: (f if n is None else int(n))]]
                  for a, b, f, n in zip(starts[:-1], starts[1:], full, sizes)]
    else:
        defaults = (200_000, 25_000, 50_000)
        splits = make_patches(*(d if n is None else int(n) for n, d in zip(sizes, defaults)), seed=seed)
    return _standardise(*splits)
