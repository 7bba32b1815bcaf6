"""torchvision's files: MNIST and CIFAR-10 in their on-disk formats, and the ImageNet ResNet-18.

MNIST is read from torchvision's layout ``<root>/MNIST/raw/{train,t10k}-{images-idx3,
labels-idx1}-ubyte`` (LeCun's idx format), CIFAR-10 from the official Python batches
``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (Krizhevsky 2009). torchvision only
downloads and unpacks them when they are missing: its CIFAR10 class checks the md5 of every
file, so we read the batches with our own reader of the official format.

Only a source that cannot be reached sends a loader offline, as
:func:`modlib.training.sources.cannot_reach` judges (the errors it knows are ``NETWORK_ERRORS``,
re-exported here). A file that is there but cannot be parsed raises ``ValueError`` naming it.
:func:`modlib.training.data.load_mnist` and :func:`modlib.training.data.load_cifar10` use the
readers;
:func:`imagenet_resnet18` is introduced in notebook 02. See DESIGN.md ("Data and weights without
internet").
"""

from __future__ import annotations

import codecs
import contextlib
import pickle
import socket
import struct
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from ..validate import check_bool
from .sources import NETWORK_ERRORS, cannot_reach, reason, say_offline

__all__ = ["NETWORK_ERRORS", "imagenet_resnet18"]  # NETWORK_ERRORS: from .sources
_DOWNLOAD_TIMEOUT_S = 30.0  # per blocking socket call: a dead network cannot hang a download
_DELETE = "Delete it so that it is downloaded again."
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array unpicklers, whatever their module
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
# The only globals a CIFAR-10 batch may name: numpy arrays and dtypes (the real files were
# pickled by Python 2 with numpy.core.multiarray._reconstruct; Python 3 writes bytes at protocol
# 2 with _codecs.encode, arrays at protocol 5 with _frombuffer), under numpy 1's or 2's names.
_CIFAR_GLOBALS = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


def imagenet_resnet18(*, progress: bool = False) -> nn.Module | None:
    """torchvision's ResNet-18 with its ImageNet weights (``IMAGENET1K_V1``), in eval mode.

    The weights come from torchvision's cache, ``$TORCH_HOME/hub/checkpoints/
    resnet18-f37072fd.pth``, else they are downloaded there (about 45 MB, hash-checked). They are
    loaded with ``torch.load(..., weights_only=True)``. Introduced in notebook 02.

    Args:
        progress: show a progress bar while downloading.

    Returns:
        The ``torchvision.models.ResNet`` (1,000 ImageNet classes) in eval mode on the CPU; or
        None, after printing one line saying so, when the weights are not cached and cannot be
        downloaded.

    Raises:
        TypeError: ``progress`` is not a bool.
        ValueError: the cached checkpoint cannot be read, or does not hold ResNet-18 weights
            (the message names the file: delete it so that it is downloaded again).
        RuntimeError: a downloaded file failed its hash check (from ``torch.hub``).

    Example:
        >>> model = imagenet_resnet18()  # doctest: +SKIP
        >>> model(torch.zeros(1, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([1, 1000])
    """
    check_bool(progress, "progress")
    from torchvision.models import ResNet18_Weights, resnet18  # only this path needs it

    weights = ResNet18_Weights.IMAGENET1K_V1
    name = Path(urllib.parse.urlsplit(weights.url).path).name  # what torch.hub names the file
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        match = torch.hub.HASH_REGEX.search(name)
        try:
            with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
                torch.hub.download_url_to_file(
                    weights.url, str(path), match.group(1) if match else None, progress=progress
                )
        except Exception as exc:
            if not cannot_reach(exc):
                raise
            say_offline("ResNet-18: no internet, its ImageNet weights cannot be downloaded; "
                        "skipping this part.", who="modlib.vision")
            return None
    model = resnet18(num_classes=len(weights.meta["categories"]))
    _load_weights(model, path)
    return model.eval()


def _load_weights(model: nn.Module, path: Path) -> None:
    """Load a state dict into ``model``; a file that does not hold one is a ValueError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to parse the file: it is not a checkpoint
        # torch's own message may suggest weights_only=False; the chained error has the details
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}). {_DELETE}"
        ) from exc
    try:
        model.load_state_dict(state)
    except Exception as exc:  # missing or unexpected keys, wrong shapes, not a dict
        raise ValueError(
            f"{path} does not hold the weights of a {type(model).__name__} ({reason(exc)}). "
            f"{_DELETE}"
        ) from exc


# --- downloads -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Give blocking sockets a timeout for a while (torchvision's downloads set none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(urls: list[str], folder: Path, filename: str, md5: str) -> None:
    """Download ``filename`` from the first of ``urls`` that answers, and unpack it in ``folder``.

    Raises the last error when no URL can be reached (see
    :func:`~modlib.training.sources.cannot_reach`); any other error (a failed checksum, a full
    disk) at once.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    errors: list[BaseException] = []
    with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
        for url in urls:
            try:
                download_and_extract_archive(url, str(folder), filename=filename, md5=md5)
                return
            except Exception as exc:
                if not cannot_reach(exc):
                    raise
                errors.append(exc)  # this mirror cannot be reached: try the next
    raise errors[-1]


def _corrupt(path: Path, what: str, problem: str) -> NoReturn:
    raise ValueError(f"{path} is not {what}: {problem}. {_DELETE}")


# --- MNIST ---------------------------------------------------------------------------------------


def _mnist_tensors(root: Path) -> tuple[torch.Tensor, ...]:
    """``(X_train, y_train, X_test, y_test)``: X uint8 ``(N, 1, 28, 28)``, y int64 ``(N,)``."""
    from torchvision.datasets import MNIST  # for its file names, checksums and mirrors

    raw = root / "MNIST" / "raw"
    for gz, md5 in MNIST.resources:  # download only what is missing, as torchvision does
        if not (raw / gz.removesuffix(".gz")).is_file():
            _download([mirror + gz for mirror in MNIST.mirrors], raw, gz, md5)
    splits: list[torch.Tensor] = []
    for split in ("train", "t10k"):
        X = _read_idx(raw / f"{split}-images-idx3-ubyte", (28, 28))  # (N, 28, 28)
        label_path = raw / f"{split}-labels-idx1-ubyte"
        y = _read_idx(label_path, ())  # (N,)
        if len(y) != len(X) or y.max(initial=0) > 9:
            _corrupt(label_path, "an MNIST label file", f"it holds {len(y):,} labels in "
                     f"[{y.min(initial=0)}, {y.max(initial=0)}], expected {len(X):,} in [0, 9]")
        splits += [torch.from_numpy(X.copy())[:, None], torch.from_numpy(y.astype(np.int64))]
    return tuple(splits)


def _read_idx(path: Path, item_shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 idx file: magic ``0x0000 08 <ndim>``, ``ndim`` big-endian uint32 sizes, data."""
    ndim = 1 + len(item_shape)
    data = path.read_bytes()
    header = 4 * (1 + ndim)
    what = f"an MNIST {'image' if item_shape else 'label'} file"
    if not data:
        _corrupt(path, what, "it is empty")
    if data[:4] != bytes((0, 0, 8, ndim)):
        _corrupt(path, what, f"it does not start with the idx magic number 0x0000080{ndim} "
                 f"(uint8, {ndim}-D) but with 0x{data[:4].hex()}")
    if len(data) < header:
        _corrupt(path, what, f"it is {len(data)} bytes long, shorter than its {header}-byte header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    sizes = " x ".join(map(str, shape))
    if shape[1:] != item_shape:
        _corrupt(path, what, f"its header says {sizes}, expected "
                 f"(N{''.join(f', {d}' for d in item_shape)})")
    if len(data) - header != int(np.prod(shape)):
        _corrupt(path, what, f"its header announces {sizes} = {int(np.prod(shape)):,} bytes of "
                 f"data, but {len(data) - header:,} follow it")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


# --- CIFAR-10 ------------------------------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch, and nothing that names other globals than numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no CIFAR batch does")
        return _CIFAR_GLOBALS[module, name]


def _cifar10_tensors(root: Path) -> tuple[torch.Tensor, ...]:
    """``(X_train, y_train, X_test, y_test)``: X uint8 ``(N, 3, 32, 32)``, y int64 ``(N,)``."""
    from torchvision.datasets import CIFAR10  # for its file names, URL and checksum

    folder = root / CIFAR10.base_folder
    train, test = ([name for name, _ in files] for files in (CIFAR10.train_list, CIFAR10.test_list))
    if not all((folder / name).is_file() for name in train + test):
        _download([CIFAR10.url], root, CIFAR10.filename, CIFAR10.tgz_md5)
    splits: list[torch.Tensor] = []
    for names in (train, test):
        batches = [_read_cifar_batch(folder / name) for name in names]
        splits += [torch.from_numpy(np.concatenate([X for X, _ in batches])),
                   torch.from_numpy(np.concatenate([y for _, y in batches]))]
    return tuple(splits)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: a pickled dict whose ``data`` is uint8 ``(N, 3072)``, the R, G, B planes of
    32 x 32 row-major pixels, and whose ``labels`` are N ints; keys are ``str`` when read with
    ``encoding='latin1'`` (Python 2 strings), ``bytes`` if Python 3 wrote them."""
    with open(path, "rb") as f:
        try:
            batch = _BatchUnpickler(f, encoding="latin1").load()
        except Exception as exc:  # any failure to parse the file: it is not a batch
            _corrupt(path, "a CIFAR-10 batch", f"it cannot be unpickled ({reason(exc)})")
    if not isinstance(batch, dict):
        _corrupt(path, "a CIFAR-10 batch", f"it holds a {type(batch).__name__}, not a dict")
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", "labels"):
        if key not in entries:
            keys = ", ".join(sorted(map(repr, entries)))
            _corrupt(path, "a CIFAR-10 batch", f"it has no {key!r} entry (its keys: {keys})")
    X, y = entries["data"], np.asarray(entries["labels"])
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != 3072:
        got = f"{X.dtype} {X.shape}" if isinstance(X, np.ndarray) else type(X).__name__
        _corrupt(path, "a CIFAR-10 batch", f"its 'data' is {got}, expected uint8 (N, 3072)")
    if y.shape != (len(X),) or y.dtype.kind not in "iu" or not ((y >= 0) & (y <= 9)).all():
        _corrupt(path, "a CIFAR-10 batch", f"its 'labels' are not {len(X):,} ints in [0, 9]")
    return X.reshape(-1, 3, 32, 32), y.astype(np.int64)  # (N, 3, 32, 32): R, G, B planes
