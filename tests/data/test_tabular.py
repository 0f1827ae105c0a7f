"""Tabular data: the galaxy table and the natural-image patches (shapes, fixed disjoint splits,
standardisation from the training split, the BSDS300 construction of a patch)."""

from __future__ import annotations

import numpy as np
import pytest

from survae_jax.data import tabular
from survae_jax.data.tabular import PATCH_SIZE, load_galaxy_raw, load_tabular


def _standardised(d):
    for a in (d.train, d.valid, d.test):
        assert a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_allclose(d.train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(d.train.std(0), 1.0, atol=1e-3)
    np.testing.assert_allclose(d.to_data_units(np.zeros(2)), -np.log(d.std).sum())


def test_galaxy_splits_are_fixed_disjoint_and_standardised_from_train():
    d = load_tabular("galaxy")
    assert (d.train.shape, d.valid.shape, d.test.shape) == ((80_000, 7), (10_000, 7), (10_000, 7))
    _standardised(d)
    raw = load_galaxy_raw()
    assert raw.shape == (100_000, 7) and np.all(np.isfinite(raw))
    rows = [{r.tobytes() for r in (a.astype(np.float64) * d.std + d.mean).astype(np.float32)}
            for a in (d.train, d.valid, d.test)]
    assert len(rows[0] | rows[1] | rows[2]) == 100_000  # the three splits partition the table
    small = load_tabular("galaxy", num_train=1000, num_valid=10, num_test=20)
    np.testing.assert_allclose(small.train * small.std + small.mean, d.train[:1000] * d.std + d.mean, atol=1e-4)
    with pytest.raises(ValueError, match=r"tabular: galaxy splits hold at most"):
        load_tabular("galaxy", num_train=90_000)
    with pytest.raises(ValueError, match="tabular: unknown dataset 'power'"):
        load_tabular("power")


def test_patches_shapes_determinism_and_disjoint_tiles():
    d = load_tabular("patches", num_train=2000, num_valid=300, num_test=500)
    assert (d.train.shape, d.valid.shape, d.test.shape) == ((2000, 63), (300, 63), (500, 63))
    _standardised(d)
    again = load_tabular("patches", num_train=2000, num_valid=300, num_test=500)
    np.testing.assert_array_equal(d.test, again.test)
    assert not np.array_equal(d.test, load_tabular("patches", num_train=2000, num_valid=300, num_test=500,
                                                  seed=1).test)
    images = [np.zeros((70, 100), np.uint8), np.zeros((64, 64), np.uint8)]
    tiles = tabular._tiles(images, np.random.default_rng(0))
    flat = [t for split in tiles for t in split]
    assert len(flat) == len(set(flat)) == 2 * 3 + 2 * 2  # every full 32x32 tile, dealt once


def test_a_patch_is_dequantised_mean_removed_with_the_last_pixel_dropped():
    image = np.repeat(np.arange(64, dtype=np.uint8)[:, None] * 4, 64, axis=1)  # level 4 * row
    patches = tabular._cut_patches([image], [(0, 0, 0), (0, 32, 32)], 500, np.random.default_rng(0))
    assert patches.shape == (500, PATCH_SIZE * PATCH_SIZE - 1)
    full = np.concatenate([patches, -patches.sum(1, keepdims=True)], axis=1).reshape(500, 8, 8)
    want = (4.0 * (np.arange(8) - 3.5) / 256.0)[:, None]  # the row's level minus the patch mean
    assert np.all(np.abs(full - want) < 1.0 / 256.0)  # up to the dequantisation noise
    assert np.std(full - want) > 0.5 / 256.0 / np.sqrt(12)  # the noise is there
