"""The 2-D toy datasets: shapes, range, determinism, and the structure each one must have."""

import numpy as np
import pytest

from survae_jax.data.toy2d import DATASETS, load_toy2d, sample_toy2d


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_range_determinism(name):
    train, test = load_toy2d(name, seed=3, num_train=4000, num_test=2000)
    assert train.shape == (4000, 2) and test.shape == (2000, 2)
    assert train.dtype == np.float32 and test.dtype == np.float32
    assert np.all(np.abs(train) < 4.0) and np.all(np.abs(test) < 4.0)
    again, _ = load_toy2d(name, seed=3, num_train=4000, num_test=2000)
    np.testing.assert_array_equal(train, again)
    other, _ = load_toy2d(name, seed=4, num_train=4000, num_test=2000)
    assert not np.array_equal(train, other)
    assert not np.array_equal(train[:2000], test)  # independent streams


def test_full_size_default():
    train, test = load_toy2d("four_circles")
    assert train.shape == test.shape == (128_000, 2)


def test_checkerboard_cells():
    x = sample_toy2d("checkerboard", 20_000, 0)
    col, row = np.floor(x[:, 0] / 2) + 2, np.floor(x[:, 1] / 2) + 2  # cells 0..3
    assert np.all((col + row) % 2 == 0)  # only the 8 "even" cells of the 4x4 board
    counts = np.bincount((4 * col + row).astype(int), minlength=16)
    assert np.count_nonzero(counts) == 8
    assert counts[counts > 0].min() > 0.9 * 20_000 / 8  # uniform over the cells
    assert np.mean(x[:, 0] * x[:, 1] > 0) == pytest.approx(0.5, abs=0.02)


def test_corners_l_shapes():
    x = np.abs(sample_toy2d("corners", 20_000, 0))
    assert np.all(x >= 1.0)
    assert np.all((x[:, 0] <= 2.0) | (x[:, 1] <= 2.0))  # inside the L: one short coordinate
    # Each quadrant holds a quarter; first half of the rows is not all one bar (shuffled).
    assert np.mean(x[:1000, 0] <= 2.0) == pytest.approx(1 / 2 + 1 / 6, abs=0.06)


def test_gaussians_and_circles_geometry():
    g = sample_toy2d("eight_gaussians", 40_000, 0)
    angle = np.mod(np.arctan2(g[:, 1], g[:, 0]) - np.pi / 8, np.pi / 4)
    assert np.median(np.minimum(angle, np.pi / 4 - angle)) < 0.1  # near the 8 centre angles
    assert np.median(np.linalg.norm(g, axis=1)) == pytest.approx(4 / 1.414, abs=0.05)
    c = sample_toy2d("four_circles", 40_000, 0)
    centres = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]])
    d = np.min(np.abs(np.linalg.norm(c[:, None] - centres[None], axis=2) - 2.0), axis=1)
    assert np.mean(d < 0.3) > 0.99  # every point near one of the radius-2 rings


@pytest.mark.parametrize("name", ["corners", "eight_gaussians", "four_circles"])
def test_symmetric_datasets(name):
    x = sample_toy2d(name, 40_000, 0)
    for axis in (0, 1):
        assert np.mean(x[:, axis] > 0) == pytest.approx(0.5, abs=0.015)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown dataset 'moons'"):
        load_toy2d("moons")
    with pytest.raises(ValueError, match="num_points"):
        sample_toy2d("corners", 0, 0)
