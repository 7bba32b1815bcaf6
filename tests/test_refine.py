import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.cluster import SpectralCoclustering
from sklearn.metrics import adjusted_rand_score as ari

from modlib import Partition, chance_level, clusterability, refine_partition, spectral_cocluster
from tests.conftest import planted


def excess(W: torch.Tensor, p: Partition) -> float:
    return float(clusterability(W, p)) - chance_level(p)


def enmeshed(n_out: int, n_in: int, seed: int = 0) -> torch.Tensor:
    """|N(0, 1)| weights with what trained layers have: neurons of very different norms and a
    weak modular component (×1.3 inside 8 modules); the kind of matrix where the spectral
    partition is far from the best one."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_out, n_in, generator=g).abs()
    W *= torch.exp(0.5 * torch.randn(n_out, 1, generator=g))
    W *= torch.exp(0.5 * torch.randn(1, n_in, generator=g))
    rows, cols = torch.randint(8, (n_out,), generator=g), torch.randint(8, (n_in,), generator=g)
    return W * torch.where(rows[:, None] == cols[None], 1.3, 1.0)


@st.composite
def matrix_and_partition(draw):
    n_out, n_in = draw(st.integers(2, 14)), draw(st.integers(2, 14))
    k = draw(st.integers(1, min(n_out, n_in, 5)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    W = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # some dead neurons, never all of them
        W[torch.rand(n_out, generator=g) < 0.3] = 0.0
        W[:, torch.rand(n_in, generator=g) < 0.3] = 0.0
        W[0, 0] = 1.0
    return W, Partition(torch.randint(k, (n_out,), generator=g),
                        torch.randint(k, (n_in,), generator=g), k)


@given(matrix_and_partition())
def test_excess_never_decreases(wp):
    W, p = wp
    assert excess(W, refine_partition(W, p)) >= excess(W, p) - 1e-12


@given(matrix_and_partition())
def test_excess_rises_sweep_by_sweep_without_dead_neurons(wp):
    W, p = wp
    W = W + 0.01  # no dead neurons: every sweep is a best response of one side
    found = [excess(W, refine_partition(W, p, max_sweeps=s)) for s in (1, 2, 3, 100)]
    assert all(b >= a - 1e-12 for a, b in zip([excess(W, p)] + found[:-1], found, strict=True))


def _moved(p: Partition, side: str, i: int, c: int) -> Partition:
    rows, cols = p.rows.clone(), p.cols.clone()
    (rows if side == "rows" else cols)[i] = c
    return Partition(rows, cols, p.k)


@given(matrix_and_partition())
def test_the_result_is_a_local_optimum(wp):
    """No single move of a neuron raises the excess, checked the slow way (without dead
    neurons, which carry no weight; moves that would empty a cluster are not allowed)."""
    W, p = wp
    W = W + 0.01
    best = refine_partition(W, p)
    e = excess(W, best)
    for side in ("rows", "cols"):
        labels = getattr(best, side)
        for i, c in itertools.product(range(len(labels)), range(best.k)):
            if c != labels[i] and int((labels == labels[i]).sum()) > 1:
                assert excess(W, _moved(best, side, i, c)) <= e + 1e-9


@given(matrix_and_partition())
def test_no_cluster_loses_all_its_live_neurons(wp):
    W, p = wp
    q = refine_partition(W, p)
    for live, before, after in [(W.abs().sum(1) > 0, p.rows, q.rows),
                                (W.abs().sum(0) > 0, p.cols, q.cols)]:
        had, has = (torch.bincount(x[live], minlength=p.k) > 0 for x in (before, after))
        assert (had <= has).all()


@pytest.mark.parametrize("k,sizes,dead", [(2, None, 0.0), (4, [0.4, 0.3, 0.2, 0.1], 0.05),
                                          (8, [0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05], 0.05),
                                          (16, None, 0.1), (16, [1.0] * 8 + [0.5] * 8, 0.05)])
def test_planted_modules_stay_exact(k, sizes, dead):
    n_out, n_in = 64 * k, 32 * k
    W, rows, cols = planted(n_out, n_in, k, seed=k, signal=3.0, sizes=sizes)
    g = torch.Generator().manual_seed(1)
    live_r, live_c = torch.rand(n_out, generator=g) >= dead, torch.rand(n_in, generator=g) >= dead
    W[~live_r], W[:, ~live_c] = 0.0, 0.0
    truth = Partition(rows, cols, k)
    # the planted partition is a local optimum: no live neuron moves
    kept = refine_partition(W, truth)
    assert torch.equal(kept.rows[live_r], rows[live_r])
    assert torch.equal(kept.cols[live_c], cols[live_c])
    assert excess(W, kept) >= excess(W, truth)
    # and co-clustering with refine recovers it
    p = spectral_cocluster(W, k, refine=True)
    assert ari(rows[live_r], p.rows[live_r]) == 1.0 and ari(cols[live_c], p.cols[live_c]) == 1.0
    assert excess(W, p) >= excess(W, spectral_cocluster(W, k)) - 1e-9


def test_dead_neurons_go_where_they_add_least_chance():
    """All dead rows in one cluster, all dead columns in one: the best of all placements,
    checked against every placement of three dead rows and two dead columns."""
    W, rows, cols = planted(12, 10, 3, seed=0)
    W[[1, 5, 7]], W[:, [2, 6]] = 0.0, 0.0
    p = refine_partition(W, Partition(rows, cols, 3))
    assert len(set(p.rows[[1, 5, 7]].tolist())) == 1 and len(set(p.cols[[2, 6]].tolist())) == 1
    for dead_r in itertools.product(range(3), repeat=3):
        for dead_c in itertools.product(range(3), repeat=2):
            q_rows, q_cols = p.rows.clone(), p.cols.clone()
            q_rows[[1, 5, 7]], q_cols[[2, 6]] = torch.tensor(dead_r), torch.tensor(dead_c)
            assert chance_level(p) <= chance_level(Partition(q_rows, q_cols, 3)) + 1e-12


# Enmeshed 64×64 matrices, k = 4: what refine=True reached when this test was written.
RECORDED = {0: 0.345, 1: 0.407, 2: 0.386}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raises_the_excess_of_an_enmeshed_matrix(seed):
    W = enmeshed(64, 64, seed)
    plain = spectral_cocluster(W, 4, seed=seed)
    refined = spectral_cocluster(W, 4, seed=seed, refine=True)
    assert excess(W, refined) >= excess(W, plain)
    assert excess(W, refined) >= excess(W, refine_partition(W, plain)) - 1e-9
    assert excess(W, refined) >= RECORDED[seed]
    assert min(refined.sizes()[0].tolist() + refined.sizes()[1].tolist()) >= 1  # four clusters
    fit = SpectralCoclustering(4, random_state=seed).fit(W.numpy())
    theirs = Partition(torch.from_numpy(fit.row_labels_), torch.from_numpy(fit.column_labels_), 4)
    assert excess(W, refined) > excess(W, theirs)


def test_default_is_unchanged_and_refine_is_deterministic():
    W = enmeshed(80, 60, seed=3)
    assert spectral_cocluster(W, 4, seed=1) == spectral_cocluster(W, 4, seed=1, refine=False)
    a = spectral_cocluster(W, 4, seed=1, refine=True)
    assert a == spectral_cocluster(W, 4, seed=1, refine=True)
    p = Partition(torch.arange(80) % 4, torch.arange(60) % 4, 4)
    assert refine_partition(W, p) == refine_partition(W, p)


def test_refined_clusters_are_numbered_by_first_appearance():
    p = spectral_cocluster(enmeshed(64, 64), 4, refine=True)
    first = list(dict.fromkeys(torch.cat([p.rows, p.cols]).tolist()))
    assert first == list(range(len(first)))


def test_large_matrix_float64_and_grad_tensors():
    W, rows, cols = planted(1200, 500, 8, seed=11, signal=3.0)  # randomized SVD, blocks of W²
    p = spectral_cocluster(W, 8, refine=True)
    assert ari(rows, p.rows) == 1.0 and ari(cols, p.cols) == 1.0
    q = refine_partition(W.double().requires_grad_(), Partition(rows, cols, 8))
    assert q == Partition(rows, cols, 8)


def test_a_returned_partition_keeps_its_device_and_k():
    W = enmeshed(30, 20)
    p = refine_partition(W, Partition(torch.zeros(30, dtype=torch.long),
                                      torch.zeros(20, dtype=torch.long), 3))
    assert p.k == 3 and p.rows.device == W.device
    assert spectral_cocluster(W, 1, refine=True).rows.tolist() == [0] * 30


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    W, rows, cols = planted(1200, 500, 8, seed=11, signal=3.0)
    p = spectral_cocluster(W.cuda(), 8, refine=True)
    assert p.rows.device.type == "cuda"
    assert ari(rows, p.rows.cpu()) == 1.0
    q = refine_partition(W.cuda(), Partition(rows, cols, 8))
    assert q.rows.device.type == "cpu" and q == Partition(rows, cols, 8)


P = Partition(torch.tensor([0, 1, 0]), torch.tensor([1, 0]), 2)


@pytest.mark.parametrize("call,err,match", [
    (lambda: refine_partition(torch.ones(3, 2), P, max_sweeps=0), ValueError,
     r"'max_sweeps' must be an int >= 1. Got 0"),
    (lambda: refine_partition(torch.ones(3, 2), P, max_sweeps=2.0), TypeError,
     r"'max_sweeps' must be an int >= 1. Got float 2.0"),
    (lambda: refine_partition(torch.ones(2, 3), P), ValueError,
     r"'W' of shape \(2, 3\) does not fit a partition of 3 rows and 2 columns"),
    (lambda: refine_partition(torch.zeros(3, 2), P), ValueError, r"'W' of shape \(3, 2\) is all"),
    (lambda: refine_partition(torch.full((3, 2), float("nan")), P), ValueError,
     r"'W' of shape \(3, 2\) has 6 NaN/Inf entries"),
    (lambda: refine_partition(torch.ones(3, 2), "P"), TypeError,
     r"'partition' must be a modlib Partition. Got str 'P'"),
    (lambda: refine_partition([[1.0, 2.0]], P), TypeError, r"'W' must be a torch.Tensor"),
    (lambda: spectral_cocluster(torch.ones(3, 2), 2, refine=1), TypeError,
     r"'refine' must be True or False. Got 1"),
])
def test_refine_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
