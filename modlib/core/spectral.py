"""Bipartite spectral co-clustering of a weight matrix (Dhillon 2001), robust and fast.

The steps, each a function so notebook 01 can show it:

1. ``A = |W|``; degrees ``d_r = A 1`` and ``d_c = Aᵀ 1``; ``Â = D_r^-1/2 A D_c^-1/2``.
2. The top k singular vectors ``U, V`` of ``Â`` (randomized SVD for large matrices).
3. Embedding ``Z = [D_r^-1/2 U; D_c^-1/2 V]``: rows and columns in one space.
4. One seeded k-means++ on the stacked ``Z``, so a row cluster and a column cluster with the
   same label belong together by construction.
5. Optionally (``refine=True``), neurons move between clusters while the excess over chance
   rises, the score partitions are judged by (:mod:`modlib.core.refine`).

When k is not known, ``choose_k`` reads it off the singular values of step 2: the largest gap
after the first (trivial) one.

Departures from scikit-learn's ``SpectralCoclustering``, each measured in benchmarks/:
k singular vectors instead of 1+⌈log₂k⌉ (which fails to recover planted clusters at k = 8
and 16); |W| instead of shifting negative weights; dead neurons (zero degree) handled instead of
crashing. The first (trivial) singular vector is kept: after the rescaling in step 3 it is the
same constant for every row and column, so it moves no point relative to another, and when the
graph falls apart into disconnected modules "the" trivial vector is not unique anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..validate import check_bool, check_int, check_matrix, check_total
from .partition import Partition
from .refine import _place_dead, _refine_candidates

__all__ = ["normalized_matrix", "spectral_embedding", "SpectralEmbedding", "choose_k",
           "spectral_cocluster"]

_FULL_SVD_MAX_SIDE = 400  # below this a full SVD is as fast as a randomized one, and exact
_OVERSAMPLES = 10  # extra random directions of the randomized SVD
_POWER_ITERS = 4  # power iterations of the randomized SVD (for close singular values)
_MULTI_START_MAX = 1 << 22  # entries of W up to which refine starts from every k-means run


def _check_k_for(W: Tensor, k: object, name: str = "k") -> int:
    k = check_int(k, name, minimum=1)
    side = min(W.shape)
    if k > side:
        raise ValueError(f"'{name}' must be an int in [1, {side}]. Got {k} for W of shape "
                         f"{tuple(W.shape)}.")
    return k


def _graph(W: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``A = |W|`` (float32 or float64) and its degrees, refusing NaN/Inf and all-zero W."""
    A = check_matrix(W).detach().abs()
    if A.dtype not in (torch.float32, torch.float64):
        A = A.float()
    d_r = A.sum(1)
    check_total(W, d_r.sum())
    return A, d_r, A.sum(0)


def _inv_sqrt(d: Tensor) -> Tensor:
    """d^-1/2, and 0 where d = 0 (a dead neuron) instead of inf."""
    return torch.where(d > 0, d.clamp_min(torch.finfo(d.dtype).tiny).rsqrt(), 0.0)


def normalized_matrix(W: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Step 1: the degree-normalised graph ``Â = D_r^-1/2 |W| D_c^-1/2``.

    Args:
        W: (n_out, n_in) weights.

    Returns:
        ``(A_hat, d_rows, d_cols)``: (n_out, n_in), (n_out,), (n_in,). Rows or columns of zero
        degree (dead neurons) get 0 in ``A_hat`` instead of a division by zero.

    Raises:
        TypeError, ValueError: as :func:`modlib.clusterability` for a bad ``W``.

    Example:
        >>> A_hat, d_r, d_c = normalized_matrix(torch.tensor([[1.0, 0.0], [1.0, 2.0]]))
        >>> d_r.tolist(), d_c.tolist()
        ([1.0, 3.0], [2.0, 2.0])

    Introduced in notebook 01.
    """
    A, d_r, d_c = _graph(W)
    return _inv_sqrt(d_r)[:, None] * A * _inv_sqrt(d_c)[None, :], d_r, d_c


def _qr(X: Tensor) -> Tensor:
    return torch.linalg.qr(X).Q


def _top_svd(A: Tensor, s_r: Tensor, s_c: Tensor, r: int, gen: torch.Generator
             ) -> tuple[Tensor, Tensor, Tensor]:
    """Top-r singular triplets (U (m, r), S (r,), V (n, r)) of ``Â = diag(s_r) A diag(s_c)``.

    Small matrices: a full SVD of Â. Large ones: a randomized SVD (Halko, Martinsson & Tropp
    2011) that applies Â as ``s_r * (A @ (s_c * X))`` and never forms it: one copy of the
    weights in memory and a few passes over it.
    """
    m, n = A.shape
    if min(m, n) <= max(_FULL_SVD_MAX_SIDE, 2 * (r + _OVERSAMPLES)):
        U, S, Vh = torch.linalg.svd(s_r[:, None] * A * s_c[None, :], full_matrices=False)
        return U[:, :r], S[:r], Vh[:r].T
    omega = torch.randn(n, r + _OVERSAMPLES, generator=gen, dtype=A.dtype).to(A.device)
    Q = _qr(s_r[:, None] * (A @ (s_c[:, None] * omega)))  # (m, q)
    for _ in range(_POWER_ITERS):
        Q = _qr(s_c[:, None] * (A.T @ (s_r[:, None] * Q)))  # (n, q)
        Q = _qr(s_r[:, None] * (A @ (s_c[:, None] * Q)))  # (m, q)
    B = ((A.T @ (s_r[:, None] * Q)) * s_c[:, None]).T  # Qᵀ Â: (q, n), small
    Ub, S, Vh = torch.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :r], S[:r], Vh[:r].T


@dataclass(frozen=True)
class SpectralEmbedding:
    """Steps 2–3 of spectral co-clustering.

    Attributes:
        rows: (n_out, r) embedding of the output neurons (0 for dead ones).
        cols: (n_in, r) embedding of the input neurons (0 for dead ones).
        singular_values: (r,) top singular values of ``Â`` (the first is 1); a gap after the
            k-th suggests k clusters.
        live_rows: (n_out,) bool, False for zero-degree (dead) output neurons.
        live_cols: (n_in,) bool, likewise for input neurons.
    """

    rows: Tensor
    cols: Tensor
    singular_values: Tensor
    live_rows: Tensor
    live_cols: Tensor


def spectral_embedding(W: Tensor, r: int, *, seed: int = 0) -> SpectralEmbedding:
    """Steps 1–3: embed rows and columns of ``W`` with the top ``r`` singular vectors of ``Â``.

    Args:
        W: (n_out, n_in) weights; any sign (the graph uses |W|).
        r: number of singular vectors, in [1, min(n_out, n_in)] (fewer come back when dead
            neurons leave a smaller live part).
        seed: seeds the randomized SVD used for large matrices.

    Returns:
        A :class:`SpectralEmbedding`.

    Raises:
        TypeError, ValueError: bad ``W`` or ``r``.

    Example:
        >>> emb = spectral_embedding(torch.eye(4) + 0.01, 2)
        >>> round(float(emb.singular_values[0]), 4)
        1.0

    Introduced in notebook 01.
    """
    r = _check_k_for(check_matrix(W), r, "r")
    check_int(seed, "seed")
    A, d_r, d_c = _graph(W)
    live_r, live_c = d_r > 0, d_c > 0
    all_live = bool(live_r.all()) and bool(live_c.all())
    if not all_live:  # dead neurons: embed the live part only
        A, d_r, d_c = A[live_r][:, live_c], d_r[live_r], d_c[live_c]
    s_r, s_c = _inv_sqrt(d_r), _inv_sqrt(d_c)
    gen = torch.Generator().manual_seed(seed)
    U, S, V = _top_svd(A, s_r, s_c, min(r, *A.shape), gen)
    rows, cols = U * s_r[:, None], V * s_c[:, None]  # rescale by D^-1/2 (Dhillon 2001)
    if not all_live:
        rows = A.new_zeros(len(live_r), rows.shape[1]).index_put_((live_r,), rows)
        cols = A.new_zeros(len(live_c), cols.shape[1]).index_put_((live_c,), cols)
    return SpectralEmbedding(rows, cols, S, live_r, live_c)


def choose_k(W: Tensor, k_max: int = 8, *, seed: int = 0) -> int:
    """The number of clusters the singular values of ``Â`` suggest, skipping the trivial first one.

    The singular values ``s_1 >= s_2 >= ...`` of ``Â`` stay large for as many vectors as there
    are modules and then drop, so k is where the drop ``s_k - s_{k+1}`` is largest. The first
    value is always exactly 1 (the trivial vector, which carries only the degrees) and the drop
    after it is usually the largest of all, so it is left out: k runs over ``2 .. k_max``.
    A gap is a hint, not a test: even a matrix without any structure gets an answer (compare the
    partition with :func:`modlib.shuffle_test`).

    Args:
        W: (n_out, n_in) weights; any sign (the graph uses |W|).
        k_max: the largest k considered, in [2, min(n_out, n_in) - 1] (``s_{k_max+1}`` is needed).
        seed: seeds the randomized SVD used for large matrices.

    Returns:
        The k in [2, k_max] with the largest ``s_k - s_{k+1}`` (the smallest such k on a tie).

    Raises:
        TypeError: ``W`` not a floating-point tensor; ``k_max`` or ``seed`` not an int.
        ValueError: ``W`` not 2-D, empty, all zeros or non-finite, or with fewer than 3 rows or
            columns; ``k_max`` out of range.

    Example:
        >>> from modlib.core.toy import planted_matrix
        >>> choose_k(planted_matrix(80, 60, k=3, noise=0.3, seed=1).W)
        3

    Introduced in notebook 01.
    """
    side = min(check_matrix(W).shape)
    k_max = check_int(k_max, "k_max", minimum=2)
    check_int(seed, "seed")
    if side < 3:
        raise ValueError(f"'W' must have at least 3 rows and 3 columns to choose k. Got shape "
                         f"{tuple(W.shape)}.")
    if k_max > side - 1:
        raise ValueError(f"'k_max' must be an int in [2, {side - 1}]. Got {k_max} for W of shape "
                         f"{tuple(W.shape)}.")
    s = spectral_embedding(W, k_max + 1, seed=seed).singular_values  # (<= k_max + 1,)
    # dead neurons shrink the live part; the singular values of Â beyond it are exactly 0
    s = torch.cat([s, s.new_zeros(k_max + 1 - len(s))])
    gaps = s[1:-1] - s[2:]  # gaps[i] = s_{i+2} - s_{i+3}: k = 2 .. k_max
    return int(gaps.argmax()) + 2


def _kmeanspp(X: Tensor, k: int, n_init: int, gen: torch.Generator) -> Tensor:
    """Greedy k-means++ seeding for n_init runs at once: (B, k, d) centres.

    D² sampling (Arthur & Vassilvitskii 2007) with 2 + ⌊ln k⌋ candidates per step, keeping the
    one that lowers the potential most, as scikit-learn does; without the greedy step k = 16
    often ends in a poor local minimum.
    """
    n = X.shape[0]
    trials = 2 + int(math.log(k))
    idx = torch.randint(n, (n_init,), generator=gen).to(X.device)
    centres = [X[idx]]  # each (B, d)
    d2 = torch.cdist(centres[0], X).square()  # (B, n)
    for _ in range(1, k):
        # where every point already is a centre, sample uniformly
        w = torch.where(d2.sum(1, keepdim=True) > 0, d2, torch.ones_like(d2))
        cand = torch.multinomial(w.cpu().double(), trials, replacement=True, generator=gen)
        cand = cand.to(X.device)  # (B, trials)
        d2_cand = torch.minimum(d2[:, None], torch.cdist(X[cand], X).square())  # (B, trials, n)
        best = d2_cand.sum(2).argmin(1)  # (B,)
        rows = torch.arange(n_init, device=X.device)
        centres.append(X[cand[rows, best]])
        d2 = d2_cand[rows, best]
    return torch.stack(centres, dim=1)


def _assign(XT: Tensor, x2: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest centre for each point and each run: labels (B, n) and squared distances (B, n).

    Points are columns (XT: (d, n)) so that one matrix product serves all B runs and the
    minimum runs over a short outer axis, which is much faster on a CPU than over a last axis.
    """
    B, k, _ = C.shape
    Cf = C.reshape(B * k, -1)
    d2 = (Cf.square().sum(1, keepdim=True) - 2 * Cf @ XT).view(B, k, -1)  # (B, k, n) - |x|²
    best = d2.min(1)
    return best.indices, (best.values + x2).clamp_min_(0)


def _kmeans(X: Tensor, k: int, n_init: int, gen: torch.Generator, max_iter: int = 300
            ) -> Tensor:
    """Lloyd's k-means from ``n_init`` k-means++ seedings run side by side; returns every run's
    labels (n_init, n), the run with the lowest inertia first, the others in seeding order."""
    n, _ = X.shape
    tol = 1e-4 * float(X.var(0).mean()) if n > 1 else 0.0  # scikit-learn's criterion
    XT, x2 = X.T.contiguous(), X.square().sum(1)
    C = _kmeanspp(X, k, n_init, gen)  # (B, k, d)
    ids = torch.arange(k, device=X.device)[None, :, None]
    for _ in range(max_iter):
        labels, d2 = _assign(XT, x2, C)
        onehot = (labels[:, None, :] == ids).to(X.dtype)  # (B, k, n)
        counts = onehot.sum(2, keepdim=True)  # (B, k, 1)
        new = torch.where(counts > 0, (onehot @ X) / counts.clamp_min(1), C)
        for b, c in (counts.squeeze(2) == 0).nonzero().tolist():  # rare: an empty cluster
            new[b, c] = X[d2[b].argmax()]  # takes the worst-served point
        shift = float((new - C).square().sum((1, 2)).max())
        C = new
        if shift <= tol:
            break
    labels, d2 = _assign(XT, x2, C)
    best = int(d2.sum(1).argmin())
    order = [best] + [b for b in range(n_init) if b != best]
    return labels[order]


def fill_dead(labels: Tensor, live: Tensor, k: int) -> Tensor:
    """Give each dead neuron (``live`` False) the currently smallest cluster, in index order.

    Dead neurons (no weight at all) carry no information for co-clustering; this keeps the
    clusters as even as it can. ``labels`` is changed in place and returned.

    Example:
        >>> fill_dead(torch.tensor([0, 0, 0, 0]), torch.tensor([True, True, False, False]), 2)
        tensor([0, 0, 1, 1])
    """
    counts = torch.bincount(labels[live], minlength=k).tolist()
    for i in (~live).nonzero().flatten().tolist():
        c = min(range(k), key=counts.__getitem__)
        labels[i] = c
        counts[c] += 1
    return labels


def _relabel(rows: Tensor, cols: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Renumber clusters by first appearance (rows, then columns); unused labels go last."""
    seen = torch.cat([rows, cols]).tolist()
    order = list(dict.fromkeys(seen)) + [c for c in range(k) if c not in set(seen)]
    remap = torch.empty(k, dtype=torch.long)
    remap[torch.tensor(order)] = torch.arange(k)
    remap = remap.to(rows.device)
    return remap[rows], remap[cols]


def _labelled(labels: Tensor, emb: SpectralEmbedding, k: int, device: torch.device
              ) -> tuple[Tensor, Tensor]:
    """Row and column labels, numbered by first appearance, from the labels (n_live,) of the
    live neurons, rows first; dead neurons join the smallest clusters."""
    n_live_r = int(emb.live_rows.sum())
    rows = torch.zeros(len(emb.live_rows), dtype=torch.long, device=device)
    cols = torch.zeros(len(emb.live_cols), dtype=torch.long, device=device)
    rows[emb.live_rows] = labels[:n_live_r]
    cols[emb.live_cols] = labels[n_live_r:]
    rows = fill_dead(rows, emb.live_rows, k)
    cols = fill_dead(cols, emb.live_cols, k)
    return _relabel(rows, cols, k)


def _refined(W: Tensor, runs: Tensor, emb: SpectralEmbedding, k: int) -> tuple[Tensor, Tensor]:
    """Refine every distinct k-means run (runs: (n_init, n_live)), keep the one whose live
    neurons have the highest excess over chance (the lowest-inertia run on a tie), and place
    its dead neurons where they add least to the chance level.

    On a matrix of more than ``_MULTI_START_MAX`` entries only the lowest-inertia run is
    refined: each start costs passes over W, and on the large matrices of the benchmark
    (benchmarks/bench_spectral.py) every start ended within 0.0003 of the same excess, while
    on small ones the best start gained up to 0.06.
    """
    starts = {}
    for labels in runs if W.numel() <= _MULTI_START_MAX else runs[:1]:
        rows, cols = _labelled(labels, emb, k, W.device)
        starts.setdefault((tuple(rows.tolist()), tuple(cols.tolist())), (rows, cols))
    rows = torch.stack([r for r, _ in starts.values()])  # (B, n_out), B <= n_init
    cols = torch.stack([c for _, c in starts.values()])  # (B, n_in)
    rows, cols, excess, live_r, live_c = _refine_candidates(W, rows, cols, k)
    best = excess.tolist().index(max(excess.tolist()))
    return _relabel(*_place_dead(rows[best], cols[best], live_r, live_c, k), k)


def spectral_cocluster(W: Tensor, k: int, *, seed: int = 0, n_init: int = 10,
                       refine: bool = False) -> Partition:
    """Partition the rows and columns of ``W`` into k co-clusters (Dhillon 2001).

    Args:
        W: (n_out, n_in) weights, on CPU or CUDA; any sign (the graph uses |W|).
        k: number of clusters, in [1, min(n_out, n_in)].
        seed: seeds the randomized SVD and k-means++; the same seed gives the same partition.
        n_init: k-means restarts; the one with the lowest inertia is kept (with ``refine``,
            the one that refines best).
        refine: optimise the score partitions are judged by, the excess over chance
            (``clusterability − chance_level``): each distinct k-means restart is refined as
            :func:`modlib.refine_partition` does (neurons move between clusters while the
            excess rises) and the one whose live neurons then have the highest excess is
            kept; on matrices of more than 2²² entries only the lowest-inertia restart is
            refined (there they all end alike). Planted modules that co-clustering recovers
            stay recovered. Costs a few passes over ``W``. False (the default, and what the
            course uses): the co-clustering itself. Refining is fooled by neurons of unequal
            size: the chance level counts neurons, not their weight, so pairing the heaviest
            rows with the heaviest columns in small clusters scores from sizes alone. On
            matrices without modules whose neuron norms are log-normal (σ = 0.5) it finds an
            excess of about +0.4, and on every trained layer of the benchmark about as much
            as on a :func:`modlib.scale_matched` copy without modules (notebook 01; RESULTS.md).
            Read a refined partition's excess beside such a copy's.

    Returns:
        A :class:`Partition` on W's device. Clusters are numbered by first appearance.
        Dead neurons (rows or columns with all-zero weights) carry no weight, so any label
        leaves clusterability unchanged: each one joins the currently smallest cluster, in
        index order, which keeps cluster sizes (and so the chance level) as even as possible.
        With ``refine``, all dead rows join one cluster and all dead columns one, the two
        where they add least to the chance level. ``k = 1`` gives all zeros.

    Raises:
        TypeError: ``W`` not a floating-point tensor, ``k`` not an int, ``refine`` not a bool.
        ValueError: ``W`` not 2-D, empty, all zeros or non-finite; ``k`` out of range;
            ``n_init < 1``.

    Example:
        >>> W = torch.block_diag(torch.ones(3, 2), torch.ones(2, 3)) + 0.01
        >>> spectral_cocluster(W, 2).rows.tolist()
        [0, 0, 0, 1, 1]
        >>> spectral_cocluster(W, 2, refine=True).rows.tolist()
        [0, 0, 0, 1, 1]

    Introduced in notebook 01.
    """
    k = _check_k_for(check_matrix(W), k)
    check_int(n_init, "n_init", minimum=1)
    check_int(seed, "seed")
    check_bool(refine, "refine")
    n_out, n_in = W.shape
    if k == 1:
        _graph(W)  # still refuse NaN/Inf and all-zero weights
        zeros = torch.zeros(n_out + n_in, dtype=torch.long, device=W.device)
        return Partition(zeros[:n_out], zeros[n_out:], 1)
    emb = spectral_embedding(W, k, seed=seed)
    Z = torch.cat([emb.rows[emb.live_rows], emb.cols[emb.live_cols]])  # (n_live, r)
    gen = torch.Generator().manual_seed(seed)
    runs = _kmeans(Z, k, n_init, gen)  # (n_init, n_live), the lowest inertia first
    if refine:
        return Partition(*_refined(W, runs, emb, k), k)
    return Partition(*_labelled(runs[0], emb, k, W.device), k)
