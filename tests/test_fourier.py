"""Tests of modlib.fourier: the basis, planted frequencies, and a small grokked transformer."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from modlib import TrainConfig, contiguous_partition, evaluate, fit
from modlib.analysis.fourier import (
    ablation_spectra,
    activation_table,
    all_pairs,
    basis_labels,
    cluster_frequencies,
    cluster_spectra,
    embedding_frequencies,
    energy_kept,
    fourier_basis,
    frequency_norms,
    key_frequencies,
    logit_frequencies,
    neuron_frequencies,
    selective_clusters,
    table_frequencies,
)
from modlib.analysis.interp import ablate
from modlib.core.partition import Partition
from modlib.training.data import modular_addition
from modlib.training.models import ModAddTransformer

P = 17


def _wave(p: int, f: int, x: torch.Tensor, phase: float = 0.0) -> torch.Tensor:
    return torch.cos(2 * math.pi * f * x / p + phase)


@pytest.fixture(scope="module")
def grokked() -> tuple[ModAddTransformer, float]:
    """p = 17, d_model 32, full batch, 80 % train: generalises in ~600 epochs (~5 s on a CPU).

    Weight decay 3 and lr 1e-2 instead of the course's 1 and 3e-3 (``reproduce("modadd")``):
    with those, this small model had not generalised after 1,500 epochs (test accuracy 0.72).
    """
    data = modular_addition(P, train_frac=0.8, seed=0)
    torch.manual_seed(0)
    model = ModAddTransformer(P, d_model=32, n_heads=4, d_mlp=32)
    train = DataLoader(data.train, batch_size=len(data.train))
    test = DataLoader(data.test, batch_size=len(data.test))
    cfg = TrainConfig(epochs=700, lr=1e-2, weight_decay=3.0, betas=(0.9, 0.98), seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend (70 s instead of 5 s)
    try:
        fit(model, train, config=cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    return model, evaluate(model, test)["accuracy"]


@pytest.mark.parametrize("p", [3, 5, 13, 17])
def test_basis_is_orthonormal_and_labelled(p):
    B = fourier_basis(p)
    assert B.shape == (p, p)
    torch.testing.assert_close(B @ B.T, torch.eye(p), atol=1e-5, rtol=0)
    labels = basis_labels(p)
    assert len(labels) == p and labels[0] == (0, "cos")
    x = torch.arange(p, dtype=torch.float64)
    for row, (f, kind) in zip(B, labels, strict=True):  # each row is the wave its label names
        wave = torch.cos(2 * math.pi * f * x / p) if kind == "cos" else torch.sin(
            2 * math.pi * f * x / p)
        assert abs(torch.nn.functional.cosine_similarity(row.double(), wave, dim=0)) > 0.9999


def test_planted_embedding_is_recovered():
    model = ModAddTransformer(P, d_model=16, n_heads=4, d_mlp=16)
    x = torch.arange(P, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # 4 dimensions per planted frequency: cos and sin, two random phases
        cols = [_wave(P, f, x, float(torch.rand(1, generator=g)) * 6.0)
                for f in (3, 7) for _ in range(4)]
        cols += [3.0 * _wave(P, 5, x, float(torch.rand(1, generator=g))) for _ in range(4)]
        cols += [torch.full((P,), 0.5)] * 4  # a constant, which is no frequency
        model.embed.weight[:P] = torch.stack(cols, 1)
    norms = embedding_frequencies(model)
    assert norms.shape == ((P - 1) // 2 + 1,)
    assert set(torch.nonzero(norms[1:] > 1e-4).flatten().add(1).tolist()) == {3, 5, 7}
    assert key_frequencies(model, top=1) == [5]
    assert set(key_frequencies(model, threshold=0.05)) == {3, 5, 7}
    assert key_frequencies(model) == [5]  # 3 and 7 hold 1/9 of 5's energy


def test_random_embedding_has_no_key_frequencies():
    torch.manual_seed(0)
    model = ModAddTransformer(P, d_model=64, n_heads=4, d_mlp=16)
    assert len(key_frequencies(model)) >= 6  # of 8: energy is spread evenly


@pytest.mark.parametrize("f", [1, 4, 8])
def test_neuron_of_one_frequency(f):
    a = torch.arange(P, dtype=torch.float64)
    s = a[:, None] + a[None, :]
    table = torch.stack([_wave(P, f, s), _wave(P, f, a[:, None] + 0 * s) + 2.0,
                         torch.relu(_wave(P, f, s)), torch.zeros(P, P)], -1)  # (P, P, 4)
    energy, variance = table_frequencies(table)
    share = energy / variance.clamp_min(1e-12)[:, None]
    torch.testing.assert_close(share[0], torch.eye((P - 1) // 2 + 1)[f].float())
    torch.testing.assert_close(share[1], torch.eye((P - 1) // 2 + 1)[f].float())
    assert share[2].argmax() == f and share[2, f] > 0.5  # ReLU adds harmonics 2f, 3f, ...
    assert energy[3].abs().sum() == 0 and variance[3] == 0  # a dead neuron


def test_grokked_model_has_few_key_frequencies(grokked):
    model, accuracy = grokked
    assert accuracy >= 0.9  # it generalised
    keys = key_frequencies(model)
    n_freq = (P - 1) // 2
    assert 1 <= len(keys) <= n_freq / 3
    shares = neuron_frequencies(model)
    assert shares.shape == (32, n_freq + 1)
    assert (shares >= 0).all() and (shares.sum(1) <= 1 + 1e-4).all() and (shares[:, 0] == 0).all()
    alive = shares.sum(1) > 0
    assert alive.sum() >= 8
    assert shares[alive].sum(1).mean() > 0.8  # neurons are well explained by single frequencies
    dominant = shares[alive].argmax(1)
    assert torch.isin(dominant, torch.tensor(keys)).float().mean() > 0.8  # ... the key ones
    clusters = cluster_frequencies(model, contiguous_partition(32, 32, 4), top=2)
    assert sorted(clusters) == [0, 1, 2, 3]
    assert all(c and c[0] in keys for c in clusters.values())


def test_duplicates_and_shuffled_pairs_give_the_same_shares(grokked):
    model, _ = grokked
    X = all_pairs(P)
    shuffled = torch.cat([X, X[:5]])[torch.randperm(P * P + 5, generator=torch.Generator())]
    torch.testing.assert_close(neuron_frequencies(model, shuffled), neuron_frequencies(model, X))


def test_frequency_norms_of_planted_waves():
    x = torch.arange(P, dtype=torch.float32)
    W = torch.stack([3 * _wave(P, 2, x, 0.4), _wave(P, 6, x, 1.0), torch.full((P,), 2.0)], 1)
    norms = frequency_norms(W)
    assert norms.shape == ((P - 1) // 2 + 1,)
    torch.testing.assert_close(norms.pow(2).sum(), W.pow(2).sum())  # Parseval
    expected = torch.zeros_like(norms)
    expected[0], expected[2], expected[6] = 2 * P**0.5, 3 * (P / 2) ** 0.5, (P / 2) ** 0.5
    torch.testing.assert_close(norms, expected, atol=1e-4, rtol=1e-4)
    model = ModAddTransformer(P, d_model=8, d_mlp=8)
    torch.testing.assert_close(embedding_frequencies(model),
                               frequency_norms(model.embed.weight.detach()[:P]))


def test_activation_table_is_the_mlp_output_at_equals(grokked):
    model, _ = grokked
    table = activation_table(model)
    assert table.shape == (P, P, 32) and (table >= 0).all()  # ReLU outputs
    acts = {}
    hook = model.mlp.act.register_forward_hook(lambda m, i, o: acts.setdefault("out", o))
    try:
        with torch.no_grad():
            model(torch.tensor([[3, 5, P]]))
    finally:
        hook.remove()
    torch.testing.assert_close(table[3, 5], acts["out"][0, -1])


def test_cluster_spectra_and_key_frequencies_per_cluster(grokked):
    model, _ = grokked
    part = contiguous_partition(32, 32, 4)
    spectra = cluster_spectra(model, part)
    assert spectra.shape == (4, (P - 1) // 2 + 1)
    assert (spectra >= 0).all() and (spectra.sum(1) <= 1 + 1e-4).all()
    shares = neuron_frequencies(model)  # a one-neuron cluster's spectrum is its neuron's shares
    alive = int(torch.nonzero(shares.sum(1) > 0)[0])
    one = Partition(torch.where(torch.arange(32) == alive, 0, 1), torch.zeros(32).long(), k=2)
    torch.testing.assert_close(cluster_spectra(model, one)[0], shares[alive])
    top1 = cluster_frequencies(model, part, top=1)
    keys = cluster_frequencies(model, part, top=None, threshold=0.5)
    everything = cluster_frequencies(model, part, top=None, threshold=1e-9)
    for c in range(4):
        assert keys[c][:1] == top1[c] == [int(spectra[c].argmax())]
        assert all(spectra[c, f] >= 0.5 * spectra[c].max() for f in keys[c])
        assert set(keys[c]) <= set(everything[c])
    assert cluster_frequencies(model, part, top=None, threshold=1.0) == top1


def test_logit_frequencies_find_the_key_frequencies_and_lose_them_under_ablation(grokked):
    model, _ = grokked
    energy = logit_frequencies(model)
    assert energy.shape == ((P - 1) // 2 + 1,) and energy[0] == 0 and (energy >= 0).all()
    strongest = int(energy.argmax())
    assert strongest in key_frequencies(model)
    X = all_pairs(P)
    with torch.no_grad():
        logits = model(X)  # (P * P, P)
    assert float(energy.sum()) <= float(logits.var(0, unbiased=False).sum()) * (1 + 1e-4)
    everyone = {"mlp.fc_in": Partition(torch.zeros(32, dtype=torch.long),
                                       torch.zeros(32, dtype=torch.long), k=1)}
    with ablate(model, everyone, 0):  # no MLP: the key frequency leaves the logits
        assert logit_frequencies(model)[strongest] < 0.5 * energy[strongest]
    torch.testing.assert_close(logit_frequencies(model), energy)  # the hook is gone


def test_ablation_spectra_measure_the_intact_and_each_ablated_model(grokked):
    model, accuracy = grokked
    data = modular_addition(P, train_frac=0.8, seed=0)
    part = contiguous_partition(32, 32, 4)
    parts = {"mlp.fc_in": part}
    acc, energy = ablation_spectra(model, parts, data.test)
    assert len(acc) == 5 and energy.shape == (5, (P - 1) // 2 + 1)
    assert acc[0] == accuracy  # the intact model first: modlib.evaluate on the held-out pairs
    assert torch.equal(energy[0], logit_frequencies(model))
    test = DataLoader(data.test, batch_size=len(data.test))
    for c in range(4):
        with ablate(model, parts, c):
            assert acc[1 + c] == evaluate(model, test)["accuracy"]
            assert torch.equal(energy[1 + c], logit_frequencies(model))
    assert acc == ablation_spectra(model, parts, data.test.tensors)[0]  # (X, y) works alike
    assert torch.equal(logit_frequencies(model), energy[0])  # nothing stays ablated
    everyone = {"mlp.fc_in": Partition(torch.zeros(32, dtype=torch.long),
                                       torch.zeros(32, dtype=torch.long), k=1)}
    acc1, energy1 = ablation_spectra(model, everyone, data.test)
    strongest = int(energy[0].argmax())
    assert acc1[1] < 0.5 * acc1[0]  # without its MLP the model fails ...
    assert energy1[1, strongest] < 0.5 * energy1[0, strongest]  # ... and loses its frequency


# Energy per frequency (columns 0..4) intact and without cluster 0, 1, 2; key frequencies 1, 2, 3.
_ENERGY = torch.tensor([[0.0, 4.0, 4.0, 2.0, 1.0],
                        [0.0, 1.0, 4.0, 2.0, 1.0],  # loses 3/4 at f1, nothing at f2, f3
                        [0.0, 4.0, 3.9, 2.0, 1.0],  # keeps 0.975 at f2: too little lost
                        [0.0, 2.0, 4.0, 1.0, 1.0]])  # loses 1/2 at f3, 1/4 at f1 + f2
_KEYS = {0: [1], 1: [2], 2: [3]}


def test_energy_kept_at_own_and_other_frequencies():
    own, other = energy_kept(_ENERGY, _KEYS)
    assert own == pytest.approx([0.25, 0.975, 0.5])
    assert other == pytest.approx([(4 + 2) / (4 + 2), (4 + 2) / (4 + 2), (2 + 4) / (4 + 4)])
    own, other = energy_kept(_ENERGY, [[1, 2], [2], []])  # a list works; shared and no keys
    assert own[0] == pytest.approx(5 / 8) and math.isnan(other[0])  # f2 is its own too
    assert other[1] == pytest.approx(1.0) and math.isnan(own[2])


def test_selective_clusters_on_a_known_energy():
    assert selective_clusters(_ENERGY, _KEYS) == [True, False, True]  # 2: 1/2 >= 2 × 1/4
    assert selective_clusters(_ENERGY, _KEYS, ratio=2.5) == [True, False, False]
    assert selective_clusters(_ENERGY, _KEYS, max_kept=0.2) == [False, False, False]
    assert selective_clusters(_ENERGY, _KEYS, max_kept=0.98) == [True, True, True]
    assert selective_clusters(_ENERGY, [[1, 2], [2], []]) == [False, False, False]


def test_cluster_frequencies_empty_cluster():
    model = ModAddTransformer(5, d_model=8, d_mlp=8)
    part = Partition(torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long), k=2)
    out = cluster_frequencies(model, part, top=1)
    assert out[1] == [] and len(out[0]) == 1


_MODEL = ModAddTransformer(5, d_model=8, d_mlp=8)
_PART = contiguous_partition(8, 8, 2)
_TEST = (all_pairs(5), all_pairs(5)[:, :2].sum(1) % 5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: fourier_basis(4), ValueError, r"'p' must be an odd int >= 3\. Got 4"),
    (lambda: fourier_basis(1), ValueError, r"'p' must be an odd int >= 3\. Got 1"),
    (lambda: fourier_basis(5.0), TypeError, r"'p' must be an int\. Got float"),
    (lambda: basis_labels(True), TypeError, r"'p' must be an int\. Got bool"),
    (lambda: embedding_frequencies(torch.nn.Linear(2, 2)), TypeError,
     r"'model' must be a modlib ModAddTransformer\. Got Linear"),
    (lambda: embedding_frequencies(ModAddTransformer(4, d_model=8, d_mlp=8)), ValueError,
     r"'p' must be an odd int >= 3\. Got 4"),
    (lambda: key_frequencies(_MODEL, top=3), ValueError,
     r"'top' must be an int >= 1 and <= 2 or None\. Got 3"),
    (lambda: key_frequencies(_MODEL, top=1.0), TypeError,
     r"'top' must be an int >= 1 and <= 2 or None\. Got float 1.0"),
    (lambda: key_frequencies(_MODEL, threshold=0), ValueError,
     r"'threshold' must be a finite real > 0 and <= 1\. Got 0.0"),
    (lambda: key_frequencies(_MODEL, threshold="a"), TypeError,
     r"'threshold' must be a finite real > 0 and <= 1\. Got str 'a'"),
    (lambda: table_frequencies(torch.zeros(5, 5, 2, dtype=torch.long)), TypeError,
     r"'table' must be a floating-point tensor\. Got torch.int64"),
    (lambda: table_frequencies(torch.zeros(4, 4, 2)), ValueError,
     r"'table' must have shape \(p, p, n\) with odd p >= 3\. Got \(4, 4, 2\)"),
    (lambda: table_frequencies(torch.full((3, 3, 1), float("nan"))), ValueError,
     r"'table' must be finite"),
    (lambda: neuron_frequencies(_MODEL, all_pairs(5).float()), TypeError,
     r"'X' must be an integer tensor of tokens\. Got torch.float32"),
    (lambda: neuron_frequencies(_MODEL, all_pairs(5)[:, :2]), ValueError,
     r"'X' must have shape \(N, 3\) with N >= 1\. Got \(25, 2\)"),
    (lambda: neuron_frequencies(_MODEL, all_pairs(5)[:-1]), ValueError,
     r"'X' must hold every pair \(a, b\) of Z_5, as from all_pairs\(5\)\. Got 24 of 25 pairs"),
    (lambda: neuron_frequencies(_MODEL, all_pairs(5) + 1), ValueError,
     r"'X' numbers a, b must lie in \[0, 5\)\. Got values in \[1, 5\]"),
    (lambda: cluster_frequencies(_MODEL, "blocks"), TypeError,
     r"'partition' must be a modlib Partition\. Got str 'blocks'"),
    (lambda: cluster_frequencies(_MODEL, contiguous_partition(8, 4, 2)), ValueError,
     r"'mlp.fc_in.weight' of shape \(8, 8\) does not fit a partition of 8 rows and 4 columns"),
    (lambda: cluster_frequencies(_MODEL, _PART, top=0), ValueError,
     r"'top' must be an int >= 1 and <= 2 or None\. Got 0"),
    (lambda: cluster_frequencies(_MODEL, _PART, top=2.0), TypeError,
     r"'top' must be an int >= 1 and <= 2 or None\. Got float 2.0"),
    (lambda: cluster_frequencies(_MODEL, _PART, top=None, threshold=1.5), ValueError,
     r"'threshold' must be a finite real > 0 and <= 1\. Got 1.5"),
    (lambda: cluster_spectra(_MODEL, None), TypeError,
     r"'partition' must be a modlib Partition\. Got None\."),
    (lambda: frequency_norms(torch.zeros(5, 2, dtype=torch.long)), TypeError,
     r"'W' must be a floating-point tensor\. Got torch.int64"),
    (lambda: frequency_norms(torch.zeros(6, 2)), ValueError,
     r"'W' must have shape \(p, d\) with odd p >= 3\. Got \(6, 2\)"),
    (lambda: frequency_norms(torch.zeros(5)), ValueError,
     r"'W' must have shape \(p, d\) with odd p >= 3\. Got \(5,\)"),
    (lambda: frequency_norms(torch.full((5, 1), float("inf"))), ValueError,
     r"'W' must be finite"),
    (lambda: activation_table(_MODEL, all_pairs(5)[:-1]), ValueError,
     r"'X' must hold every pair"),
    (lambda: logit_frequencies(torch.nn.Linear(2, 2)), TypeError,
     r"'model' must be a modlib ModAddTransformer\. Got Linear"),
    (lambda: logit_frequencies(_MODEL, all_pairs(5).float()), TypeError,
     r"'X' must be an integer tensor of tokens"),
    (lambda: ablation_spectra(torch.nn.Linear(2, 2), {"mlp.fc_in": _PART}, _TEST), TypeError,
     r"'model' must be a modlib ModAddTransformer"),
    (lambda: ablation_spectra(_MODEL, {"mlp.fc_in": _PART}, [1, 2]), TypeError,
     r"'test' must be a dataset of \(X, y\) or a pair of tensors \(X, y\)\. Got list"),
    (lambda: ablation_spectra(_MODEL, {"mlp.fc_in": _PART}, (_TEST[0], _TEST[1][:3])),
     ValueError, r"'X' and 'y' must hold the same number of samples\. Got 25 and 3"),
    (lambda: ablation_spectra(_MODEL, {}, _TEST), ValueError,
     r"'partitions' must be a non-empty dict"),
    (lambda: energy_kept(torch.ones(3), {0: [1], 1: [1]}), ValueError,
     r"'energy' must be a float tensor \(1 \+ k, n_freq\) with k >= 1"),
    (lambda: energy_kept(torch.ones(3, 4), {0: [1]}), ValueError,
     r"'keys' must give the frequencies of each cluster 0..1\. Got clusters \[0\]"),
    (lambda: energy_kept(torch.ones(3, 4), [[1]]), ValueError,
     r"'keys' must give the frequencies of each of the 2 clusters"),
    (lambda: energy_kept(torch.ones(3, 4), {0: [1], 1: [4]}), ValueError,
     r"'keys' must be an int >= 0 and <= 3\. Got 4"),
    (lambda: energy_kept(torch.ones(3, 4), {0: [1.0], 1: [2]}), TypeError,
     r"'keys' must be an int >= 0 and <= 3\. Got float 1.0"),
    (lambda: selective_clusters(torch.ones(3, 4), {0: [1], 1: [2]}, max_kept=0), ValueError,
     r"'max_kept' must be a finite real > 0 and <= 1\. Got 0.0"),
    (lambda: selective_clusters(torch.ones(3, 4), {0: [1], 1: [2]}, ratio=-1), ValueError,
     r"'ratio' must be a finite real > 0\. Got -1.0"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
