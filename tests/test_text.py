"""Tests for modlib.text, modlib.hub and modlib.sources: WikiText-2 (faked, no network), the
offline pydoc text, tokenizers, and the rule that tells an unreachable source from a broken one.

No test downloads anything: the Hugging Face paths are either replaced by fakes or cut off by
the ``offline`` fixture. One test checks that the unpatched text and tokenizer loaders go
offline here. The real branches, on a Hugging Face cache in the real on-disk format, are
tested in test_real_models.py.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.error

import pytest
import torch

from modlib.training import hub, sources, vision
from modlib.training.profiles import LLM_ALIASES, LLM_MODELS
from modlib.training.text import ByteTokenizer, TextData, get_tokenizer, load_text, token_blocks

NO_NETWORK = "no network in this test"


def _no_network(*args, **kwargs):
    raise ConnectionError(NO_NETWORK)


@pytest.fixture
def offline(monkeypatch):
    """Cut the real path off: the Hub does not answer."""
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=0.0: False)


def test_text_offline_uses_pydoc_topics(offline, capsys):
    text = load_text()
    assert capsys.readouterr().out.splitlines() == [
        "modlib.data: WikiText-2: no internet, using Python's own help texts (pydoc_data) instead."]
    assert text.source == "pydoc-topics-offline"
    assert len(text.train) > 100_000 and len(text.validation) > 10_000
    assert text.validation[:200] not in text.train
    from pydoc_data.topics import topics  # every help topic, in one split or the other

    assert len(text.train) + len(text.validation) == sum(len(t.strip()) + 2
                                                         for t in topics.values())
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

    monkeypatch.setattr(hub, "hub_unavailable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert load_text() == TextData("a\nb\n", "c\n", "wikitext-2")
    assert capsys.readouterr().out == ""
    assert asked == [("Salesforce/wikitext", "wikitext-2-raw-v1")]


def test_wikitext_falls_back_only_when_the_hub_cannot_be_reached(monkeypatch, capsys):
    import datasets

    monkeypatch.setattr(hub, "hub_unavailable", lambda: None)
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

    if sources.reachable(constants.ENDPOINT):
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
    assert isinstance(tokenizer, ByteTokenizer) and tokenizer.encode("hi") == [104, 105]
    assert capsys.readouterr().out.splitlines() == [
        "modlib.data: modlib-tests/not-cached tokenizer: no internet, using a byte-level "
        "tokenizer (256 bytes + end-of-text) instead."]


@pytest.mark.parametrize("error", [ConnectionError(NO_NETWORK), TimeoutError("read timed out")])
def test_tokenizer_falls_back_when_the_download_cannot_connect(monkeypatch, capsys, error):
    from transformers import AutoTokenizer

    monkeypatch.setattr(hub, "reachable", lambda url, timeout=0.0: True)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", _fake_from_pretrained(error))
    assert isinstance(get_tokenizer("EleutherAI/pythia-70m"), ByteTokenizer)
    out = capsys.readouterr().out
    assert out.startswith("modlib.data: Pythia-70m tokenizer: no internet, using a byte-level")
    assert NO_NETWORK not in out and "Error" not in out


def test_tokenizer_does_not_fall_back_on_other_errors(monkeypatch, capsys):
    from transformers import AutoTokenizer

    error = OSError("gpt3 is not a local folder and is not a valid model identifier")
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=0.0: True)
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


def _hub_error(name: str) -> Exception:
    from huggingface_hub import utils

    return getattr(utils, name)("not cached")


class _FakeConnectError(Exception):
    """Named like an HTTP library's "could not connect" error, from that library's module."""


_FakeConnectError.__module__ = "httpx"


@pytest.mark.parametrize(("exc", "unreachable"), [
    (ConnectionError("refused"), True),
    (TimeoutError("timed out"), True),
    (socket.gaierror(-2, "Name or service not known"), True),
    (urllib.error.URLError("no route"), True),
    (urllib.error.HTTPError("https://x", 503, "Service Unavailable", {}, None), True),
    (http.client.RemoteDisconnected("closed"), True),
    (_raised_from(OSError("We couldn't connect"), ConnectionError("reset")), True),
    (_raised_from(OSError("no model"), _hub_error("LocalEntryNotFoundError")), True),
    (_hub_error("OfflineModeIsEnabled"), True),
    (_FakeConnectError("connect failed"), True),
    (OSError("config.json is not a valid JSON file"), False),
    (ValueError("Error while deserializing header"), False),
    (_raised_from(OSError("bad"), ValueError("bad header")), False),
    (FileNotFoundError("train-images-idx3-ubyte"), False),
    (PermissionError(13, "Permission denied"), False),
    (RuntimeError("File not found or corrupted."), False),
])
def test_cannot_reach_tells_network_from_other_failures(exc, unreachable):
    """One rule for torchvision's downloads and the Hugging Face Hub alike."""
    assert sources.cannot_reach(exc) is unreachable


def test_network_errors_are_what_cannot_reach_knows():
    assert vision.NETWORK_ERRORS is sources.NETWORK_ERRORS  # modlib.vision's name still works
    for kind in sources.NETWORK_ERRORS:
        assert sources.cannot_reach(kind.__new__(kind)), kind


def test_reason_is_the_last_line_cut_short():
    assert sources.reason(ValueError("first\n\n  last  \n")) == "ValueError: last"
    assert sources.reason(KeyError()) == "KeyError"
    long = sources.reason(OSError("x" * 200))
    assert len(long) == 120 and long.startswith("OSError: xxx") and long.endswith("...")


@pytest.mark.parametrize(("env", "expected"), [
    ({"MODLIB_CACHE": "{tmp}/cache"}, "{tmp}/cache"),
    ({"MODLIB_CACHE": "", "HOME": "{tmp}/home"}, "{tmp}/home/.cache/modlib"),
])
def test_cache_dir_is_one_folder_for_data_and_models(monkeypatch, tmp_path, env, expected):
    from modlib.training import data, zoo

    monkeypatch.delenv("MODLIB_DATA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    folder = sources.cache_dir()
    assert str(folder) == os.path.normpath(expected.format(tmp=tmp_path))
    assert zoo.cache_dir is sources.cache_dir
    assert data._data_root(None) == folder / "data"


def test_unreadable_names_the_damaged_file(tmp_path):
    (tmp_path / "config.json").write_text('{"vocab_size": 50}')
    (tmp_path / "tokenizer.json").write_text('{"model": ')  # cut short
    error = hub.unreadable(tmp_path, "gpt2")
    assert isinstance(error, OSError)
    assert str(error).startswith(f"{tmp_path / 'tokenizer.json'} cannot be read (JSONDecodeError")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert hub.unreadable(tmp_path, "gpt2") is None  # no file to blame


def test_the_language_models_come_from_one_table():
    from typing import get_args

    from modlib.training import profiles, zoo

    assert get_args(profiles.LLMName) == tuple(LLM_MODELS) == ("gpt2", "pythia-70m", "pythia-14m")
    assert get_args(zoo.Name) == (*zoo.LABELS, *LLM_MODELS)
    assert LLM_ALIASES == {"pythia": "pythia-70m"}
    assert [hub.hub_id(name) for name in LLM_MODELS] == [
        "gpt2", "EleutherAI/pythia-70m", "EleutherAI/pythia-14m"]
    assert [hub.display_name(m.hub_id) for m in LLM_MODELS.values()] == [
        "GPT-2", "Pythia-70m", "Pythia-14m"]
    assert hub.hub_id("org/model") == hub.display_name("org/model") == "org/model"


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
    assert ids == list(text.encode("utf-8"))
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


# --- error messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: load_text(0), ValueError, r"'n_chars' must be an int >= 1 or None\. Got 0\."),
        (lambda: load_text(2.5), TypeError, r"'n_chars' must be an int >= 1 or None\. "
                                            r"Got float 2\.5\."),
        (lambda: load_text(seed=-1), ValueError, r"'seed' must be an int >= 0\. Got -1\."),
        (lambda: get_tokenizer(2), TypeError,
         r"'name' must be a str \(a Hugging Face Hub id\)\. Got 2\."),
        (lambda: token_blocks(b"abc", ByteTokenizer(), 4), TypeError,
         r"'text' must be a str\. Got bytes b'abc'\."),
        (lambda: token_blocks("abc", ByteTokenizer(), 0), ValueError,
         r"'seq_len' must be an int >= 1\. Got 0\."),
        (lambda: token_blocks("abc", ByteTokenizer(), 10), ValueError,
         r"'text' must hold at least seq_len \+ 1 = 11 tokens\. Got 3 tokens from 3 characters\."),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
