"""Tests of modlib.circuits beyond the planted networks of test_interp.py: replaying the early
layers, circuits class by class, and their overlaps."""

from __future__ import annotations

import contextlib
import doctest

import pytest
import torch
from torch import nn

from modlib import circuits
from modlib.analysis.circuits import (
    class_circuits,
    class_examples,
    effective_circuit_size,
    jaccard_matrix,
    prune_circuit,
)
from modlib.analysis.interp import _frozen_prefix
from modlib.analysis.patching import circuit, circuit_size, jaccard


class _CountingConv(nn.Conv2d):
    calls = 0

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        return super().forward(X)


class _ConvNet(nn.Module):
    """A conv, an in-place change of its output, one ReLU shared before and after the fc layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _CountingConv(1, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.fc1 = nn.Linear(3 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(X))
        h.mul_(2.0)  # in place, on what act returned: a replayed output must survive this
        return self.fc2(self.act(self.fc1(h.flatten(1))))


@pytest.fixture
def convnet() -> tuple[_ConvNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = _ConvNet().eval()
    X = torch.randn(24, 1, 4, 4)
    with torch.no_grad():
        y = model(X).argmax(1)  # labels the model gets right: a positive margin
    return model, X, y


def _no_replay(model, first, X):
    return contextlib.nullcontext()


def test_replay_gives_the_same_forward_and_is_undone(convnet):
    model, X, _ = convnet
    with torch.no_grad():
        want = model(X)
        with _frozen_prefix(model, [model.fc1], X):
            _CountingConv.calls = 0
            for _ in range(3):  # the in-place mul_ would double a stored output each time
                assert torch.allclose(model(X), want)
            assert _CountingConv.calls == 0
            model.fc1.weight.mul_(0.5)  # a change from the cut on is seen
            assert not torch.allclose(model(X), want)
            model.fc1.weight.mul_(2.0)
        assert all("forward" not in m.__dict__ for m in model.modules())
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
        _CountingConv.calls = 0
        assert torch.allclose(model(X), want) and _CountingConv.calls == 1


def test_replay_is_undone_after_an_exception(convnet):
    model, X, _ = convnet
    with pytest.raises(RuntimeError, match="boom"), _frozen_prefix(model, [model.fc2], X):
        raise RuntimeError("boom")
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert all(not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("chunk", [1, 8])
def test_pruning_with_replay_equals_pruning_without(convnet, monkeypatch, chunk):
    model, X, y = convnet
    _CountingConv.calls = 0
    fast = prune_circuit(model, X, y, chunk=chunk)
    fast_calls = _CountingConv.calls
    monkeypatch.setattr(circuits, "_frozen_prefix", _no_replay)
    _CountingConv.calls = 0
    slow = prune_circuit(model, X, y, chunk=chunk)
    for name in ("fc1", "fc2"):
        assert torch.equal(getattr(fast, name).weight, getattr(slow, name).weight)
    assert fast_calls <= 8 < _CountingConv.calls  # the conv ran a few times, not once per trial


def test_patching_circuit_with_replay_equals_circuit_without(convnet, monkeypatch):
    import modlib.analysis.patching

    model, X, y = convnet
    fast = circuit(model, X, y, keep=0.8)
    monkeypatch.setattr(modlib.patching, "_frozen_prefix", _no_replay)
    slow = circuit(model, X, y, keep=0.8)
    assert all(torch.equal(fast[n], slow[n]) for n in fast)


def test_class_examples_are_right_and_of_the_label(convnet):
    model, X, y = convnet
    y = y.clone()
    y[:4] = (y[:4] + 1) % 3  # four examples the model now gets wrong
    for label in range(3):
        X_c, y_c = class_examples(model, X, y, label, n_max=100, batch_size=5)
        want = [i for i in range(len(y)) if y[i] == label and i >= 4]
        assert torch.equal(X_c, X[want]) and bool((y_c == label).all())
        with torch.no_grad():
            assert bool((model(X_c).argmax(1) == label).all())
    assert len(class_examples(model, X, y, int(y[5]), n_max=2)[1]) == 2
    assert len(class_examples(model, X, y, 7)[1]) == 0  # a label that is not there
    assert model.training is False


def test_class_circuits_pruning_matches_effective_circuit_size(convnet):
    model, X, y = convnet
    found = class_circuits(model, X, y, method="pruning", chunk=4)
    assert sorted(found) == sorted(set(y.tolist()))
    for c, masks in found.items():
        X_c, y_c = class_examples(model, X, y, c)
        assert circuit_size(masks) == effective_circuit_size(model, X_c, y_c, chunk=4)
        assert set(masks) == {"fc1", "fc2"} and masks["fc1"].shape == (12, 48)


def test_class_circuits_patching_matches_circuit(convnet):
    model, X, y = convnet
    c = int(y[0])
    found = class_circuits(model, X, y, classes=[c, 9], layers=["fc2"], keep=0.7)
    assert list(found) == [c]  # class 9 has no example: left out
    want = circuit(model, *class_examples(model, X, y, c), keep=0.7, layers=["fc2"])
    assert torch.equal(found[c]["fc2"], want["fc2"])


def test_jaccard_matrix_is_symmetric_with_unit_diagonal():
    g = torch.Generator().manual_seed(0)
    masks = {c: {"a": torch.rand(3, 4, generator=g) < 0.5, "b": torch.rand(2, 3, generator=g) < 0.5}
             for c in range(4)}
    J = jaccard_matrix(masks)
    assert J.shape == (4, 4) and torch.equal(J, J.T) and torch.equal(J.diag(), torch.ones(4))
    assert J[1, 3] == pytest.approx(jaccard(masks[1], masks[3]))
    assert ((J >= 0) & (J <= 1)).all()


@pytest.mark.parametrize("call, match", [
    (lambda m, X, y: class_examples(m, X, y, -1), r"'label' must be an int >= 0. Got -1"),
    (lambda m, X, y: class_examples(m, X, y, 0, n_max=0), r"'n_max' must be an int >= 1"),
    (lambda m, X, y: class_examples(m, X, y, 0, batch_size=1.5), r"'batch_size' must be an int"),
    (lambda m, X, y: class_examples(m, X, y[:3], 0), r"'X' and 'y' must be tensors .* \(3,\)"),
    (lambda m, X, y: class_circuits(m, X, y, method="acdc"), r"'method' must be one of"),
    (lambda m, X, y: class_circuits(m, X, y, layers=["conv"]), r"'layers' must name nn.Linear"),
    (lambda m, X, y: jaccard_matrix({}), r"'circuits' must be a non-empty dict"),
    (lambda m, X, y: jaccard_matrix({0: {"a": torch.ones(2, 2)}}), r"'circuits' must be a non"),
    (lambda m, X, y: jaccard_matrix({0: {"a": torch.ones(2, 2, dtype=torch.bool)},
                                     1: {"a": torch.ones(2, 3, dtype=torch.bool)}}),
     r"same layers and shapes"),
])
def test_errors(convnet, call, match):
    model, X, y = convnet
    with pytest.raises(ValueError, match=match):
        call(model, X, y)


def test_doctests():
    assert doctest.testmod(circuits).failed == 0
