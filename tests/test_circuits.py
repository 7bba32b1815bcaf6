"""Tests of modlib.circuits beyond the planted networks of test_interp.py: a planted network
whose circuits are known exactly, replaying the early layers, circuits class by class, their
overlaps, and the comparison of two models' circuit sizes."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from modlib import circuits, patching
from modlib.analysis.circuits import (
    SizeVerdict,
    class_circuits,
    class_examples,
    compare_circuit_sizes,
    effective_circuit_size,
    jaccard_matrix,
    prune_circuit,
)
from modlib.analysis.patching import circuit, circuit_size, jaccard
from tests.nets import ConvNet


@pytest.fixture
def convnet() -> tuple[ConvNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = ConvNet().eval()
    X = torch.randn(24, 1, 4, 4)
    with torch.no_grad():
        y = model(X).argmax(1)  # labels the model gets right: a positive margin
    return model, X, y


def _no_replay(model, first, X):
    return contextlib.nullcontext()


class _Count(nn.Module):
    """The identity, counting the times it really runs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return X * 1.0


class _TwoModules(nn.Module):
    """Inputs 0-1 → hidden 0-1 → class 0, inputs 2-3 → hidden 2-3 → class 1; no biases.

    Every weight is non-zero. Across modules, fc1's weights are negative (a module's hidden
    neurons stay at 0 when only the other module's inputs are on) and so are fc2's (the other
    module's hidden neurons push the wrong logit down). On class c's data, whose inputs outside
    module c are 0, removing one weight of module c's inputs to its hidden neurons or of those
    hidden neurons to either logit lowers the margin, and removing any other weight changes
    nothing at all: class c's circuit is exactly those 4 + 4 weights, a third of the 24.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pre = _Count()
        self.fc1 = nn.Linear(4, 4, bias=False)
        self.fc2 = nn.Linear(4, 2, bias=False)
        g = torch.Generator().manual_seed(0)
        module = torch.tensor([0, 0, 1, 1])
        with torch.no_grad():
            for fc, rows in ((self.fc1, module), (self.fc2, torch.tensor([0, 1]))):
                same = rows[:, None] == module[None, :]
                size = 0.5 + 0.5 * torch.rand(fc.weight.shape, generator=g)
                fc.weight.copy_(torch.where(same, size, -size))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.pre(X))))

    @staticmethod
    def known(c: int) -> dict[str, torch.Tensor]:
        """Class c's circuit: the masks of the weights it needs."""
        mine = torch.arange(4) // 2 == c
        return {"fc1": mine[:, None] & mine[None, :], "fc2": mine[None, :].expand(2, 4).clone()}


def _two_module_data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.arange(2 * n) % 2
    X = torch.zeros(2 * n, 4)
    on = 0.5 + 0.5 * torch.rand(2 * n, 2, generator=g)
    X[y == 0, :2], X[y == 1, 2:] = on[y == 0], on[y == 1]
    return X, y


def _masks(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: getattr(model, n).weight != 0 for n in ("fc1", "fc2")}


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_pruning_finds_the_known_circuit_of_each_class(chunk):
    model = _TwoModules()
    X, y = _two_module_data()
    for c in (0, 1):
        pruned = prune_circuit(model, X[y == c], y[y == c], chunk=chunk)
        got = _masks(pruned)
        for name, want in _TwoModules.known(c).items():
            assert torch.equal(got[name], want), (c, name, got[name])
        assert effective_circuit_size(model, X[y == c], y[y == c], chunk=chunk) == 8 / 24


def test_pruning_without_bisection_keeps_a_failed_group_whole():
    model = _TwoModules()
    X, y = _two_module_data()
    X0, y0 = X[y == 0], y[y == 0]
    # each layer is one group of <= 64 weights that holds needed ones: nothing is pruned
    assert effective_circuit_size(model, X0, y0, chunk=64, bisect=False) == 1.0
    assert effective_circuit_size(model, X0, y0, chunk=1, bisect=False) == 8 / 24


def test_pruning_layers_and_tolerance():
    model = _TwoModules()
    X, y = _two_module_data()
    X0, y0 = X[y == 0], y[y == 0]
    pruned = prune_circuit(model, X0, y0, layers=["fc2"])
    assert torch.equal(pruned.fc1.weight, model.fc1.weight)  # not in `layers`: untouched
    assert torch.equal(_masks(pruned)["fc2"], _TwoModules.known(0)["fc2"])
    assert effective_circuit_size(model, X0, y0, layers=["fc2"]) == 4 / 8
    # logits stay within ±4 whatever is removed: a loss rise of 10 nats allows removing it all
    assert effective_circuit_size(model, X0, y0, tol=10.0) == 0.0


def test_pruning_with_replay_finds_the_same_circuit_running_the_prefix_a_few_times(monkeypatch):
    model = _TwoModules()
    X, y = _two_module_data()
    X0, y0 = X[y == 0], y[y == 0]
    fast = prune_circuit(model, X0, y0, chunk=1)
    fast_calls = fast.pre.calls - model.pre.calls
    monkeypatch.setattr(circuits, "frozen_prefix", _no_replay)
    slow = prune_circuit(model, X0, y0, chunk=1)
    slow_calls = slow.pre.calls - model.pre.calls
    for pruned in (fast, slow):
        assert all(torch.equal(m, _TwoModules.known(0)[n]) for n, m in _masks(pruned).items())
    # the limit, and per layer its input and the recording of the prefix; not one per trial
    assert fast_calls == 5 and slow_calls > 24


def test_class_circuits_by_pruning_are_the_known_circuits():
    model = _TwoModules()
    X, y = _two_module_data()
    found = class_circuits(model, X, y, method="pruning", chunk=4)
    assert sorted(found) == [0, 1]
    for c, masks in found.items():
        assert all(torch.equal(masks[n], _TwoModules.known(c)[n]) for n in ("fc1", "fc2"))
        assert circuit_size(masks) == 8 / 24
    assert jaccard(found[0], found[1]) == 0.0


def test_patching_circuit_with_replay_equals_circuit_without(convnet, monkeypatch):
    model, X, y = convnet
    fast = circuit(model, X, y, keep=0.8)
    monkeypatch.setattr(patching, "frozen_prefix", _no_replay)
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
    a, b = masks[0], masks[2]
    both = int((a["a"] & b["a"]).sum() + (a["b"] & b["b"]).sum())
    either = int((a["a"] | b["a"]).sum() + (a["b"] | b["b"]).sum())
    assert J[0, 2] == pytest.approx(both / either)


# --- compare_circuit_sizes ---------------------------------------------------------------------


def test_compare_circuit_sizes_means_counts_and_agreement():
    verdicts, agree = compare_circuit_sizes(
        {"patching": [0.4, 0.2, 0.3], "pruning": [0.10, 0.10, 0.10]},
        {"patching": [0.1, 0.3, 0.2], "pruning": [0.05, 0.20, 0.20]})
    assert list(verdicts) == ["patching", "pruning"]
    assert verdicts["patching"] == SizeVerdict(baseline=pytest.approx(0.3),
                                               modular=pytest.approx(0.2), n_smaller=2,
                                               n_classes=3, smaller="modular")
    assert verdicts["pruning"].smaller == "baseline" and verdicts["pruning"].n_smaller == 1
    assert agree is False
    same, agree = compare_circuit_sizes({"a": [0.2], "b": [0.5]}, {"a": [0.1], "b": [0.4]})
    assert agree is True and {v.smaller for v in same.values()} == {"modular"}


def test_compare_circuit_sizes_a_tie_names_the_baseline():
    verdicts, agree = compare_circuit_sizes({"pruning": [0.2, 0.4]}, {"pruning": [0.4, 0.2]})
    assert verdicts["pruning"].smaller == "baseline" and verdicts["pruning"].n_smaller == 1
    assert agree is True  # one measure always agrees with itself


@pytest.mark.parametrize("baseline, modular, error, match", [
    ({}, {}, ValueError, r"'baseline' and 'modular' must be dicts \{measure: sizes\} with"),
    ({"a": [0.1]}, {"b": [0.1]}, ValueError, r"with the same measures"),
    ({"a": [0.1, 0.2]}, {"a": [0.1]}, ValueError, r"Measure 'a' must give both models one size "
     r"per class, for the same classes. Got 2 and 1 sizes"),
    ({"a": []}, {"a": []}, ValueError, r"Got 0 and 0 sizes"),
    ({"a": ["big"]}, {"a": [0.1]}, TypeError, r"'baseline' must be a finite real"),
])
def test_compare_circuit_sizes_errors(baseline, modular, error, match):
    with pytest.raises(error, match=match):
        compare_circuit_sizes(baseline, modular)


@pytest.mark.parametrize("call, error, match", [
    (lambda m, X, y: class_examples(m, X, y, -1), ValueError,
     r"'label' must be an int >= 0. Got -1"),
    (lambda m, X, y: class_examples(m, X, y, 0, n_max=0), ValueError,
     r"'n_max' must be an int >= 1. Got 0"),
    (lambda m, X, y: class_examples(m, X, y, 0, batch_size=1.5), TypeError,
     r"'batch_size' must be an int >= 1. Got float 1.5"),
    (lambda m, X, y: class_examples(m, X, y[:3], 0), ValueError,
     r"'X' and 'y' must hold the same number of samples. Got 24 and 3"),
    (lambda m, X, y: class_circuits(m, X, y, method="acdc"), ValueError,
     r"'method' must be one of \('patching', 'pruning'\). Got 'acdc'"),
    (lambda m, X, y: class_circuits(m, X, y, layers=["conv"]), ValueError,
     r"'layers' must name nn.Linear"),
    (lambda m, X, y: prune_circuit(m, X, y, bisect="yes"), TypeError,
     r"'bisect' must be True or False"),
    (lambda m, X, y: jaccard_matrix({}), ValueError, r"'circuits' must be a non-empty dict"),
    (lambda m, X, y: jaccard_matrix({0: {"a": torch.ones(2, 2)}}), ValueError,
     r"'circuits' must be a non"),
    (lambda m, X, y: jaccard_matrix({0: {"a": torch.ones(2, 2, dtype=torch.bool)},
                                     1: {"a": torch.ones(2, 3, dtype=torch.bool)}}),
     ValueError, r"same layers and shapes"),
])
def test_errors(convnet, call, error, match):
    model, X, y = convnet
    with pytest.raises(error, match=match):
        call(model, X, y)
