"""Figures of 2-D models: the density on a grid beside the data (as the paper's Fig. 8), samples.

Figures are built with matplotlib's object-oriented ``Figure`` (no ``pyplot``, no global backend
switch, so importing this module changes nothing for a notebook) and written to PNG files.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

Bounds = tuple[tuple[float, float], tuple[float, float]]
DEFAULT_BOUNDS: Bounds = ((-4.0, 4.0), (-4.0, 4.0))


def grid_points(bounds: Bounds = DEFAULT_BOUNDS, size: int = 300) -> np.ndarray:
    """Cell centres of a ``size x size`` grid over ``bounds``, ``(size * size, 2)`` float32.

    Row-major with ``x2`` varying slowest, so ``values.reshape(size, size)`` is an image whose
    rows run along ``x2`` (``imshow(..., origin="lower")``).

    Args:
      bounds: ``((lo1, hi1), (lo2, hi2))`` of the box, default ``[-4, 4]^2``.
      size: cells per axis.

    Source: this library (the density panels of the paper's Fig. 8, Nielsen et al. 2020).
    """
    (a0, b0), (a1, b1) = bounds
    h0, h1 = (b0 - a0) / size, (b1 - a1) / size
    x0 = a0 + h0 * (np.arange(size) + 0.5)
    x1 = a1 + h1 * (np.arange(size) + 0.5)
    g1, g0 = np.meshgrid(x1, x0, indexing="ij")
    return np.stack([g0.ravel(), g1.ravel()], axis=1).astype(np.float32)


def _hist(ax, points: np.ndarray, bounds: Bounds, bins: int) -> None:
    ax.hist2d(points[:, 0], points[:, 1], bins=bins, range=bounds, cmap="viridis")


def _style(ax, title: str, bounds: Bounds) -> None:
    ax.set_xlim(bounds[0])
    ax.set_ylim(bounds[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def plot_density(
    log_density: np.ndarray,
    data: np.ndarray,
    path: str,
    *,
    bounds: Bounds = DEFAULT_BOUNDS,
    title: str = "model",
    bins: int = 200,
) -> str:
    """Write a two-panel figure: a histogram of ``data`` and the model density ``exp(log p)``.

    Args:
      log_density: ``(size * size,)`` log-density in nats on :func:`grid_points` ``(bounds, size)``;
        ``-inf`` (zero density) is allowed.
      data: ``(N, 2)`` points (e.g. the test set).
      path: the PNG file to write.
      title: the right panel's title (e.g. ``"absflow: 3.48 nats"``).

    Returns:
      ``path``.

    Raises:
      ValueError: ``log_density`` whose size is not a square number.

    Source: the density figures of Nielsen et al. 2020 (Fig. 8, 2-D experiments); drawn by
    this library with matplotlib's object-oriented API.
    """
    size = int(round(np.sqrt(log_density.size)))
    if size * size != log_density.size:
        raise ValueError(f"plot_density: expected size*size grid values, got {log_density.size}.")
    density = np.exp(np.asarray(log_density, np.float64)).reshape(size, size)
    fig = Figure(figsize=(8, 4), dpi=100)
    axes = fig.subplots(1, 2)
    _hist(axes[0], np.asarray(data), bounds, bins)
    _style(axes[0], "data", bounds)
    axes[1].imshow(
        density, origin="lower", extent=(*bounds[0], *bounds[1]), cmap="viridis",
        vmin=0.0, vmax=float(np.quantile(density, 0.995)) or None, interpolation="nearest",
    )
    _style(axes[1], title, bounds)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def plot_samples(
    samples: np.ndarray, path: str, *, bounds: Bounds = DEFAULT_BOUNDS, title: str = "samples", bins: int = 200
) -> str:
    """Write a 2-D histogram of model samples ``(N, 2)`` to ``path`` (PNG); return ``path``.

    Non-finite samples are left out of the histogram; ``bins`` per axis over ``bounds``.

    Raises:
      ValueError: ``samples`` not of shape ``(N, 2)``.

    Source: this library (matplotlib ``Figure.hist2d``).
    """
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"plot_samples: expected samples of shape (N, 2), got {samples.shape}.")
    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.subplots()
    finite = samples[np.all(np.isfinite(samples), axis=1)]
    _hist(ax, finite, bounds, bins)
    _style(ax, title, bounds)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def image_grid(images: np.ndarray, *, num_levels: int = 256, ncols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile integer images ``(N, H, W, C)`` (``C`` 1 or 3, values in ``0..num_levels-1``) into one
    ``uint8`` picture ``(rows (H + pad) + pad, ncols (W + pad) + pad, C)``, scaled to ``0..255``.

    Raises:
      ValueError: not ``(N, H, W, 1 or 3)``, not integers, or values outside ``0..num_levels-1``.

    Source: this library (the sample grids of the image experiments, Appendix I.3).
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[0] < 1:
        raise ValueError(f"image_grid: expected images of shape (N, H, W, 1 or 3), got {x.shape}.")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"image_grid: expected integer pixels, got dtype {x.dtype}.")
    if x.min() < 0 or x.max() > num_levels - 1:
        raise ValueError(f"image_grid: expected pixels in 0..{num_levels - 1}, got [{x.min()}, {x.max()}].")
    n, h, w, c = x.shape
    ncols = max(1, min(int(ncols), n))
    rows = -(-n // ncols)
    grid = np.full((rows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
    scaled = np.round(x.astype(np.float64) * 255.0 / (num_levels - 1)).astype(np.uint8)
    for i in range(n):
        r, q = divmod(i, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = scaled[i]
    return grid


def plot_image_grid(images: np.ndarray, path: str, *, num_levels: int = 256, ncols: int = 8,
                    scale: int = 3) -> str:
    """Write :func:`image_grid` of ``images`` ``(N, H, W, C)`` to ``path`` (PNG), each pixel
    enlarged ``scale`` times; return ``path``.

    Raises:
      ValueError: see :func:`image_grid`.

    Source: this library (matplotlib's ``imsave``, no ``pyplot``).
    """
    from matplotlib.image import imsave

    grid = image_grid(images, num_levels=num_levels, ncols=ncols)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imsave(path, grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
    return path
