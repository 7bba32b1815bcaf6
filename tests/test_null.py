"""Null copies of a layer: scale_matched and shuffle_test(null="scales")."""

import matplotlib
import pytest
import torch

from modlib import (
    Partition,
    chance_level,
    clusterability,
    scale_matched,
    shuffle_test,
    spectral_cocluster,
)
from modlib.viz import plot_null

matplotlib.use("Agg")


def unequal_neurons(n_out: int, n_in: int, sigma: float, seed: int = 0) -> torch.Tensor:
    """Gaussian weights without modules whose rows and columns have log-normal norms."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.exp(sigma * torch.randn(n_out, 1, generator=g))
    cols = torch.exp(sigma * torch.randn(1, n_in, generator=g))
    return torch.randn(n_out, n_in, generator=g) * rows * cols


def excess(W: torch.Tensor, p: Partition) -> float:
    return float(clusterability(W, p)) - chance_level(p)


def test_scale_matched_keeps_every_neurons_expected_weight():
    W = unequal_neurons(20, 30, 1.0, seed=1)
    W[3], W[:, 7] = 0.0, 0.0  # a dead row and a dead column
    copies = torch.stack([scale_matched(W, seed=s) for s in range(4000)]).square().mean(0)
    W2 = W.square()
    assert torch.allclose(copies.sum(1), W2.sum(1), rtol=0.1)  # rows: within sampling error
    assert torch.allclose(copies.sum(0), W2.sum(0), rtol=0.1)  # columns
    assert scale_matched(W)[3].abs().sum() == 0 and scale_matched(W)[:, 7].abs().sum() == 0


def test_scale_matched_is_seeded_and_keeps_dtype_and_shape():
    W = torch.randn(5, 4, dtype=torch.float64)
    a, b, c = scale_matched(W, seed=3), scale_matched(W, seed=3), scale_matched(W, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == W.shape and a.dtype == torch.float64
    assert scale_matched(W.float().requires_grad_()).dtype == torch.float32


def test_a_rank_one_layer_scores_like_its_scale_matched_copy():
    # W_ij = a_i * b_j * g_ij has no modules: its neurons only differ in size
    W = unequal_neurons(256, 256, 1.0)
    copy = scale_matched(W, seed=1)
    for refine in (False, True):
        p, q = (spectral_cocluster(M, 4, refine=refine) for M in (W, copy))
        assert abs(excess(W, p) - excess(copy, q)) < 0.1


def test_refining_finds_excess_in_unequal_neurons_alone():
    # the blind spot of the size-matched chance level that spectral_cocluster's docs describe
    same = unequal_neurons(256, 256, 0.0)
    unequal = unequal_neurons(256, 256, 1.0)
    assert excess(same, spectral_cocluster(same, 4, refine=True)) < 0.15
    assert excess(unequal, spectral_cocluster(unequal, 4, refine=True)) > 0.4
    assert excess(unequal, spectral_cocluster(unequal, 4)) < 0.25


def test_scales_null_passes_planted_modules(planted_matrix):
    W, _, _ = planted_matrix(60, 40, 3, signal=4.0)
    result = shuffle_test(W, 3, n_shuffles=9, progress=False, null="scales")
    assert result.p_value == pytest.approx(0.1) and result.kind == "scales"
    assert result.observed > max(result.null) and len(result.null) == 9
    assert shuffle_test(W, 3, n_shuffles=2, progress=False).kind == "shuffle"


def test_scales_null_does_not_pass_unequal_neurons_without_modules():
    p_values = [shuffle_test(unequal_neurons(60, 40, 1.0, seed=s), 3, n_shuffles=9,
                             progress=False, null="scales").p_value for s in range(5)]
    assert sorted(p_values)[2] > 0.2


def test_shuffle_null_is_unchanged_by_the_new_option():
    W = unequal_neurons(30, 20, 0.5)
    a = shuffle_test(W, 2, n_shuffles=3, progress=False)
    b = shuffle_test(W, 2, n_shuffles=3, progress=False, null="shuffle")
    assert a == b


def test_plot_null_draws_both_nulls(planted_matrix):
    W, _, _ = planted_matrix(30, 20, 2, signal=4.0)
    tests = {"a": shuffle_test(W, 2, n_shuffles=3, progress=False),
             "b": shuffle_test(W * 2, 2, n_shuffles=3, progress=False)}
    scaled = {n: shuffle_test(W, 2, n_shuffles=3, progress=False, null="scales")
              for n in tests}
    fig = plot_null(tests, scaled=scaled)
    ax = fig.axes[0]
    assert "scale-matched (range)" in [t.get_text() for t in ax.get_legend().get_texts()]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].startswith("shuffled p = ") and "\nscaled p = " in texts[0]
    assert len(plot_null(tests).axes[0].lines) == 2 * len(tests)
    with pytest.raises(ValueError, match=r"'scaled' must name the layers of 'tests' in the "
                                         r"same order \['a', 'b'\]. Got \['b', 'a'\]"):
        plot_null(tests, scaled={"b": scaled["b"], "a": scaled["a"]})
    with pytest.raises(TypeError, match=r"'scaled\['a'\]' must be a modlib ShuffleTest"):
        plot_null(tests, scaled={"a": 0.5, "b": 0.5})


@pytest.mark.parametrize("call,err,match", [
    (lambda: scale_matched("W"), TypeError, r"'W' must be a torch.Tensor"),
    (lambda: scale_matched(torch.zeros(2, 2)), ValueError, r"'W' of shape \(2, 2\) is all zeros"),
    (lambda: scale_matched(torch.tensor([[float("nan"), 1.0]])), ValueError, r"NaN/Inf"),
    (lambda: scale_matched(torch.ones(2, 2), seed=0.5), TypeError, r"'seed' must be an int"),
    (lambda: shuffle_test(torch.ones(4, 4), 2, null="rows"), ValueError,
     r"'null' must be one of \('shuffle', 'scales'\). Got 'rows'"),
])
def test_null_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
