"""Tiny files in the real on-disk formats of MNIST, CIFAR-10 and a torch.hub checkpoint, and a
stand-in for the network, for tests/test_real_data.py.

MNIST: LeCun's idx files (big-endian magic ``0x00000803`` / ``0x00000801``, big-endian uint32
sizes, uint8 data), uncompressed in ``<root>/MNIST/raw`` as torchvision keeps them, or gzipped
as its mirrors serve them. CIFAR-10: the official Python batches in ``<root>/cifar-10-batches-py``,
pickled as the real files were, by Python 2 at protocol 2: their keys load as ``str`` with
``encoding='latin1'`` and as ``bytes`` with ``encoding='bytes'``, and the array is a
``numpy.core.multiarray._reconstruct`` call holding the raw bytes, exactly as in the real files.
"""

from __future__ import annotations

import email.message
import gzip
import io
import pickle
import socket
import struct
import tarfile
import urllib.error
import urllib.request
import urllib.response
from pathlib import Path

import numpy as np

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]


# --- MNIST -------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as an idx file: magic ``0x0000 08 <ndim>``, the sizes, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def mnist_arrays(n_train: int, n_test: int, *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random uint8 digits ``(N, 28, 28)`` with balanced labels ``(N,)`` (uint8, as on disk)."""
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray] = []
    for n in (n_train, n_test):
        arrays += [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                   rng.permutation(np.arange(n) % 10).astype(np.uint8)]
    return tuple(arrays)


def write_mnist(root: Path, arrays: tuple[np.ndarray, ...]) -> Path:
    """Write ``(X_train, y_train, X_test, y_test)`` as torchvision's raw MNIST; returns raw/."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, array in zip(MNIST_FILES, arrays, strict=True):
        (raw / name).write_bytes(idx_bytes(array))
    return raw


def mnist_gz(arrays: tuple[np.ndarray, ...]) -> dict[str, bytes]:
    """The four gzipped idx files as the mirrors serve them: ``{'train-images-idx3-ubyte.gz':
    bytes, ...}``."""
    return {f"{name}.gz": gzip.compress(idx_bytes(array), mtime=0)
            for name, array in zip(MNIST_FILES, arrays, strict=True)}


# --- CIFAR-10 ----------------------------------------------------------------------------------


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us write Python 2 strings
    """Pickles like Python 2's cPickle at protocol 2: ``str`` and ``bytes`` as byte strings
    (opcodes SHORT_BINSTRING / BINSTRING), numpy arrays via ``numpy.core.multiarray``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        if obj is _RECONSTRUCT:  # numpy 2 calls its module numpy._core; Python 2's was numpy.core
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_pickle(obj: object) -> bytes:
    """``obj`` pickled as Python 2 pickled the CIFAR-10 batches."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def cifar_arrays(n_per_batch: int, *, seed: int = 0) -> list[tuple[np.ndarray, list[int]]]:
    """Six batches (five train, one test) of ``data: (n, 3072)`` uint8 and ``labels``."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
             [int(c) for c in rng.integers(0, 10, n_per_batch)]) for _ in range(6)]


def write_cifar10(root: Path, batches: list[tuple[np.ndarray, list[int]]]) -> Path:
    """Write six batches as ``<root>/cifar-10-batches-py`` with ``batches.meta``; returns it."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = (*CIFAR_TRAIN, "test_batch")
    for i, (name, (data, labels)) in enumerate(zip(names, batches, strict=True)):
        label = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        batch = {"batch_label": label, "labels": labels, "data": data,
                 "filenames": [f"image_{i}_{j}.png" for j in range(len(labels))]}
        (folder / name).write_bytes(py2_pickle(batch))
    meta = {"num_cases_per_batch": len(batches[0][1]), "label_names": list(CIFAR_NAMES),
            "num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return folder


def tar_gz(folder: Path) -> bytes:
    """``folder`` as a .tar.gz whose single top-level entry is the folder, as CIFAR ships."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


# --- the network -------------------------------------------------------------------------------


def no_such_host() -> urllib.error.URLError:
    """What urlopen raises without a network: a failed DNS look-up."""
    return urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))


class FakeWeb:
    """Replaces ``urlopen``: serves ``pages`` (URL -> bytes), raises ``error`` for other URLs;
    records the URLs requested and the socket timeout in force at each request."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.error: BaseException = no_such_host()
        self.requested: list[str] = []
        self.timeouts: list[float | None] = []

    def __call__(self, request: urllib.request.Request | str, *args: object, **kwargs: object):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.requested.append(url)
        self.timeouts.append(socket.getdefaulttimeout())
        if url not in self.pages:
            raise self.error
        body = self.pages[url]
        headers = email.message.Message()
        headers["Content-Length"] = str(len(body))
        response = urllib.response.addinfourl(io.BytesIO(body), headers, url, 200)
        response.length = len(body)  # as http.client.HTTPResponse has (torchvision reads it)
        return response
