"""Tests for modlib.lm_interp: layer scores, per-token losses, token kinds, cluster ablation."""

from __future__ import annotations

import math

import pytest
import torch

from modlib import contiguous_partition, evaluate, layer_matrix, weight_layers
from modlib.analysis.interp import AblationResult, ablate, specialization
from modlib.analysis.lm_interp import (
    KINDS,
    KindAblation,
    ablate_by_kind,
    layer_scores,
    loss_by_kind,
    perplexity,
    token_kind,
    token_kinds,
    token_losses,
)
from modlib.training.text import ByteTokenizer

pytest.importorskip("transformers")
from modlib.training.models import tiny_gpt2, tiny_gpt_neox  # noqa: E402

C_FC = "transformer.h.0.mlp.c_fc"


def tiny(vocab: int = 20):
    torch.manual_seed(0)
    return tiny_gpt2(vocab, n_layer=1, n_head=2, n_embd=16, n_positions=16)


def blocks(vocab: int = 20, n: int = 6, length: int = 9, seed: int = 0):
    return torch.randint(vocab, (n, length), generator=torch.Generator().manual_seed(seed))


# --- layer_scores ------------------------------------------------------------------------------


def test_layer_scores_default_is_every_mlp_matrix_and_near_chance_at_init():
    model = tiny()
    scores = layer_scores(model, k=2)
    assert list(scores) == [C_FC, "transformer.h.0.mlp.c_proj"]
    for name, s in scores.items():
        W = layer_matrix(weight_layers(model)[name]).detach()
        rows, cols = s.partition.rows, s.partition.cols
        inside = rows[:, None] == cols[None, :]
        assert s.shape == tuple(W.shape)
        assert s.clusterability == pytest.approx(float(W.square()[inside].sum()
                                                       / W.square().sum()), rel=1e-5)
        sizes = [(int((rows == c).sum()), int((cols == c).sum())) for c in range(2)]
        want = sum(r * c for r, c in sizes) / (W.shape[0] * W.shape[1])
        assert s.chance_level == pytest.approx(want)
        assert s.clusterability - s.chance_level < 0.3  # a random matrix: close to chance


def test_layer_scores_on_given_partitions_finds_planted_blocks():
    model = tiny()
    part = contiguous_partition(64, 16, 4)
    with torch.no_grad():  # Conv1D stores (n_in, n_out): zero everything outside the blocks
        model.transformer.h[0].mlp.c_fc.weight.mul_(part.mask().T)
    planted = layer_scores(model, 4, partitions={C_FC: part})
    assert list(planted) == [C_FC]
    assert planted[C_FC].clusterability == pytest.approx(1.0)
    assert planted[C_FC].chance_level == pytest.approx(0.25)
    assert planted[C_FC].shape == (64, 16)
    found = layer_scores(model, 4, [C_FC])[C_FC]  # spectral co-clustering recovers the blocks
    assert found.clusterability == pytest.approx(1.0, abs=1e-5)


def test_layer_scores_other_families():
    torch.manual_seed(0)
    model = tiny_gpt_neox(20, n_layer=1, n_head=2, n_embd=16, n_positions=16)
    assert list(layer_scores(model, 2)) == ["gpt_neox.layers.0.mlp.dense_h_to_4h",
                                            "gpt_neox.layers.0.mlp.dense_4h_to_h"]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(layers=["transformer.h.9.mlp.c_fc"]), ValueError,
     r"'layers' names layers that are not in the model: \['transformer.h.9.mlp.c_fc'\]"),
    (dict(partitions={C_FC: contiguous_partition(5, 16, 2)}), ValueError, r"rows"),
    (dict(k=0), ValueError, r"'k' must be an int >= 1. Got 0"),
    (dict(seed=1.5), TypeError, r"'seed' must be an int. Got float 1.5"),
])
def test_layer_scores_errors(kwargs, error, match):
    kwargs = {"k": 2, **kwargs}
    with pytest.raises(error, match=match):
        layer_scores(tiny(), **kwargs)


# --- token_losses and perplexity ---------------------------------------------------------------


def test_token_losses_mean_is_the_evaluation_loss_and_batching_does_not_matter():
    model, data = tiny(), blocks()
    model.train()
    losses = token_losses(model, data, batch_size=4)
    assert losses.shape == (6, 8) and losses.dtype == torch.float32
    assert model.training  # restored
    assert torch.allclose(losses, token_losses(model, data, batch_size=1), atol=1e-5)
    want = evaluate(model, torch.utils.data.DataLoader(data, batch_size=4), task="lm")
    assert float(losses.mean()) == pytest.approx(want["eval_loss"], rel=1e-5)


@pytest.mark.parametrize(("data", "kwargs", "error", "match"), [
    (torch.zeros(3, 9), {}, TypeError, r"'blocks' must be a LongTensor .* Got Tensor of dtype "
     r"torch.float32 and shape \(3, 9\)"),
    ([[1, 2, 3]], {}, TypeError, r"Got list \[\[1, 2, 3\]\]"),
    (torch.zeros(3, 1).long(), {}, ValueError, r"at least one block of 2"),
    (torch.zeros(3, 9).long(), dict(batch_size=0), ValueError,
     r"'batch_size' must be an int >= 1. Got 0"),
])
def test_token_losses_errors(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        token_losses(tiny(), data, **kwargs)


def test_perplexity_is_exp_of_the_mean_loss():
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(2, 5, 7, generator=g), torch.randint(7, (2, 5), generator=g)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert float(perplexity(logits, targets)) == pytest.approx(math.exp(float(loss)), rel=1e-6)
    assert float(perplexity(torch.zeros(4, 11), torch.zeros(4).long())) == pytest.approx(11)
    with pytest.raises(ValueError, match=r"Got logits \(2, 5, 7\) and targets \(2, 4\)"):
        perplexity(logits, targets[:, :4])


# --- token kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("a", "letter"), (" the", "letter"), ("Ü", "letter"), ("\n Word", "letter"),
    ("7", "digit"), (" 2024", "digit"), (" ", "space"), ("\n\n", "space"), ("\t", "space"),
    (",", "punct"), (" (", "punct"), ("'s", "punct"), ("", "other"), ("\ufffd", "other"),
    ("€", "other"), ("\x00", "other"),
])
def test_token_kind(text, kind):
    assert token_kind(text) == kind


def test_token_kind_refuses_a_non_string():
    with pytest.raises(TypeError, match=r"'text' must be a str. Got 3\."):
        token_kind(3)


def test_token_kinds_of_the_byte_tokenizer():
    kinds = token_kinds(ByteTokenizer())
    assert kinds.shape == (257,) and kinds.dtype == torch.long
    named = {b: KINDS[int(kinds[b])] for b in (ord("q"), ord("Q"), ord("5"), 32, 10, ord("#"))}
    assert named == {ord("q"): "letter", ord("Q"): "letter", ord("5"): "digit", 32: "space",
                     10: "space", ord("#"): "punct"}
    assert {KINDS[int(k)] for k in kinds[128:]} == {"other"}  # lone non-ASCII bytes, end-of-text
    assert int((kinds == KINDS.index("letter")).sum()) == 52
    assert token_kinds(ByteTokenizer(), 10).shape == (10,)


def test_token_kinds_end_of_text_is_other_and_bad_size():
    class Words:
        eos_token_id = 2
        words = [" cat", "!", "<|endoftext|>"]

        def decode(self, ids):
            return "".join(self.words[i] for i in ids)

        def __len__(self):
            return 3

    assert [KINDS[int(k)] for k in token_kinds(Words())] == ["letter", "punct", "other"]
    with pytest.raises(ValueError, match=r"'vocab_size' must be an int >= 1. Got 0"):
        token_kinds(Words(), 0)


def test_loss_by_kind():
    losses = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    kinds = torch.tensor([[0, 1], [0, 1]])
    got = loss_by_kind(losses, kinds, 3)
    assert got[:2].tolist() == [2.0, 4.0] and math.isnan(got[2])
    with pytest.raises(ValueError, match=r"same shape"):
        loss_by_kind(losses, kinds[0], 3)
    with pytest.raises(ValueError, match=r"'kinds' must lie in \[0, 1\). Got values in \[0, 1\]"):
        loss_by_kind(losses, kinds, 1)


# --- ablate_by_kind ----------------------------------------------------------------------------


def test_ablate_by_kind_measures_what_ablate_does():
    model, data = tiny(), blocks()
    kind_of_id = torch.arange(20) % len(KINDS)
    parts = {C_FC: contiguous_partition(64, 16, 2)}
    before = token_losses(model, data)
    result = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=1)
    kinds = kind_of_id[data[:, 1:]]
    assert isinstance(result, AblationResult) and KindAblation is AblationResult
    assert result.labels == KINDS
    assert result.drop.shape == result.control_drop.shape == (2, len(KINDS))
    assert result.counts.tolist() == torch.bincount(kinds.flatten(), minlength=5).tolist()
    assert torch.allclose(result.base, loss_by_kind(before, kinds))
    with ablate(model, parts, 1):  # drop: the loss increase, ablated − intact
        want = loss_by_kind(token_losses(model, data), kinds) - result.base
    assert torch.allclose(result.drop[1], want)
    assert torch.equal(token_losses(model, data), before)  # the hooks are gone
    assert result.specialization == pytest.approx(specialization(result.drop))
    assert result.control == pytest.approx(specialization(result.control_drop))


def test_ablate_by_kind_with_one_cluster_the_control_is_the_same():
    model, data = tiny(), blocks()
    parts = {C_FC: contiguous_partition(64, 16, 1)}  # zeroes every hidden neuron
    result = ablate_by_kind(model, parts, data, torch.arange(20) % len(KINDS))
    assert torch.allclose(result.drop, result.control_drop, equal_nan=True)
    assert result.drop.abs().nan_to_num(0).sum() > 0  # the MLP mattered


def test_ablate_by_kind_scores_only_kinds_with_enough_tokens():
    model, data = tiny(), blocks(n=8)
    parts = {C_FC: contiguous_partition(64, 16, 4)}
    kind_of_id = torch.arange(20) % len(KINDS)
    every = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=1, min_drop=1e-6)
    counts = every.counts
    assert every.specialization > 0
    none = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=int(counts.max()) + 1)
    assert none.specialization == none.control == 0.0
    assert torch.allclose(none.drop, every.drop)  # drop keeps every kind
    top = counts == counts.max()
    one = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=int(counts.max()),
                         min_drop=1e-6)
    assert one.specialization == pytest.approx(specialization(every.drop[:, top],
                                                              min_drop=1e-6))
    with pytest.raises(ValueError, match=r"'min_tokens' must be an int >= 1. Got 0"):
        ablate_by_kind(model, parts, data, kind_of_id, min_tokens=0)
    with pytest.raises(ValueError, match=r"'n_controls' must be an int >= 1. Got 0"):
        ablate_by_kind(model, parts, data, kind_of_id, n_controls=0)


def test_ablate_by_kind_several_controls_are_different_shuffles():
    model, data = tiny(), blocks(n=8)
    parts = {C_FC: contiguous_partition(64, 16, 4)}
    kind_of_id = torch.arange(20) % len(KINDS)
    one = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=1, min_drop=1e-6)
    three = ablate_by_kind(model, parts, data, kind_of_id, min_tokens=1, min_drop=1e-6,
                           n_controls=3)
    assert one.controls == [one.control] and len(three.controls) == 3
    assert three.control == three.controls[0] == one.control  # the first control is seed 0
    assert torch.equal(three.control_drop, one.control_drop)
    assert len(set(three.controls)) == 3  # seeds 0, 1, 2: three different partitions


def test_ablate_by_kind_refuses_ids_it_cannot_classify():
    with pytest.raises(ValueError, match=r"'kind_of_id' covers \[0, 5\)"):
        ablate_by_kind(tiny(), {C_FC: contiguous_partition(64, 16, 2)}, blocks(),
                       torch.zeros(5).long())
