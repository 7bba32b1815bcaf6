"""Tests for modlib.text: WikiText-2 (faked, no network), the offline pydoc text, tokenizers.

No test downloads anything: the Hugging Face paths are either replaced by fakes or cut off by
the ``offline`` fixture. One test checks that the unpatched text and tokenizer loaders go
offline fast here. The real branches, on a Hugging Face cache in the real on-disk format, are
tested in test_real_models.py.
"""

from __future__ import annotations

import doctest

import pytest
import torch

from modlib import text as mtext
from modlib.training.text import ByteTokenizer, TextData, get_tokenizer, load_text, token_blocks

NO_NETWORK = "no network in this test"


def _no_network(*args, **kwargs):
    raise ConnectionError(NO_NETWORK)


@pytest.fixture
def offline(monkeypatch):
    """Cut the real path off: the Hub does not answer."""
    monkeypatch.setattr(mtext, "_reachable", lambda url, timeout=0.0: False)


def test_text_offline_uses_pydoc_topics(offline, capsys):
    text = load_text()
    assert capsys.readouterr().out.splitlines() == [
        "modlib.data: WikiText-2: no internet, using Python's own help texts (pydoc_data) instead."]
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
    asked = []

    def load_dataset(*args, **kwargs):
        asked.append(args)
        return fake

    monkeypatch.setattr(mtext, "_hub_unavailable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert load_text() == TextData("a\nb\n", "c\n", "wikitext-2")
    assert capsys.readouterr().out == ""
    assert asked == [("Salesforce/wikitext", "wikitext-2-raw-v1")]


def test_wikitext_falls_back_only_when_the_hub_cannot_be_reached(monkeypatch, capsys):
    import datasets

    monkeypatch.setattr(mtext, "_hub_unavailable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", _no_network)  # datasets' offline, uncached
    assert load_text(100).source == "pydoc-topics-offline"
    assert capsys.readouterr().out.startswith("modlib.data: WikiText-2: no internet, using ")

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a network")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(ValueError, match="a bug, not a network"):
        load_text(100)
    assert capsys.readouterr().out == ""


def test_hub_fallbacks_offline_here():
    """(How fast the probe gives up is a timing: measured, never asserted in a test.)"""
    from huggingface_hub import constants

    if mtext._reachable(constants.ENDPOINT):
        pytest.skip("the Hugging Face Hub answers here: no offline path to test")
    text, tokenizer = load_text(5000), get_tokenizer()
    assert text.source == "pydoc-topics-offline"
    assert tokenizer.decode(tokenizer.encode("def f(x):")) == "def f(x):"


def _fake_from_pretrained(online_error: Exception):
    """AutoTokenizer.from_pretrained: nothing is cached, and going online raises this."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    def load(name, local_files_only=False, **kwargs):
        if local_files_only:
            try:
                raise LocalEntryNotFoundError("not in the disk cache")
            except LocalEntryNotFoundError as cause:  # transformers wraps it, as here
                raise OSError(f"couldn't find {name} in the cached files") from cause
        raise online_error

    return load


def test_tokenizer_fallback_prints_one_clean_line(offline, capsys):
    tokenizer = get_tokenizer("modlib-tests/not-cached")  # a name no cache holds
    assert isinstance(tokenizer, ByteTokenizer)
    assert capsys.readouterr().out.splitlines() == [
        "modlib.data: modlib-tests/not-cached tokenizer: no internet, using a byte-level "
        "tokenizer (256 bytes + end-of-text) instead."]


@pytest.mark.parametrize("error", [ConnectionError(NO_NETWORK), TimeoutError("read timed out")])
def test_tokenizer_falls_back_when_the_download_cannot_connect(monkeypatch, capsys, error):
    from transformers import AutoTokenizer

    monkeypatch.setattr(mtext, "_reachable", lambda url, timeout=0.0: True)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", _fake_from_pretrained(error))
    assert isinstance(get_tokenizer("EleutherAI/pythia-70m"), ByteTokenizer)
    out = capsys.readouterr().out
    assert out.startswith("modlib.data: Pythia-70m tokenizer: no internet, using a byte-level")
    assert NO_NETWORK not in out and "Error" not in out


def test_tokenizer_does_not_fall_back_on_other_errors(monkeypatch, capsys):
    from transformers import AutoTokenizer

    error = OSError("gpt3 is not a local folder and is not a valid model identifier")
    monkeypatch.setattr(mtext, "_reachable", lambda url, timeout=0.0: True)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", _fake_from_pretrained(error))
    with pytest.raises(OSError, match="not a valid model identifier"):
        get_tokenizer("gpt3")
    assert capsys.readouterr().out == ""


def test_get_tokenizer_knows_pretrained_names(offline, capsys):
    get_tokenizer("pythia-70m")
    assert "Pythia-70m tokenizer: " in capsys.readouterr().out


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as cause:
            raise outer from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(("exc", "unreachable"), [
    (ConnectionError("refused"), True),
    (TimeoutError("timed out"), True),
    (_raised_from(OSError("We couldn't connect"), ConnectionError("reset")), True),
    (OSError("config.json is not a valid JSON file"), False),
    (ValueError("Error while deserializing header"), False),
    (_raised_from(OSError("bad"), ValueError("bad header")), False),
])
def test_cannot_reach_tells_network_from_other_failures(exc, unreachable):
    assert mtext._cannot_reach(exc) is unreachable


def test_unreadable_names_the_damaged_file(tmp_path):
    (tmp_path / "config.json").write_text('{"vocab_size": 50}')
    (tmp_path / "tokenizer.json").write_text('{"model": ')  # cut short
    error = mtext._unreadable(tmp_path, "gpt2")
    assert isinstance(error, OSError)
    assert str(error).startswith(f"{tmp_path / 'tokenizer.json'} cannot be read (JSONDecodeError")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert mtext._unreadable(tmp_path, "gpt2") is None  # no file to blame


def test_a_cached_tokenizer_that_fails_for_another_reason_raises_that_error(monkeypatch):
    from transformers import AutoTokenizer

    def load(name, **kwargs):
        raise ValueError("an unknown tokenizer class")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", load)
    with pytest.raises(ValueError, match="an unknown tokenizer class") as info:
        get_tokenizer("modlib-tests/not-cached")
    assert info.value.__cause__ is None  # raised as it is, not chained to itself


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
        (lambda: get_tokenizer(2), TypeError,
         r"'name' must be a str \(a Hugging Face Hub id\)\. Got int\."),
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
