import pytest
import torch

import modlib
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
