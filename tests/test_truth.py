"""Tests of modlib.analysis.truth: the planted circuits are the truth, and what each circuit
measure recovers of them.

The thresholds were measured on seeds 0-4 (precision / recall, min-max over the seeds):

=========  ======  ======================  ======================
case       margin  patching (keep 0.9)     greedy pruning (tol 0)
=========  ======  ======================  ======================
unique     3       1.00 / 0.62-0.73        1.00 / 1.00
redundant  3       0.06-0.28 / 0.67-0.72   1.00 / 0.17-0.22
unique     40      0.04 / 1.00             1.00 / 0.42-0.65
=========  ======  ======================  ======================

Patching with ``keep=1.0`` recovers the unique circuit exactly; greedy pruning does with
``chunk=1`` and ``chunk=64`` alike.
"""

from __future__ import annotations

import pytest
import torch

from modlib.analysis.circuits import class_circuits
from modlib.analysis.patching import circuit, edge_attributions
from modlib.analysis.truth import PlantedCircuit, circuit_recovery, planted_circuit

SEEDS = range(5)


def _found(net: PlantedCircuit, method: str, **kwargs) -> dict[str, torch.Tensor]:
    return class_circuits(net.model, net.X, net.y, method=method, **kwargs)[net.label]


def _margins(logits: torch.Tensor, label: int) -> torch.Tensor:
    other = torch.cat([logits[:, :label], logits[:, label + 1:]], 1).amax(1)
    return logits[:, label] - other


@torch.no_grad()
def _masked_logits(net: PlantedCircuit, keep: dict[str, torch.Tensor]) -> torch.Tensor:
    saved = {n: net.model.get_submodule(n).weight.clone() for n in keep}
    try:
        for n, m in keep.items():
            net.model.get_submodule(n).weight.mul_(m)
        return net.model(net.X)
    finally:
        for n, w in saved.items():
            net.model.get_submodule(n).weight.copy_(w)


def _edges(truth: dict[str, torch.Tensor]) -> list[tuple[str, int, int]]:
    return [(n, i, j) for n, m in truth.items() for i, j in m.nonzero().tolist()]


def _without(truth: dict[str, torch.Tensor], edges) -> dict[str, torch.Tensor]:
    keep = {n: torch.ones_like(m) for n, m in truth.items()}
    for n, i, j in edges:
        keep[n][i, j] = False
    return keep


# --- the truth is the truth -----------------------------------------------------------------

@pytest.mark.parametrize("case", ["unique", "redundant"])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_truth_alone_gives_exactly_the_models_logits(case, seed):
    """Sufficient, and every other edge unused: zeroing all of them changes no logit at all."""
    net = planted_circuit(case, seed=seed)
    with torch.no_grad():
        full = net.model(net.X)
    assert torch.equal(_masked_logits(net, net.truth), full)
    assert bool((_margins(full, net.label) > 0).all())  # the label is right on every example


@pytest.mark.parametrize("seed", SEEDS)
def test_every_edge_of_the_unique_truth_is_necessary(seed):
    net = planted_circuit("unique", seed=seed)
    with torch.no_grad():
        full = _margins(net.model(net.X), net.label)
    for edge in _edges(net.truth):
        dropped = _margins(_masked_logits(net, _without(net.truth, [edge])), net.label)
        assert bool((dropped < full).all()), edge  # lower on every example


@pytest.mark.parametrize("seed", SEEDS)
def test_the_truth_hides_among_larger_weights(seed):
    """Magnitude does not reveal it: the largest weights, as many as the truth's, miss most."""
    net = planted_circuit("unique", seed=seed)
    weights = {n: net.model.get_submodule(n).weight.detach().abs() for n in net.truth}
    flat = torch.cat([w.flatten() for w in weights.values()])
    n_true = sum(int(m.sum()) for m in net.truth.values())
    cut = flat.topk(n_true).values[-1]
    largest = {n: w >= cut for n, w in weights.items()}
    precision, recall = circuit_recovery(largest, net.truth)
    assert precision < 0.5 and recall < 0.5
    smallest_true = min(float(weights[n][m].min()) for n, m in net.truth.items())
    assert smallest_true < 0.05 and float((flat > 1.0).float().mean()) > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_either_redundant_path_alone_gives_the_same_logits(seed):
    net = planted_circuit("redundant", seed=seed)
    with torch.no_grad():
        full = net.model(net.X)
    first = net.truth["0"].nonzero().tolist()  # the path edges of the first layer
    units = sorted({i for i, _ in first})
    paths = [[("0", i, j) for i, j in first if i in pair] for pair in _pairs(net, units)]
    for path in paths:
        assert torch.allclose(_masked_logits(net, _without(net.truth, path)), full)
    both = _masked_logits(net, _without(net.truth, paths[0] + paths[1]))
    assert bool((_margins(both, net.label) < 0.5 * _margins(full, net.label)).all())


def _pairs(net: PlantedCircuit, units: list[int]) -> list[list[int]]:
    """The two paths' units: those that read the same input features."""
    reads = {i: frozenset(net.truth["0"][i].nonzero().flatten().tolist()) for i in units}
    groups: dict[frozenset, list[int]] = {}
    for i, feats in reads.items():
        groups.setdefault(feats, []).append(i)
    assert len(groups) == 2
    return list(groups.values())


def test_construction_is_seeded_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = planted_circuit(seed=3), planted_circuit(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.X, b.X) and torch.equal(a.model[0].weight, b.model[0].weight)
    assert not torch.equal(a.X, planted_circuit(seed=4).X)


@pytest.mark.parametrize("n_classes", [2, 6])
def test_other_sizes(n_classes):
    net = planted_circuit(n_classes=n_classes, n_examples=5, margin=2.0)
    assert net.model(net.X).shape == (5, n_classes)
    assert sum(int(m.sum()) for m in net.truth.values()) == 26
    with torch.no_grad():
        margins = _margins(net.model(net.X), 0)
    assert float(margins.mean()) == pytest.approx(2.0, rel=1e-4)


# --- what each measure recovers -------------------------------------------------------------

@pytest.mark.parametrize("seed, chunk", [(s, 64) for s in SEEDS] + [(0, 1), (1, 1)])
def test_pruning_recovers_the_unique_circuit_exactly(seed, chunk):
    """Weight by weight (``chunk=1``, the paper's pass, slow) and in groups alike."""
    net = planted_circuit("unique", seed=seed)
    assert circuit_recovery(_found(net, "pruning", chunk=chunk), net.truth) == (1.0, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_patching_finds_only_true_edges_but_not_the_weak_ones(seed):
    """keep=0.9 stops at 90 % of the margin: the weakest true edges are left out by design."""
    net = planted_circuit("unique", seed=seed)
    precision, recall = circuit_recovery(_found(net, "patching"), net.truth)
    assert precision == 1.0 and 0.55 <= recall < 0.85  # measured 0.62-0.73
    assert circuit_recovery(circuit(net.model, net.X, net.y, keep=1.0), net.truth) == (1.0, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_redundant_paths_the_measures_disagree(seed):
    """Greedy keeps one sufficient piece; patching cannot rank the paths and takes in others."""
    net = planted_circuit("redundant", seed=seed)
    p_patch, r_patch = circuit_recovery(_found(net, "patching"), net.truth)
    p_prune, r_prune = circuit_recovery(_found(net, "pruning"), net.truth)
    assert p_prune == 1.0 and r_prune <= 0.3  # measured 0.17-0.22
    assert p_patch <= 0.35 and r_patch >= 0.6  # measured 0.06-0.28 and 0.67-0.72


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_why_patching_is_blind_to_redundant_paths(seed):
    """At the gate the gradients through its two units cancel: the paths' attributions are 0."""
    for case, blind in (("unique", False), ("redundant", True)):
        net = planted_circuit(case, seed=seed)
        A = edge_attributions(net.model, net.X, net.y)["0"]
        assert bool((A[net.truth["0"]] == 0).all()) is blind
        assert bool((A[~net.truth["0"]] == 0).all())  # unused edges: exactly 0 in both


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_why_pruning_drops_a_path(seed):
    """Greedy first drops the gate's negative edge (the loss falls), then spends that slack."""
    net = planted_circuit("redundant", seed=seed)
    found = _found(net, "pruning")
    last = net.model[4].weight.detach()
    negative = net.truth["4"] & (last < 0)
    assert int(negative.sum()) == 1 and not bool((found["4"] & negative).any())


@pytest.mark.parametrize("seed", SEEDS)
def test_a_saturated_softmax_blinds_both_measures(seed):
    """Margin 40: float32 gives p = 1, loss 0 and a zero gradient for every example."""
    net = planted_circuit("unique", seed=seed, margin=40.0)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(net.model(net.X), net.y)
    assert float(loss) == 0.0
    assert all(bool((a == 0).all()) for a in edge_attributions(net.model, net.X, net.y).values())
    p_patch, r_patch = circuit_recovery(_found(net, "patching"), net.truth)
    p_prune, r_prune = circuit_recovery(_found(net, "pruning"), net.truth)
    assert p_patch < 0.1 and r_patch == 1.0  # measured 0.04: nearly every edge, by index
    assert p_prune == 1.0 and r_prune < 0.75  # measured 0.42-0.65: true edges pruned away


# --- circuit_recovery -------------------------------------------------------------------------

def test_recovery_of_right_and_wrong_masks():
    net = planted_circuit()
    truth = net.truth
    everything = {n: torch.ones_like(m) for n, m in truth.items()}
    nothing = {n: torch.zeros_like(m) for n, m in truth.items()}
    assert circuit_recovery(truth, truth) == (1.0, 1.0)
    assert circuit_recovery({n: ~m for n, m in truth.items()}, truth) == (0.0, 0.0)
    assert circuit_recovery(everything, truth) == (26 / 640, 1.0)
    assert circuit_recovery(nothing, truth) == (0.0, 0.0)
    half = {n: m.clone() for n, m in truth.items()}
    half["0"][:] = False  # the 16 edges of the first layer missed
    assert circuit_recovery(half, truth) == (1.0, pytest.approx(10 / 26))


@pytest.mark.parametrize("found, truth, error, match", [
    ({"a": torch.ones(2, 2)}, {"a": torch.ones(2, 2, dtype=torch.bool)}, TypeError,
     r"'found\['a'\]' must be a bool tensor. Got dtype torch.float32"),
    ({"a": torch.ones(2, 2, dtype=torch.bool)}, {"b": torch.ones(2, 2, dtype=torch.bool)},
     ValueError, r"'found' must have the layers and shapes of 'truth'. Got \{'a': \(2, 2\)\}"),
    ({"a": torch.ones(2, 2, dtype=torch.bool)}, {"a": torch.ones(2, 3, dtype=torch.bool)},
     ValueError, r"'found' must have the layers and shapes of 'truth'"),
    ({"a": torch.ones(2, dtype=torch.bool)}, {"a": torch.ones(2, dtype=torch.bool)},
     ValueError, r"'found\['a'\]' must be 2-D. Got shape \(2,\)"),
    ({"a": torch.ones(2, 2, dtype=torch.bool)}, {"a": torch.zeros(2, 2, dtype=torch.bool)},
     ValueError, r"'truth' has no edge in \['a'\]: recall is undefined"),
    ([], {"a": torch.ones(2, 2, dtype=torch.bool)}, TypeError, r"'found' must be a non-empty"),
    ({}, {"a": torch.ones(2, 2, dtype=torch.bool)}, ValueError, r"'found' must be a non-empty"),
])
def test_recovery_refuses_masks_that_do_not_match(found, truth, error, match):
    with pytest.raises(error, match=match):
        circuit_recovery(found, truth)


def test_a_hand_made_planted_circuit_is_checked():
    net = planted_circuit()
    with pytest.raises(ValueError, match=r"'truth' must have the layers and shapes of the "
                                         r"model's Linear weights"):
        PlantedCircuit(net.model, net.X, net.y, 0, {"0": net.truth["0"]}, "unique")
    with pytest.raises(TypeError, match=r"'model' must be a torch.nn.Module"):
        PlantedCircuit(None, net.X, net.y, 0, net.truth, "unique")
