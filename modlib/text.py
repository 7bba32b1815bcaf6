"""Text for the language-model notebooks (07): real WikiText-2 first, offline pydoc topics second.

:func:`load_text` reads wikitext-2 (raw) from the Hugging Face Hub; when the Hub does not answer
it prints one line and uses the English help texts of Python's ``pydoc_data`` instead (source
``'pydoc-topics-offline'``). :func:`get_tokenizer` falls back from the GPT-2 tokenizer to
:class:`ByteTokenizer` the same way; :func:`token_blocks` cuts a text into training blocks.

The argument check and the one-line offline message shared by every loader of
:mod:`modlib.data` live here too: ``data`` imports ``text`` and ``standin``, ``standin`` imports
``text``, and this module imports neither, so the graph has no cycle.
"""

from __future__ import annotations

import contextlib
import numbers
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["ByteTokenizer", "TextData", "get_tokenizer", "load_text", "token_blocks"]

_PROBE_TIMEOUT_S = 3.0  # how long the Hugging Face Hub gets to answer before we go offline


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


# --- validation and messages (shared with modlib.data and modlib.standin) ----------------------


def _check_int(name: str, value: object, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    what = f"an int >= {minimum}" + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be {what}. Got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"'{name}' must be {what}. Got {value}.")


def _say(message: str) -> None:
    """The one line a loader prints when it goes offline."""
    print(f"modlib.data: {message}", flush=True)


def _reason(exc: BaseException) -> str:
    """A short one-line reason: the exception's type and the last line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return reason if len(reason) <= 120 else reason[:117] + "..."


# --- real and offline sources ------------------------------------------------------------------


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
