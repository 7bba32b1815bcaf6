"""Text and tokenizers for the language-model notebooks (07), real first, offline second.

:func:`load_text` reads WikiText-2 (raw) through Hugging Face ``datasets``; only when the Hub
cannot be reached and the text is not cached it prints one line and uses the English help
texts of Python's ``pydoc_data`` instead (source ``'pydoc-topics-offline'``).
:func:`get_tokenizer` loads a model's own tokenizer (GPT-2's, Pythia's ...) the same way and
falls back to :class:`ByteTokenizer`; :func:`token_blocks` cuts a text into training blocks.
A cached file that cannot be read is an error naming the file, never a reason to go offline.
The Hub itself is :mod:`modlib.training.hub`'s business, the offline rule and message
:mod:`modlib.training.sources`'. See DESIGN.md ("Data and weights without internet").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..validate import check_int, describe
from .hub import display_name, hub_id, load_tokenizer, load_wikitext
from .sources import Unreachable, say_offline

__all__ = ["ByteTokenizer", "TextData", "get_tokenizer", "load_text", "token_blocks"]


@dataclass(frozen=True)
class TextData:
    """Raw text for causal language modelling."""

    train: str  # training text
    validation: str  # held-out text
    source: str  # 'wikitext-2' or 'pydoc-topics-offline'


class ByteTokenizer:
    """Offline stand-in for a model's tokenizer: UTF-8 bytes (0-255) plus an end-of-text token.

    Example:
        >>> tok = ByteTokenizer()
        >>> tok.encode("hi"), tok.decode([104, 105, 256]), len(tok)
        ([104, 105], 'hi', 257)
    """

    vocab_size = 257  # 256 byte values + end-of-text
    eos_token_id = 256  # end-of-text token
    name_or_path = "bytes"  # what it is, where a Hugging Face tokenizer names its hub id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: its UTF-8 bytes."""
        if not isinstance(text, str):
            raise TypeError(f"'text' must be a str. Got {describe(text)}.")
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; end-of-text is dropped, broken UTF-8 replaced."""
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"'ids' must be a sequence of token ids (ints). Got {describe(ids)}.")
        ids = list(ids)
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer, torch.Tensor)) \
                    or (isinstance(i, torch.Tensor) and (i.numel() != 1
                                                         or i.dtype.is_floating_point)):
                raise TypeError(f"'ids' must hold token ids (ints). Got {describe(i)}.")
            if int(i) < 0:
                raise ValueError(f"'ids' must hold token ids >= 0. Got {int(i)}.")
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return self.vocab_size


def load_text(n_chars: int | None = None, *, seed: int = 0) -> TextData:
    """WikiText-2 (raw) through Hugging Face ``datasets``, else Python's own pydoc help texts.

    WikiText-2 is the Hub dataset ``Salesforce/wikitext``, config ``wikitext-2-raw-v1``. The
    one way to use it without a network: load it once online (``datasets`` keeps it under
    ``$HF_HOME/datasets``, or ``$HF_DATASETS_CACHE``), then set ``HF_HUB_OFFLINE=1`` (or
    ``HF_DATASETS_OFFLINE=1``) before Python starts; ``datasets`` then reads its cache. Without
    offline mode, an unanswered Hub (3 s probe) means the pydoc texts, and one line says so.

    Args:
        n_chars: keep the first ``n_chars`` characters of the training text and the first
            ``max(n_chars // 10, 1)`` of the validation text; None keeps all.
        seed: seed of the offline split (pydoc topics shuffled, 10% to validation); WikiText's
            split is fixed.

    Returns:
        TextData: ``train`` and ``validation`` strings; source 'wikitext-2' or
        'pydoc-topics-offline'.

    Raises:
        TypeError: ``n_chars`` or ``seed`` is not an int.
        ValueError: ``n_chars`` below 1 or ``seed`` negative.
        OSError: WikiText-2 is cached but a cached file cannot be read (the message names it).

    Example:
        >>> text = load_text(10_000)  # doctest: +SKIP
        >>> len(text.train), text.source  # doctest: +SKIP
        (10000, 'wikitext-2')
    """
    check_int(n_chars, "n_chars", minimum=1, none_ok=True)
    check_int(seed, "seed", minimum=0)
    try:
        (train, validation), source = load_wikitext(), "wikitext-2"
    except Unreachable as why:
        say_offline(f"WikiText-2: {why}, using Python's own help texts (pydoc_data) instead.")
        (train, validation), source = _pydoc_text(seed), "pydoc-topics-offline"
    if n_chars is not None:
        train, validation = train[:n_chars], validation[: max(n_chars // 10, 1)]
    return TextData(train, validation, source)


def get_tokenizer(name: str = "gpt2") -> Any:
    """A model's own tokenizer (from the Hugging Face cache, else the Hub), else bytes.

    Each model has its own tokenizer: Pythia's is not GPT-2's. :func:`modlib.pretrained`
    returns the right one with its model (``Pretrained.tokenizer``); this function is for
    a tokenizer on its own. When the Hub cannot be reached and the tokenizer is not cached,
    one line says so and a :class:`ByteTokenizer` is returned. Both kinds have
    ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, ``eos_token_id``,
    ``name_or_path`` and ``len()``.

    Args:
        name: the Hub id of the model whose tokenizer is wanted, e.g. ``"gpt2"`` or
            ``"EleutherAI/pythia-70m"`` (``"pythia-70m"`` is accepted too).

    Returns:
        A ``transformers`` tokenizer (GPT-2: 50,257 tokens) or a ``ByteTokenizer`` (257).

    Raises:
        TypeError: ``name`` is not a str.
        OSError: the tokenizer is cached but a cached file cannot be read (the message names
            it), or the Hub answers that there is no such model.

    Example:
        >>> tok = get_tokenizer("EleutherAI/pythia-70m")  # doctest: +SKIP
        >>> tok.decode(tok.encode("modular"))  # doctest: +SKIP
        'modular'
    """
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str (a Hugging Face Hub id). Got {describe(name)}.")
    repo = hub_id(name)
    try:
        return load_tokenizer(repo)
    except Unreachable as why:
        say_offline(f"{display_name(repo)} tokenizer: {why}, using a byte-level tokenizer "
                    "(256 bytes + end-of-text) instead.")
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
        raise TypeError(f"'text' must be a str. Got {describe(text)}.")
    check_int(seq_len, "seq_len", minimum=1)
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"'tokenizer' must have a method encode(text) -> list[int] (see "
                        f"get_tokenizer). Got {describe(tokenizer)}.")
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    n_blocks = len(ids) // (seq_len + 1)
    if n_blocks == 0:
        raise ValueError(
            f"'text' must hold at least seq_len + 1 = {seq_len + 1} tokens. "
            f"Got {len(ids)} tokens from {len(text)} characters."
        )
    return ids[: n_blocks * (seq_len + 1)].view(n_blocks, seq_len + 1)


# --- the offline text ----------------------------------------------------------------------------


def _pydoc_text(seed: int) -> tuple[str, str]:
    """Python's help topics in an order shuffled by ``seed``; 10% of them are validation."""
    from pydoc_data.topics import topics  # dict: topic name -> English help text

    names = sorted(topics)
    order = np.random.default_rng(seed).permutation(len(names))
    texts = [topics[names[i]].strip() + "\n\n" for i in order]
    n_val = max(len(names) // 10, 1)
    return "".join(texts[n_val:]), "".join(texts[:n_val])
