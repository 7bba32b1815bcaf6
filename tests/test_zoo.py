import re

import pytest
import torch

import modlib
import modlib.analysis.llm
from modlib.training import sources
from modlib.training.data import ByteTokenizer
from modlib.training.zoo import cache_dir


@pytest.mark.slow
def test_pretrained_trains_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    assert cache_dir is sources.cache_dir and cache_dir() == tmp_path
    first = modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    files = list((tmp_path / "pretrained").iterdir())
    assert len(files) == 1 and re.fullmatch(r"mnist-mlp-ci-v1-[0-9a-f]{8}\.pt", files[0].name)
    assert first.metrics["accuracy"] > 0.7 and first.source in ("mnist", "mnist-5k-offline")
    assert not first.model.training
    second = modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert second.metrics == first.metrics


@pytest.mark.slow
def test_pretrained_cnn_keeps_its_width(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    modlib.pretrained("mnist-cnn", profile="ci", progress=False)
    again = modlib.pretrained("mnist-cnn", profile="ci", progress=False)
    assert again.model.conv1.out_channels == modlib.profile("ci").width


def test_unknown_name():
    with pytest.raises(ValueError, match=r"'name' must be one of \('mnist-cnn', 'mnist-mlp'"):
        modlib.pretrained("resnet")


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache and a Hub that does not answer."""
    from huggingface_hub import constants

    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "modlib"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("modlib.training.hub.reachable", lambda url, timeout=0.0: False)


def test_pythia_stand_in_is_a_gpt_neox(no_hub, capsys):
    pt = modlib.pretrained("pythia-70m", profile="ci", progress=False)
    assert pt.stand_in and pt.source.startswith("tiny-pythia-70m-standin-on-")
    assert pt.label == "tiny GPT-NeoX stand-in (offline)"
    assert isinstance(pt.tokenizer, ByteTokenizer)
    assert pt.model.config.vocab_size == 257 and pt.extra["init"] == {
        "vocab_size": 257, "n_positions": modlib.profile("ci").llm_seq_len}
    assert "gpt_neox" in dict(pt.model.named_modules())
    cached = sorted(p.name for p in (sources.cache_dir() / "pretrained").iterdir())
    assert len(cached) == 1 and re.fullmatch(r"pythia-70m-ci-v2-[0-9a-f]{8}\.pt", cached[0])
    assert capsys.readouterr().out.splitlines()[-1] == (
        "modlib.zoo: Pythia-70m: no internet, training a small GPT-NeoX-architecture stand-in "
        "with a byte-level tokenizer on Python's help texts instead.")
    assert modlib.llm.family(pt.model) == "gpt_neox"
    again = modlib.pretrained("pythia-70m", profile="ci", progress=False)
    assert type(again.model) is type(pt.model)
    assert capsys.readouterr().out.splitlines() == [
        "modlib.zoo: Pythia-70m: no internet, using the small GPT-NeoX-architecture stand-in "
        "with a byte-level tokenizer on Python's help texts instead."]


@pytest.mark.slow
def test_pretrained_returns_the_dtype_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    pt = modlib.pretrained("mnist-mlp", profile="ci", progress=False, dtype=torch.float64)
    assert {p.dtype for p in pt.model.parameters()} == {torch.float64}
    assert pt.label == "authors' MLP (PaperMLP)" and pt.tokenizer is None


@pytest.mark.parametrize(("dtype", "error", "match"), [
    ("float32", TypeError,
     r"'dtype' must be a torch\.dtype such as torch\.float32\. Got str 'float32'\."),
    (torch.int64, ValueError, r"'dtype' must be a floating-point torch\.dtype\. Got torch\.int64"),
])
def test_bad_dtype(dtype, error, match):
    with pytest.raises(error, match=match):
        modlib.pretrained("mnist-mlp", dtype=dtype)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"progress": "yes"}, r"'progress' must be True or False\. Got str 'yes'\."),
    ({"retrain": 1}, r"'retrain' must be True or False\. Got 1\."),
])
def test_bad_flags(kwargs, match):
    with pytest.raises(TypeError, match=match):
        modlib.pretrained("mnist-mlp", **kwargs)


@pytest.mark.parametrize("name", ["gpt2", "pythia-70m", "pythia-14m"])
def test_every_language_model_has_a_stand_in_of_its_architecture(name):
    from modlib.training.profiles import LLM_MODELS
    from modlib.training.zoo import _rebuild

    model = _rebuild(name, {"init": {"vocab_size": 20, "n_positions": 8}})
    assert modlib.llm.family(model) == {"GPT-2": "gpt2", "GPT-NeoX": "gpt_neox"}[
        LLM_MODELS[name].architecture]
    assert model.config.vocab_size == 20
