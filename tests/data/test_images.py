"""Image datasets: MNIST, Fashion-MNIST, the 8x8 digits and CIFAR-10 (on a fixture in its format)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from survae_jax.data.images import (
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_images,
    load_mnist_images,
    read_cifar10_batch,
    write_cifar10_batch,
)


def write_cifar10_fixture(folder, n_train_per_batch=2, n_test=3, seed=0):
    """The CIFAR-10 "python version" layout written by hand: data_batch_1..5 and test_batch, pickled
    dicts with b"data" (N, 3072) uint8 channel-major and b"labels" a list of ints."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_train_per_batch
        nchw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": nchw.reshape(n, 3072), b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        out[name] = (nchw.transpose(0, 2, 3, 1), np.asarray(labels))
    return out


def test_mnist_and_fashion_mnist_are_uint8_nhwc():
    for load, first_label in ((load_mnist_images, 7), (load_fashion_mnist, 9)):
        images, labels = load(split="test")
        assert images.shape == (10_000, 28, 28, 1) and images.dtype == np.uint8
        assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
        assert images.min() == 0 and images.max() == 255
        assert int(labels[0]) == first_label  # the first test label of each set (7: a seven; 9: an ankle boot)
    assert not np.array_equal(load_mnist_images("test")[0][:10], load_fashion_mnist("test")[0][:10])


def test_fashion_mnist_missing_folder_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist("test", directory=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("valid")


def test_digits_have_17_levels_and_a_fixed_split():
    train, y_train = load_digits("train")
    test, y_test = load_digits("test")
    assert train.shape == (1437, 8, 8, 1) and test.shape == (360, 8, 8, 1)
    assert train.dtype == np.uint8 and y_train.shape == (1437,) and y_test.shape == (360,)
    values = np.unique(np.concatenate([train.ravel(), test.ravel()]))
    np.testing.assert_array_equal(values, np.arange(17))
    from sklearn.datasets import load_digits as sk

    np.testing.assert_array_equal(test[..., 0], sk().images[1437:].astype(np.uint8))


def test_cifar10_fixture_round_trip(tmp_path):
    written = write_cifar10_fixture(tmp_path)
    train, y_train = load_cifar10(tmp_path, "train")
    test, y_test = load_cifar10(tmp_path, "test")
    assert train.shape == (10, 32, 32, 3) and train.dtype == np.uint8 and y_train.shape == (10,)
    assert test.shape == (3, 32, 32, 3)
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(train, expected)
    np.testing.assert_array_equal(test, written["test_batch"][0])
    np.testing.assert_array_equal(y_test, written["test_batch"][1])
    # channel-major rows: entry 1024 of a row is the green value of pixel (0, 0)
    raw = pickle.load(open(tmp_path / "test_batch", "rb"), encoding="bytes")[b"data"]
    assert test[0, 0, 0, 1] == raw[0, 1024] and test[0, 0, 1, 0] == raw[0, 1]
    np.testing.assert_array_equal(load_images("cifar10", "test", directory=tmp_path)[0], test)


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="not shipped"):
        load_images("cifar10", "train")
    bad = tmp_path / "bad"
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"\(N, 3072\) uint8"):
        read_cifar10_batch(bad)

    class Evil:
        def __reduce__(self):
            return (print, ("should never run",))

    with open(bad, "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        read_cifar10_batch(bad)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_images("svhn")


def test_write_cifar10_batch_round_trips(tmp_path):
    written = write_cifar10_fixture(tmp_path, n_test=4)
    images, labels = written["test_batch"]
    write_cifar10_batch(tmp_path / "copy", images, labels)
    assert (tmp_path / "copy").read_bytes()[:2] == b"\x80\x02"  # pickle protocol 2, as the originals
    got = read_cifar10_batch(tmp_path / "copy")
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(got[1], labels)
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\) uint8"):
        write_cifar10_batch(tmp_path / "bad", images.astype(np.int32), labels)
