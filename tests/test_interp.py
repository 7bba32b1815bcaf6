"""Tests of modlib.interp (and the pruning of modlib.circuits) on planted networks with known
modules."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import adjusted_rand_score as ari
from torch import nn

from modlib import clusterability, layer_matrix, spectral_cocluster
from modlib.analysis.circuits import effective_circuit_size, prune_circuit
from modlib.analysis.interp import (
    AblationResult,
    ablate,
    ablate_clusters,
    class_accuracy,
    cluster_ablation,
    control_verdict,
    record,
    specialization,
    specialization_summary,
)
from modlib.core.partition import Partition
from tests.nets import Twice

H = 8  # hidden neurons per module


def _block(rows: torch.Tensor, cols: torch.Tensor, g: torch.Generator, noise: float
           ) -> torch.Tensor:
    inside = rows[:, None] == cols[None, :]
    W = noise * torch.randn(len(rows), len(cols), generator=g)
    return torch.where(inside, 0.5 + torch.rand(W.shape, generator=g), W)


def planted(noise: float = 0.0, seed: int = 0) -> tuple[nn.Sequential, dict[str, Partition]]:
    """Two disjoint sub-networks: inputs 0-1 → hidden 0-7 → 0-7 → out 0; 2-3 → 8-15 → 8-15 → 1."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 2 * H, bias=False), nn.ReLU(),
                          nn.Linear(2 * H, 2 * H, bias=False), nn.ReLU(),
                          nn.Linear(2 * H, 2, bias=False))
    inp, hid, out = torch.tensor([0, 0, 1, 1]), torch.arange(2 * H) // H, torch.tensor([0, 1])
    with torch.no_grad():
        model[0].weight.copy_(_block(hid, inp, g, noise))
        model[2].weight.copy_(_block(hid, hid, g, noise))
        model[4].weight.copy_(_block(out, hid, g, noise))
    return model, {"0": Partition(hid, inp, 2), "2": Partition(hid, hid, 2)}


def toy_data(n: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c: large values on module c's two inputs, small positive ones on the others."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    big, small = 1 + torch.rand(n, 2, generator=g), 0.05 + 0.3 * torch.rand(n, 2, generator=g)
    X = torch.where(y[:, None] == 0, torch.cat([big, small], 1), torch.cat([small, big], 1))
    return X, y


@pytest.fixture
def net():
    return planted()


def _n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_record_returns_last_forward_and_removes_hooks(net):
    model, _ = net
    X, _ = toy_data()
    with record(model, ["0", "4"]) as acts:
        model(X[:3])
        out = model(X)
        assert _n_hooks(model) == 2
    assert _n_hooks(model) == 0
    assert acts["0"].shape == (64, 2 * H)
    assert torch.equal(acts["4"], out.detach())
    assert not acts["4"].requires_grad


def test_record_keeps_graph_when_asked(net):
    model, _ = net
    with record(model, "4", detach=False) as acts:
        model(toy_data()[0])
    assert acts["4"].requires_grad


@pytest.mark.parametrize("context", ["record", "ablate"])
def test_hooks_removed_after_exception(net, context):
    model, parts = net
    cm = record(model, ["0"]) if context == "record" else ablate(model, parts, 0)
    with pytest.raises(RuntimeError, match="inside"), cm:
        assert _n_hooks(model) > 0
        raise RuntimeError("inside the block")
    assert _n_hooks(model) == 0


def test_ablate_off_and_on_zero_the_right_neurons(net):
    model, parts = net
    X, _ = toy_data()
    with ablate(model, parts, 0), record(model, ["0", "4"]) as off:
        model(X)
    assert (off["0"][:, :H] == 0).all() and (off["0"][:, H:] != 0).any()
    assert (off["4"][:, 0] == 0).all()  # output 0 is fed by module 0 only
    with ablate(model, parts, 0, mode="on"), record(model, ["0", "4"]) as on:
        model(X)
    assert (on["0"][:, H:] == 0).all() and (on["0"][:, :H] != 0).any()
    assert (on["4"][:, 1] == 0).all()
    assert _n_hooks(model) == 0


def test_ablate_zeroes_conv_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    parts = {"0": Partition(torch.tensor([0, 1, 0, 1]), torch.tensor([0]), k=2)}
    with ablate(model, parts, 1), record(model, ["0"]) as acts:
        model(torch.randn(3, 1, 6, 6))
    assert (acts["0"][:, [1, 3]] == 0).all() and (acts["0"][:, [0, 2]] != 0).all()


def test_class_accuracy_counts_each_class():
    model = nn.Linear(3, 3)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))  # always predicts class 1
    loader = [(torch.zeros(2, 3), torch.tensor([0, 1])), (torch.zeros(2, 3), torch.tensor([1, 1]))]
    acc = class_accuracy(model, loader, 3)
    assert acc[:2].tolist() == [0.0, 1.0] and torch.isnan(acc[2])


def test_ablating_a_module_kills_its_class_only(net):
    model, parts = net
    result = ablate_clusters(model, parts, [toy_data()], n_classes=2)
    assert result.base.tolist() == [1.0, 1.0]
    assert result.labels == ("0", "1") and result.counts.tolist() == [32.0, 32.0]
    assert torch.equal(result.drop, torch.eye(2))
    assert result.specialization == pytest.approx(1.0)
    assert result.control < 0.5
    on = ablate_clusters(model, parts, [toy_data()], n_classes=2, mode="on")
    assert torch.equal(on.drop, 1 - torch.eye(2))  # keeping module c keeps class c only


def test_two_disjoint_subnetworks_show_two_clusters_that_specialise(net):
    """End to end: co-clustering finds the planted modules, and ablating them separates classes."""
    model, parts = net
    found = {}
    for name, truth in parts.items():
        W = layer_matrix(model.get_submodule(name)).detach()
        found[name] = spectral_cocluster(W, 2)
        assert ari(found[name].rows, truth.rows) == 1.0 and ari(found[name].cols, truth.cols) == 1.0
        assert float(clusterability(W, found[name])) == pytest.approx(1.0)
    # spectral labels are arbitrary per layer: relabel each to agree with the planted module ids
    aligned = {n: p if bool((p.rows == parts[n].rows).all()) else
               type(p)(1 - p.rows, 1 - p.cols, 2) for n, p in found.items()}
    result = ablate_clusters(model, aligned, [toy_data()], n_classes=2)
    assert result.specialization == pytest.approx(1.0)
    assert result.specialization > max(result.controls)


@pytest.mark.parametrize("layer", ["0", "2"])
def test_ablating_one_layer_alone_is_enough_in_disjoint_modules(net, layer):
    model, parts = net
    result = ablate_clusters(model, {layer: parts[layer]}, [toy_data()], n_classes=2)
    assert torch.equal(result.drop, torch.eye(2))  # per layer: the module is cut at that layer


@pytest.mark.parametrize("seed", range(5))
def test_random_partition_control_is_lower(net, seed):
    model, parts = net
    result = ablate_clusters(model, parts, [toy_data()], n_classes=2, seed=seed)
    assert result.specialization - result.control > 0.5


def test_several_controls_are_seeded_in_turn(net):
    model, parts = net
    data = [toy_data()]
    many = ablate_clusters(model, parts, data, n_classes=2, seed=3, n_controls=3)
    assert len(many.controls) == 3 and many.controls[0] == many.control
    for i, score in enumerate(many.controls):
        one = ablate_clusters(model, parts, data, n_classes=2, seed=3 + i)
        assert score == one.control
    assert torch.equal(many.control_drop, ablate_clusters(model, parts, data, n_classes=2,
                                                          seed=3).control_drop)
    default = ablate_clusters(model, parts, data, n_classes=2)
    assert default.controls == [default.control]


def test_specialization_scale():
    assert specialization(torch.eye(4)) == pytest.approx(1.0)
    assert specialization(torch.full((4, 3), 0.2)) == pytest.approx(0.0, abs=1e-6)
    assert specialization(torch.zeros(3, 5)) == 0.0  # nothing matters: no information
    assert specialization(torch.ones(1, 5)) == 0.0  # k = 1
    # class 0 depends on both clusters equally (0), class 1 on cluster 0 alone (1)
    assert specialization(torch.tensor([[0.5, 0.5], [0.5, 0.0]])) == pytest.approx(0.5)
    # one class, k = 4, drops spread over two clusters: 1 - log 2 / log 4
    assert specialization(torch.tensor([[0.3], [0.3], [0.0], [0.0]])) == pytest.approx(0.5)
    assert specialization(torch.tensor([[0.04, 0.0], [0.0, 0.0]])) == 0.0  # below min_drop
    nan = float("nan")  # a class absent from the data is left out
    assert specialization(torch.tensor([[1.0, nan], [0.0, nan]])) == pytest.approx(1.0)


def test_circuit_of_class_0_lies_in_module_0():
    model, _ = planted(noise=0.05)  # dense: every weight starts non-zero
    X, y = toy_data()
    X0, y0 = X[y == 0], y[y == 0]
    size = effective_circuit_size(model, X0, y0)
    assert 0 < size <= 0.5
    pruned = prune_circuit(model, X0, y0)
    assert (pruned[4].weight[1] == 0).all()  # output 1's weights are not in class 0's circuit
    assert (pruned[0].weight[:, 2:] == 0).all()  # nor are inputs 2-3
    assert (pruned[4].weight[0] != 0).any()
    assert (model[0].weight != 0).all()  # the model itself is unchanged
    loss = nn.functional.cross_entropy
    assert loss(pruned(X0), y0) <= loss(model(X0), y0) + 1e-6  # the circuit keeps the loss
    weights = [pruned[i].weight for i in (0, 2, 4)]
    assert size == sum(int((w != 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_chunked_pass_is_close_to_exact():
    model, _ = planted(noise=0.05)
    X, y = toy_data()
    X0, y0 = X[y == 0], y[y == 0]
    exact = effective_circuit_size(model, X0, y0, chunk=1)
    sizes = [effective_circuit_size(model, X0, y0, chunk=c) for c in (8, 64)]
    assert all(abs(s - exact) <= 0.1 for s in sizes)
    coarse = effective_circuit_size(model, X0, y0, chunk=64, bisect=False)
    assert coarse >= min(sizes)


def test_shared_layer_is_refused():
    X, y = torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"Layer 'fc' ran 2 times in one forward pass"):
        effective_circuit_size(Twice(), X, y)


def test_ablate_refuses_a_layer_without_weights(net):
    model, parts = net
    with pytest.raises(TypeError, match=r"No weight graph for module of type ReLU"):
        ablate(model, {"1": parts["0"]}, 0).__enter__()
    assert _n_hooks(model) == 0


def _bad_part() -> dict[str, Partition]:
    return {"0": Partition(torch.tensor([0, 1]), torch.tensor([0, 0, 1, 1]), k=2)}


@pytest.mark.parametrize("call, match", [
    (lambda m, p: record(m, ["nope"]).__enter__(),
     r"'names' names layers that are not in the model: \['nope'\]. Known: \['0', '1', "),
    (lambda m, p: ablate(m, {"nope": p["0"]}, 0).__enter__(),
     r"'partitions' names layers that are not in the model: \['nope'\]"),
    (lambda m, p: ablate(m, p, 0, mode="both").__enter__(),
     r"'mode' must be one of \('off', 'on'\). Got 'both'"),
    (lambda m, p: ablate(m, p, 2).__enter__(), r"'cluster' must be an int >= 0 and <= 1. Got 2"),
    (lambda m, p: ablate(m, {}, 0).__enter__(), r"'partitions' must be a non-empty dict"),
    (lambda m, p: ablate(m, {"0": p["0"], "2": Partition(torch.zeros(16, dtype=torch.long),
                                                           torch.zeros(16, dtype=torch.long), 3)},
                         0).__enter__(), r"same k"),
    (lambda m, p: ablate(m, _bad_part(), 0).__enter__(), r"has 2 rows; layer '0' has 16"),
    (lambda m, p: class_accuracy(m, [toy_data()], 0), r"'n_classes' must be an int >= 1. Got 0"),
    (lambda m, p: class_accuracy(m, [toy_data()], 1), r"Labels must lie in \[0, 1\)"),
    (lambda m, p: ablate_clusters(m, p, [toy_data()], n_classes=2, mode="x"), r"'mode'"),
    (lambda m, p: ablate_clusters(m, p, [toy_data()], n_classes=2, n_controls=0),
     r"'n_controls' must be an int >= 1. Got 0"),
    (lambda m, p: specialization(torch.ones(3)), r"'drop' must be 2-D"),
    (lambda m, p: specialization(torch.ones(2, 2), min_drop=0),
     r"'min_drop' must be a finite real > 0 and <= 1. Got 0.0"),
    (lambda m, p: cluster_ablation(m, p, lambda: torch.ones(2), n_controls=0),
     r"'n_controls' must be an int >= 1. Got 0"),
    (lambda m, p: control_verdict(0.5, []), r"'controls' is empty"),
    (lambda m, p: effective_circuit_size(m, torch.ones(3, 4), torch.zeros(2, dtype=torch.long)),
     r"'X' and 'y' must hold the same number of samples. Got 3 and 2"),
    (lambda m, p: effective_circuit_size(m, *toy_data(), tol=-1),
     r"'tol' must be a finite real >= 0. Got -1.0"),
    (lambda m, p: effective_circuit_size(m, *toy_data(), chunk=0), r"'chunk' must be an int >= 1"),
    (lambda m, p: effective_circuit_size(m, *toy_data(), layers=["1"]),
     r"'layers' must name nn.Linear modules.*known: \['0', '2', '4'\]"),
])
def test_errors(net, call, match):
    model, parts = net
    with pytest.raises(ValueError, match=match):
        call(model, parts)
    assert _n_hooks(model) == 0


# --- the one ablation loop and its verdicts -----------------------------------------------------


def test_cluster_ablation_signs_a_loss_so_that_positive_means_worse(net):
    """A metric where lower is better (a loss) gives the same drops as its negation where higher
    is better (an accuracy-like score): positive means the ablation hurts."""
    model, parts = net
    X, y = toy_data()

    def loss() -> torch.Tensor:  # (2,): loss on each class's examples
        with torch.no_grad():
            each = nn.functional.cross_entropy(model(X), y, reduction="none")
        return torch.stack([each[y == c].mean() for c in (0, 1)])

    as_loss = cluster_ablation(model, parts, loss, lower_is_better=True)
    as_score = cluster_ablation(model, parts, lambda: -loss())
    assert torch.equal(as_loss.drop, as_score.drop)
    assert torch.equal(as_loss.base, loss()) and torch.equal(as_score.base, -loss())
    assert (as_loss.drop.diag() > 0).all()  # removing module c makes class c's loss rise
    # removing module 0 only lowers logit 0, which cannot make class 1's loss rise
    assert as_loss.drop[0, 1] <= 1e-6 and as_loss.drop[1, 0] <= 1e-6
    assert as_loss.specialization == pytest.approx(1.0)


def test_cluster_ablation_scores_only_the_chosen_columns(net):
    model, parts = net
    fixed = torch.tensor([1.0, 1.0, 1.0])
    calls = []

    def measure() -> torch.Tensor:  # column 2: always the same; columns 0-1: class accuracy
        calls.append(1)
        return torch.cat([class_accuracy(model, [toy_data()], 2), fixed[2:]])

    every = cluster_ablation(model, parts, measure, n_controls=2, labels=["a", "b", "c"],
                             counts=fixed)
    assert len(calls) == (1 + 2) * 2 + 1
    assert torch.equal(every.drop, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert every.labels == ("a", "b", "c") and every.counts is fixed
    only_2 = cluster_ablation(model, parts, measure, scored=torch.tensor([False, False, True]))
    assert only_2.specialization == 0.0 and every.specialization == pytest.approx(1.0)
    none = cluster_ablation(model, parts, measure, scored=torch.zeros(3, dtype=torch.bool))
    assert none.specialization == none.control == 0.0


@pytest.mark.parametrize("score, controls, verdict", [
    (0.9, [0.1, 0.5, 0.3], "above every control"),
    (0.05, [0.1, 0.5], "below every control"),
    (0.3, [0.1, 0.5], "inside the controls' range"),
    (0.5, [0.1, 0.5], "inside the controls' range"),  # a tie with the highest is not above
    (0.1, [0.1], "inside the controls' range"),
])
def test_control_verdict(score, controls, verdict):
    assert control_verdict(score, controls) == verdict


def _result(score: float, controls: list[float]) -> AblationResult:
    return AblationResult(drop=torch.zeros(2, 3), base=torch.ones(3), specialization=score,
                          control=controls[0], control_drop=torch.zeros(2, 3), controls=controls)


@pytest.mark.parametrize("modular, baseline, start", [
    (0.8, 0.2, "Here the modular model's clusters specialise beyond chance and the baseline's"),
    (0.8, 0.7, "Here both models score above their controls: modular training is not"),
    (0.2, 0.2, "Here neither model's clusters specialise beyond chance."),
    (0.2, 0.8, "Here only the baseline's clusters score above their controls."),
    (0.6, 0.1, "Here neither"),  # 0.6 equals the highest control: not above it
])
def test_specialization_summary_is_keyed_on_both_models(modular, baseline, start):
    controls = [0.3, 0.6]
    text = specialization_summary(_result(baseline, controls), _result(modular, controls))
    assert text.startswith(start) and text.endswith(".")
