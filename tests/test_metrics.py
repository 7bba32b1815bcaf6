import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from modlib import (
    Partition,
    chance_level,
    clusterability,
    contiguous_partition,
    random_baseline,
    shuffle_test,
)


@st.composite
def matrix_and_partition(draw):
    n_out, n_in, k = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    rows = torch.randint(k, (n_out,), generator=g)
    cols = torch.randint(k, (n_in,), generator=g)
    return W, Partition(rows, cols, k)


@given(matrix_and_partition())
def test_clusterability_is_the_inside_share_of_squared_mass(wp):
    """Against the definition, computed the slow way: a (n_out, n_in) mask of same-cluster pairs."""
    W, p = wp
    inside = p.rows[:, None] == p.cols[None, :]
    want = float((W.double() ** 2)[inside].sum() / (W.double() ** 2).sum())
    c = float(clusterability(W, p))
    assert c == pytest.approx(want, rel=1e-5, abs=1e-7) and 0.0 <= c <= 1.0 + 1e-6


@given(matrix_and_partition(), st.integers(0, 1000))
def test_invariant_to_relabelling_clusters(wp, seed):
    W, p = wp
    relabel = torch.randperm(p.k, generator=torch.Generator().manual_seed(seed))
    q = Partition(relabel[p.rows], relabel[p.cols], p.k)
    assert math.isclose(float(clusterability(W, p)), float(clusterability(W, q)), rel_tol=1e-12)


@given(matrix_and_partition(), st.integers(0, 1000))
def test_invariant_to_permuting_neurons_with_their_labels(wp, seed):
    W, p = wp
    g = torch.Generator().manual_seed(seed)
    r, c = torch.randperm(W.shape[0], generator=g), torch.randperm(W.shape[1], generator=g)
    q = Partition(p.rows[r], p.cols[c], p.k)
    assert math.isclose(float(clusterability(W, p)), float(clusterability(W[r][:, c], q)),
                        rel_tol=1e-12)


@given(matrix_and_partition(), st.floats(1e-3, 1e3))
def test_invariant_to_scaling(wp, scale):
    W, p = wp
    assert math.isclose(float(clusterability(W, p)), float(clusterability(scale * W, p)),
                        rel_tol=1e-9)


@pytest.mark.parametrize("n,k", [(8, 2), (12, 3), (20, 4), (30, 5)])
def test_constant_matrix_with_equal_blocks_scores_one_over_k(n, k):
    p = contiguous_partition(n, n, k)
    assert float(clusterability(torch.ones(n, n, dtype=torch.float64), p)) == pytest.approx(1 / k)
    assert chance_level(p) == pytest.approx(1 / k)
    assert random_baseline(k) == 1 / k


def test_block_diagonal_scores_one():
    W = torch.block_diag(torch.randn(3, 2), torch.randn(4, 4), torch.randn(1, 5))
    p = Partition(torch.tensor([0] * 3 + [1] * 4 + [2]), torch.tensor([0] * 2 + [1] * 4 + [2] * 5),
                  3)
    assert float(clusterability(W, p)) == 1.0


def test_chance_level_of_uneven_sizes():
    p = Partition(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1]), 2)
    assert chance_level(p) == pytest.approx(0.75 * 0.5 + 0.25 * 0.5)
    zeros = torch.zeros(5, dtype=torch.long)
    everything_in_one = Partition(zeros, zeros[:3], 4)
    assert chance_level(everything_in_one) == 1.0


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    p = Partition(torch.tensor([0, 1, 1, 0, 2]), torch.tensor([2, 0, 1, 1]), 3)
    assert torch.autograd.gradcheck(lambda w: clusterability(w, p), (W,))


def test_gradient_raises_clusterability():
    W = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    p = contiguous_partition(6, 6, 2)
    before = float(clusterability(W.detach(), p))
    clusterability(W, p).backward()
    with torch.no_grad():
        W += 0.01 * W.grad
    assert float(clusterability(W.detach(), p)) > before


def test_shuffle_test_finds_planted_structure(planted_matrix):
    W, _, _ = planted_matrix(60, 40, 3, signal=4.0)
    result = shuffle_test(W, 3, n_shuffles=9, progress=False)
    assert result.p_value == pytest.approx(0.1)  # observed beats all 9 shuffles
    assert result.observed > max(result.null)
    assert len(result.null) == 9 and 0 < result.chance_level < 1


def test_shuffle_test_on_unstructured_weights_is_not_significant():
    # a shuffled Gaussian matrix is another Gaussian matrix: p-values spread over (0, 1]
    p_values = [shuffle_test(torch.randn(60, 40, generator=torch.Generator().manual_seed(s)), 3,
                             n_shuffles=9, progress=False).p_value for s in range(5)]
    assert sorted(p_values)[2] > 0.2


P2 = Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), 2)


@pytest.mark.parametrize("W,err,match", [
    (torch.tensor([[float("nan"), 1.0], [0.0, 1.0]]), ValueError,
     r"'W' of shape \(2, 2\) has 1 NaN/Inf entries"),
    (torch.tensor([[float("inf"), 1.0], [0.0, 1.0]]), ValueError, r"has 1 NaN/Inf entries"),
    (torch.zeros(2, 2), ValueError, r"'W' of shape \(2, 2\) is all zeros"),
    (torch.ones(3, 2), ValueError, r"'W' of shape \(3, 2\) does not fit a partition of 2 rows"),
    (torch.ones(2, 2, 1), ValueError, r"'W' must be 2-D \(n_out, n_in\). Got shape \(2, 2, 1\)"),
    (torch.ones(0, 2), ValueError, r"'W' is empty"),
    (torch.ones(2, 2, dtype=torch.long), TypeError, r"'W' must be a floating-point tensor"),
    ([[1.0, 0.0], [0.0, 1.0]], TypeError, r"'W' must be a torch.Tensor. Got list"),
    (torch.full((2, 2), 3e38), ValueError, r"overflows torch.float32"),
])
def test_clusterability_errors(W, err, match):
    with pytest.raises(err, match=match):
        clusterability(W, P2)


@pytest.mark.parametrize("call,err,match", [
    (lambda: random_baseline(0), ValueError, r"'k' must be an int >= 1. Got 0"),
    (lambda: shuffle_test(torch.ones(4, 4), 2, n_shuffles=0), ValueError,
     r"'n_shuffles' must be an int >= 1. Got 0"),
    (lambda: shuffle_test(torch.ones(4, 4), 5), ValueError, r"'k' must be an int in \[1, 4\]"),
])
def test_metric_argument_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
