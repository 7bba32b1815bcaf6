"""Tests for modlib.text: wikitext-2 (faked, no network), the offline pydoc text, tokenizers.

No test downloads anything: the Hugging Face paths are either replaced by fakes or cut off by
the ``offline`` fixture. One test checks that the unpatched text and tokenizer loaders go
offline fast here.
"""

from __future__ import annotations

import doctest
import time

import pytest
import torch

from modlib import text as mtext
from modlib.text import ByteTokenizer, TextData, get_tokenizer, load_text, token_blocks

NO_NETWORK = "no network in this test"


def _no_network(*args, **kwargs):
    raise ConnectionError(NO_NETWORK)


@pytest.fixture
def offline(monkeypatch):
    """Cut the real path off: the Hub does not answer."""
    monkeypatch.setattr(mtext, "_reachable", lambda url, timeout=0.0: False)


def test_text_offline_uses_pydoc_topics(offline, capsys):
    text = load_text()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "pydoc_data.topics" in lines[0] and "unreachable" in lines[0]
    assert isinstance(text, TextData) and text.source == "pydoc-topics-offline"
    assert len(text.train) > 100_000 and len(text.validation) > 10_000
    assert text.validation[:200] not in text.train
    short = load_text(1000)
    assert (len(short.train), len(short.validation)) == (1000, 100)


def test_text_offline_split_follows_seed(offline):
    assert load_text(seed=0) == load_text(seed=0)
    assert load_text(seed=0).validation != load_text(seed=1).validation


def test_wikitext_real_path(monkeypatch, capsys):
    import datasets

    fake = {"train": {"text": ["a\n", "b\n"]}, "validation": {"text": ["c\n"]}}
    monkeypatch.setattr(mtext, "_hub_unavailable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: fake)
    assert load_text() == TextData("a\nb\n", "c\n", "wikitext-2")
    assert capsys.readouterr().out == ""


def test_hub_fallbacks_are_fast_here():
    from huggingface_hub import constants

    if mtext._reachable(constants.ENDPOINT):
        pytest.skip("the Hugging Face Hub answers here: no offline path to time")
    start = time.perf_counter()
    text, tokenizer = load_text(5000), get_tokenizer()
    assert time.perf_counter() - start < 15  # the Hub's own retries would take about a minute
    assert text.source == "pydoc-topics-offline"
    assert tokenizer.decode(tokenizer.encode("def f(x):")) == "def f(x):"


def test_tokenizer_fallback_prints_one_line(monkeypatch, capsys):
    monkeypatch.setattr(mtext, "_gpt2_tokenizer", _no_network)
    tokenizer = get_tokenizer()
    lines = capsys.readouterr().out.splitlines()
    assert isinstance(tokenizer, ByteTokenizer)
    assert len(lines) == 1 and "byte-level tokenizer" in lines[0] and NO_NETWORK in lines[0]


def test_byte_tokenizer_round_trip():
    tokenizer = ByteTokenizer()
    text = "naïve sum ∑ of 2 + 3\n"
    ids = tokenizer.encode(text)
    assert all(0 <= i < 256 for i in ids) and len(ids) == len(text.encode("utf-8"))
    assert tokenizer.decode(ids + [tokenizer.eos_token_id]) == text
    assert len(tokenizer) == tokenizer.vocab_size == 257 and tokenizer.eos_token_id == 256


@pytest.mark.parametrize("seq_len", [1, 7, 64])
def test_token_blocks(seq_len):
    text = "The quick brown fox jumps over the lazy dog. " * 20
    blocks = token_blocks(text, ByteTokenizer(), seq_len)
    ids = torch.tensor(ByteTokenizer().encode(text))
    n_blocks = len(ids) // (seq_len + 1)
    assert blocks.shape == (n_blocks, seq_len + 1) and blocks.dtype == torch.int64
    assert torch.equal(blocks.flatten(), ids[: n_blocks * (seq_len + 1)])


def test_docstring_examples():
    assert doctest.testmod(mtext).failed == 0


# --- error messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: load_text(0), ValueError, r"'n_chars' must be an int >= 1 or None\. Got 0\."),
        (lambda: token_blocks(b"abc", ByteTokenizer(), 4), TypeError,
         r"'text' must be a str\. Got bytes\."),
        (lambda: token_blocks("abc", ByteTokenizer(), 0), ValueError,
         r"'seq_len' must be an int >= 1\. Got 0\."),
        (lambda: token_blocks("abc", ByteTokenizer(), 10), ValueError,
         r"'text' must hold at least seq_len \+ 1 = 11 tokens\. Got 3 tokens from 3 characters\."),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
