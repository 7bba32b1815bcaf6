import pytest
import torch
from sklearn.metrics import adjusted_rand_score as ari

from modlib import (
    Partition,
    chance_level,
    choose_k,
    clusterability,
    normalized_matrix,
    spectral_cocluster,
    spectral_embedding,
)
from modlib.toy import planted_matrix
from tests.conftest import planted


@pytest.mark.parametrize("n_out,n_in,k", [(64, 32, 2), (120, 90, 4), (200, 100, 8),
                                          (256, 256, 16), (600, 450, 4)])
def test_recovers_planted_coclusters(n_out, n_in, k):
    W, rows, cols = planted(n_out, n_in, k, seed=k)
    p = spectral_cocluster(W, k)
    assert ari(rows, p.rows) > 0.99 and ari(cols, p.cols) > 0.99
    # rows and columns of one planted module share one label: clusterability is the planted one
    assert float(clusterability(W, p)) == pytest.approx(
        float(clusterability(W, Partition(rows, cols, k))))


def test_recovers_uneven_clusters_with_negative_weights():
    W, rows, cols = planted(300, 200, 4, seed=3, sizes=[0.55, 0.25, 0.15, 0.05])
    assert (W < 0).any()
    p = spectral_cocluster(W, 4)
    assert ari(rows, p.rows) > 0.99 and ari(cols, p.cols) > 0.99


def test_dead_neurons_get_valid_labels_and_change_nothing():
    W, rows, cols = planted(100, 80, 4, seed=5)
    W[[3, 50, 77]] = 0.0  # dead output neurons
    W[:, [0, 41]] = 0.0  # dead input neurons
    p = spectral_cocluster(W, 4)
    live_r = torch.ones(100, dtype=torch.bool)
    live_r[[3, 50, 77]] = False
    live_c = torch.ones(80, dtype=torch.bool)
    live_c[[0, 41]] = False
    assert ari(rows[live_r], p.rows[live_r]) > 0.99 and ari(cols[live_c], p.cols[live_c]) > 0.99
    assert p.rows.min() >= 0 and p.rows.max() < 4 and p.cols.max() < 4
    emb = spectral_embedding(W, 4)
    assert torch.isfinite(emb.rows).all() and torch.isfinite(emb.cols).all()
    assert emb.live_rows.sum() == 97 and emb.live_cols.sum() == 78


def test_dead_neurons_fill_the_smallest_clusters():
    W = torch.block_diag(torch.ones(6, 6), torch.ones(2, 2)) + 0.01
    W = torch.cat([W, torch.zeros(4, 8)])  # 4 dead rows
    p = spectral_cocluster(W, 2)
    assert sorted(torch.bincount(p.rows).tolist()) == [6, 6]


def test_large_matrix_uses_randomized_svd_and_recovers():
    W, rows, cols = planted(1200, 500, 8, seed=11, signal=3.0)
    p = spectral_cocluster(W, 8)
    assert ari(rows, p.rows) > 0.99 and ari(cols, p.cols) > 0.99


def test_k_equal_one_is_all_zeros():
    p = spectral_cocluster(torch.randn(5, 4), 1)
    assert p.rows.tolist() == [0] * 5 and p.cols.tolist() == [0] * 4 and p.k == 1


def test_deterministic_for_a_seed():
    W = torch.randn(150, 120, generator=torch.Generator().manual_seed(0))  # no structure at all
    assert spectral_cocluster(W, 5, seed=3) == spectral_cocluster(W, 5, seed=3)


def test_clusters_numbered_by_first_appearance():
    W, _, _ = planted(90, 60, 3, seed=2)
    p = spectral_cocluster(W, 3)
    first = list(dict.fromkeys(p.rows.tolist()))
    assert first == sorted(first) and first[0] == 0


def test_beats_chance_on_planted_and_not_far_from_chance_on_noise():
    W, _, _ = planted(200, 200, 4, seed=1, signal=2.0)
    p = spectral_cocluster(W, 4)
    assert float(clusterability(W, p)) > chance_level(p) + 0.2


def test_normalized_matrix_top_singular_value_is_one():
    W = torch.rand(30, 20, generator=torch.Generator().manual_seed(0))
    A_hat, d_r, d_c = normalized_matrix(W)
    assert torch.allclose(d_r, W.sum(1)) and torch.allclose(d_c, W.sum(0))
    assert float(torch.linalg.svdvals(A_hat)[0]) == pytest.approx(1.0, abs=1e-5)


def test_singular_value_gap_shows_k():
    W, _, _ = planted(200, 150, 4, seed=0, signal=8.0)
    s = spectral_embedding(W, 6).singular_values
    gaps = (s[:-1] - s[1:]).tolist()
    assert max(range(len(gaps)), key=gaps.__getitem__) == 3  # largest drop after the 4th


@pytest.mark.parametrize("k", [2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_choose_k_finds_the_planted_k(k, seed):
    W = planted_matrix(120, 90, k=k, noise=0.3, seed=seed).W
    assert choose_k(W) == k
    assert choose_k(W, k_max=10) == k


@pytest.mark.parametrize("k", [3, 5, 8])
def test_choose_k_skips_the_trivial_singular_value(k):
    """The drop after the first value (always 1) is the largest of all on these matrices, so a
    search that included it would answer 1 (or, clamped to k >= 2, always 2)."""
    W = planted_matrix(120, 90, k=k, noise=0.3, seed=0).W
    s = spectral_embedding(W, 9).singular_values
    assert float(s[0]) == pytest.approx(1.0, abs=1e-5)
    assert int((s[:-1] - s[1:]).argmax()) == 0  # the largest gap follows the trivial value
    assert choose_k(W) == k


def test_choose_k_on_disconnected_modules_and_dead_neurons():
    # four disconnected blocks: the first four singular values are all exactly 1
    g = torch.Generator().manual_seed(0)
    W = torch.block_diag(*[torch.rand(10, 8, generator=g) + 0.1 for _ in range(4)])
    assert choose_k(W) == 4
    W[5], W[:, [0, 9, 20]] = 0.0, 0.0  # dead neurons change nothing
    assert choose_k(W) == 4
    # a live part with fewer singular values than k_max + 1: the rest of Â's are 0
    W = torch.zeros(12, 10)
    W[0, :5], W[1, 5:] = 1.0, 1.0
    assert choose_k(W) == 2


def test_choose_k_stays_in_range_and_is_deterministic():
    W = torch.randn(300, 200, generator=torch.Generator().manual_seed(0))  # no structure
    assert 2 <= choose_k(W, k_max=5) <= 5
    assert choose_k(W, seed=1) == choose_k(W, seed=1)
    big = planted_matrix(900, 500, k=5, noise=0.3, seed=0).W  # randomized SVD
    assert choose_k(big, seed=3) == 5


def test_works_on_float64_and_grad_tensors():
    W, rows, _ = planted(60, 40, 2, seed=0)
    p = spectral_cocluster(W.double().requires_grad_(), 2)
    assert ari(rows, p.rows) > 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    W, rows, cols = planted(1200, 500, 8, seed=11, signal=3.0)
    p = spectral_cocluster(W.cuda(), 8)
    assert p.rows.device.type == "cuda"
    assert ari(rows, p.rows.cpu()) > 0.99


@pytest.mark.parametrize("W,k,kw,err,match", [
    (torch.ones(5, 4), 7, {}, ValueError, r"'k' must be an int in \[1, 4\]. Got 7 for W of shape "
                                          r"\(5, 4\)"),
    (torch.ones(5, 4), 0, {}, ValueError, r"'k' must be an int >= 1. Got 0"),
    (torch.ones(5, 4), 2.0, {}, TypeError, r"'k' must be an int >= 1\. Got float"),
    (torch.zeros(5, 4), 2, {}, ValueError, r"is all zeros"),
    (torch.zeros(5, 4), 1, {}, ValueError, r"is all zeros"),
    (torch.full((5, 4), float("nan")), 2, {}, ValueError, r"has 20 NaN/Inf entries"),
    (torch.ones(5), 2, {}, ValueError, r"must be 2-D"),
    (torch.ones(5, 4), 2, {"n_init": 0}, ValueError, r"'n_init' must be an int >= 1. Got 0"),
])
def test_spectral_errors(W, k, kw, err, match):
    with pytest.raises(err, match=match):
        spectral_cocluster(W, k, **kw)


@pytest.mark.parametrize("W,kw,err,match", [
    (torch.ones(5, 4), {"k_max": 4}, ValueError,
     r"'k_max' must be an int in \[2, 3\]. Got 4 for W of shape \(5, 4\)"),
    (torch.ones(5, 4), {"k_max": 1}, ValueError, r"'k_max' must be an int >= 2. Got 1"),
    (torch.ones(5, 4), {"k_max": 2.0}, TypeError, r"'k_max' must be an int >= 2. Got float"),
    (torch.ones(5, 4), {"k_max": 2, "seed": None}, TypeError, r"'seed' must be an int. Got None"),
    (torch.ones(2, 4), {"k_max": 2}, ValueError, r"'W' must have at least 3 rows and 3 columns"),
    (torch.zeros(5, 4), {"k_max": 2}, ValueError, r"is all zeros"),
    (torch.full((5, 4), float("inf")), {"k_max": 2}, ValueError, r"has 20 NaN/Inf entries"),
    (torch.ones(5), {}, ValueError, r"must be 2-D"),
])
def test_choose_k_errors(W, kw, err, match):
    with pytest.raises(err, match=match):
        choose_k(W, **kw)
