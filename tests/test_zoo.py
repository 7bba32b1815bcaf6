import pytest
import torch

import modlib
import modlib.llm
from modlib.zoo import cache_dir


def test_pretrained_trains_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    first = modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    files = list((tmp_path / "pretrained").iterdir())
    assert [f.name for f in files] == ["mnist-mlp-ci-v1.pt"]
    assert first.metrics["accuracy"] > 0.7 and first.source in ("mnist", "mnist-5k-offline")
    assert not first.model.training
    second = modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert second.metrics == first.metrics


def test_pretrained_cnn_keeps_its_width(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    modlib.pretrained("mnist-cnn", profile="ci", progress=False)
    again = modlib.pretrained("mnist-cnn", profile="ci", progress=False)
    assert again.model.conv1.out_channels == modlib.profile("ci").width


def test_unknown_name():
    with pytest.raises(ValueError, match=r"'name' must be one of \('mnist-cnn', 'mnist-mlp'"):
        modlib.pretrained("resnet")


def test_pythia_stand_in_is_a_gpt_neox(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path))
    monkeypatch.setattr("modlib.data._hub_unavailable", lambda: "no network in this test")
    pt = modlib.pretrained("pythia-70m", profile="ci", progress=False)
    assert pt.stand_in and pt.source.startswith("tiny-pythia-70m-standin-on-")
    assert "gpt_neox" in dict(pt.model.named_modules())
    assert "could not be loaded (no network in this test)" in capsys.readouterr().out
    assert modlib.llm.family(pt.model) == "gpt_neox"
    again = modlib.pretrained("pythia-70m", profile="ci", progress=False)
    assert type(again.model) is type(pt.model)
