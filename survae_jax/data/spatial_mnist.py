"""SpatialMNIST (Edwards & Storkey, 2017): each MNIST digit as a set of 50 points in the plane.

Construction (Appendix I.2 of the SurVAE paper, which used the Neural Statistician's code):

1. each digit's 784 pixels get the probabilities ``p_i = intensity_i / sum_j intensity_j``;
2. 50 *distinct* pixels are drawn without replacement with these probabilities (a digit with
   fewer than 50 inked pixels, 78 of the 70,000, is drawn with replacement instead);
3. pixel ``(row, col)`` becomes the point ``x = col + U(0, 1)``, ``y = (27 - row) + U(0, 1)``:
   jittered uniformly inside its pixel, y pointing up, so coordinates lie in ``[0, 28)``.

Splits, without shuffling: the first 50,000 training digits (train), the last 10,000 training
digits (valid) and the 10,000 test digits (test). Tensors ``(B, 50, 2)`` float32, last axis
``(x, y)``.

Sampling without replacement is done for all digits at once with the Gumbel top-k trick
(Vieira, 2014; Kool et al., 2019): the indices of the ``k`` largest ``log p_i + G_i``, with
``G_i`` i.i.d. standard Gumbel, are a draw of ``k`` distinct items without replacement, in
draw order when sorted by the perturbed value. The build is deterministic from ``seed``
(numpy ``default_rng``) and is cached as an ``.npz`` after the first call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from survae_jax.data.mnist import load_mnist

NUM_POINTS = 50
_SIDE = 28
_CHUNK = 10_000  # digits per vectorised step: 10k x 784 float64 = 63 MB
_VERSION = 1  # bump when the construction changes, so that stale caches are not reused


class SpatialMNIST(NamedTuple):
    """The three splits of SpatialMNIST, each ``(B, 50, 2)`` float32 with points ``(x, y)``.

    Fields: ``train (50000, 50, 2)``, ``valid (10000, 50, 2)``, ``test (10000, 50, 2)``;
    coordinates in ``[0, 28)``.

    Source: Edwards & Storkey 2017 (SpatialMNIST); splits as in Nielsen et al. 2020,
    Appendix I.2.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def _draw_pixels(intensity: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices ``(n, num_points)``: distinct, drawn without replacement ~ intensity.

    ``intensity`` is ``(n, P)`` non-negative. Rows with fewer than ``num_points`` non-zero
    pixels are drawn with replacement (inverse-CDF sampling) instead.
    """
    n, num_pixels = intensity.shape
    with np.errstate(divide="ignore"):
        perturbed = np.log(intensity) + rng.gumbel(size=(n, num_pixels))  # log 0 = -inf: never drawn
    top = np.argpartition(-perturbed, num_points - 1, axis=1)[:, :num_points]
    order = np.argsort(-np.take_along_axis(perturbed, top, axis=1), axis=1)
    idx = np.take_along_axis(top, order, axis=1)

    u = rng.random((n, num_points))
    few = np.count_nonzero(intensity, axis=1) < num_points
    if few.any():
        cdf = np.cumsum(intensity[few], axis=1)
        cdf = cdf / cdf[:, -1:]
        # first index whose CDF exceeds u: a draw with replacement ~ intensity
        idx[few] = np.minimum((cdf[:, None, :] <= u[few][:, :, None]).sum(-1), num_pixels - 1)
    return idx


def images_to_point_clouds(images: np.ndarray, *, seed: int = 0, num_points: int = NUM_POINTS) -> np.ndarray:
    """Turn grey-level images into SpatialMNIST point clouds.

    Args:
      images: ``(B, 28, 28)`` intensities (uint8 0..255 or non-negative floats), row 0 on top.
      seed: seed of the numpy generator; the same images and seed give the same clouds.
      num_points: points per cloud (50 in SpatialMNIST).

    Returns:
      ``(B, num_points, 2)`` float32: ``x = col + U``, ``y = (27 - row) + U`` with
      ``U ~ U(0, 1)`` drawn per coordinate, so every coordinate lies in ``[0, 28)``; the points
      come from distinct pixels except for digits with fewer than ``num_points`` inked pixels.

    Raises:
      ValueError: images of another shape, negative intensities, or an all-zero image.

    Source: Edwards & Storkey 2017 (SpatialMNIST construction, as used by Nielsen et al. 2020,
    Appendix I.2); Gumbel top-k sampling without replacement (Vieira 2014; Kool et al. 2019).
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE):
        raise ValueError(f"images_to_point_clouds: expected images (B, 28, 28), got {images.shape}.")
    flat = images.reshape(images.shape[0], -1).astype(np.float64)
    if (flat < 0).any():
        raise ValueError("images_to_point_clouds: intensities must be non-negative.")
    if (flat.sum(axis=1) == 0).any():
        raise ValueError("images_to_point_clouds: an all-zero image has no points to draw.")
    rng = np.random.default_rng(seed)
    out = np.empty((flat.shape[0], num_points, 2), np.float32)
    for start in range(0, flat.shape[0], _CHUNK):
        chunk = flat[start:start + _CHUNK]
        idx = _draw_pixels(chunk, num_points, rng)
        row, col = np.divmod(idx, _SIDE)
        jitter = rng.random((chunk.shape[0], num_points, 2))
        out[start:start + _CHUNK, :, 0] = col + jitter[..., 0]
        out[start:start + _CHUNK, :, 1] = (_SIDE - 1 - row) + jitter[..., 1]
    return out


def build_spatial_mnist(*, seed: int = 0, mnist_directory=None) -> SpatialMNIST:
    """Build the three splits from the real MNIST digits (about a second for all 70,000).

    The 60,000 training digits and then the 10,000 test digits go through one generator
    seeded with ``seed``; train = training digits 0..49,999, valid = 50,000..59,999,
    test = the test digits.

    Returns:
      :class:`SpatialMNIST`: ``train (50000, 50, 2)``, ``valid (10000, 50, 2)``,
      ``test (10000, 50, 2)`` float32.

    Raises:
      FileNotFoundError: MNIST is not installed (see :mod:`survae_jax.data.mnist`).
      ValueError: malformed MNIST files (see :func:`~survae_jax.data.mnist.load_mnist`).

    Source: Edwards & Storkey 2017 (SpatialMNIST); splits of Nielsen et al. 2020, Appendix I.2.
    """
    train_images, _ = load_mnist("train", directory=mnist_directory)
    test_images, _ = load_mnist("test", directory=mnist_directory)
    clouds = images_to_point_clouds(np.concatenate([train_images, test_images]), seed=seed)
    return SpatialMNIST(clouds[:50_000], clouds[50_000:60_000], clouds[60_000:])


def default_data_dir() -> Path:
    """Where datasets are cached: ``$SURVAE_JAX_DATA`` if set, else ``~/.cache/survae_jax``.

    Returns a ``Path`` (the folder need not exist yet; no shapes involved).

    Raises:
      RuntimeError: no ``$SURVAE_JAX_DATA`` and the home folder cannot be found (``Path.home``).

    Source: this library.
    """
    return Path(os.environ.get("SURVAE_JAX_DATA", Path.home() / ".cache" / "survae_jax"))


def load_spatial_mnist(*, seed: int = 0, data_dir=None, rebuild: bool = False) -> SpatialMNIST:
    """SpatialMNIST from the on-disk cache, building (and caching) it on first use.

    Args:
      seed: seed of the construction; each seed has its own cache file.
      data_dir: the cache folder (default :func:`default_data_dir`).
      rebuild: build again and overwrite the cache.

    Returns:
      :class:`SpatialMNIST` with ``train (50000, 50, 2)``, ``valid (10000, 50, 2)`` and
      ``test (10000, 50, 2)``, float32.

    Raises:
      FileNotFoundError: MNIST is not installed (see :mod:`survae_jax.data.mnist`).
      ValueError: malformed MNIST files.
      OSError: the cache folder cannot be written.

    An unreadable or partial cache file is rebuilt, not an error.

    Source: Edwards & Storkey 2017 (SpatialMNIST); this library for the ``.npz`` cache.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    path = folder / f"spatial_mnist_seed{int(seed)}_v{_VERSION}.npz"
    if path.exists() and not rebuild:
        try:
            with np.load(path) as f:
                data = SpatialMNIST(f["train"], f["valid"], f["test"])
            if all(a.shape[1:] == (NUM_POINTS, 2) and a.dtype == np.float32 for a in data):
                return data
        except (OSError, KeyError, ValueError):
            pass  # an unreadable or partial cache is rebuilt below
    data = build_spatial_mnist(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **data._asdict())
    os.replace(tmp, path)  # atomic: a concurrent reader never sees a half-written file
    return data
