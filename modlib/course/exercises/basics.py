"""Checkers for the exercises of notebooks 00–03: clusterability, chance level, the normalised
matrix, aligned blocks, the loss value, the p-value of the shuffle test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...core.metrics import chance_level, clusterability
from ...core.partition import contiguous_partition
from ...core.spectral import normalized_matrix, spectral_cocluster
from ...validate import check_int
from ._core import _N_CASES, _check, _random_partitions

__all__ = ["check_clusterability", "check_cluster_order", "check_permute", "check_chance_level",
           "check_normalized_matrix", "check_block_mask", "check_loss_value", "check_p_value",
           "check_spectral_gap"]


def check_clusterability(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, rows, cols)`` → the share of W² inside the clusters (notebook 01)."""
    check_int(seed, "seed")
    cases = (((W, p.rows, p.cols), clusterability(W, p)) for W, p in _random_partitions(seed))
    return _check("clusterability", fn, cases)


def check_cluster_order(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(labels)`` → the permutation that sorts neurons by cluster, keeping the
    original order inside each cluster (a stable sort; notebook 00)."""
    check_int(seed, "seed")
    cases = (((p.rows,), p.order()[0]) for _, p in _random_partitions(seed))
    return _check("cluster_order", fn, cases, atol=0)


def check_permute(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, rows, cols)`` → W with rows and columns sorted by cluster, so that the
    clusters become diagonal blocks (notebook 00)."""
    check_int(seed, "seed")
    cases = (((W, p.rows, p.cols), p.permute(W)) for W, p in _random_partitions(seed))
    return _check("permute", fn, cases, atol=0)


def check_chance_level(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(rows, cols, k)`` → sum over clusters of p_c q_c (notebook 01)."""
    check_int(seed, "seed")
    cases = (((p.rows, p.cols, p.k), chance_level(p)) for _, p in _random_partitions(seed))
    return _check("chance_level", fn, cases)


def check_normalized_matrix(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W)`` → D_r^-1/2 |W| D_c^-1/2 with 0 for dead neurons (notebook 01)."""
    check_int(seed, "seed")
    cases = (((W,), normalized_matrix(W)[0]) for W, _ in _random_partitions(seed))
    return _check("normalized_matrix", fn, cases)


def check_block_mask(fn: Callable[[int, int, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(n_out, n_in, k)`` → the (n_out, n_in) bool mask of k contiguous equal blocks
    (notebook 03)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            n_out, n_in = (int(x) for x in torch.randint(2, 40, (2,), generator=g))
            k = int(torch.randint(1, min(n_out, n_in) + 1, (1,), generator=g))
            yield (n_out, n_in, k), contiguous_partition(n_out, n_in, k).mask()

    return _check("block_mask", fn, cases(), atol=0)


def check_loss_value(fn: Callable[[list[Tensor], list[Tensor]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(weights, masks)`` → 1 − mean over layers of the share of W² inside each mask
    (notebook 03)."""
    check_int(seed, "seed")
    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        parts = list(_random_partitions(seed))
        for i in range(0, len(parts) - 2, 3):
            Ws = [W + 0.1 for W, _ in parts[i:i + 3]]
            masks = [p.mask() for _, p in parts[i:i + 3]]
            want = 1 - torch.stack([clusterability(W, p) for W, (_, p)
                                    in zip(Ws, parts[i:i + 3], strict=True)]).mean()
            yield (Ws, masks), want

    return _check("loss_value", fn, cases())


def check_p_value(fn: Callable[[float, list[float]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(observed, null)`` → the empirical p-value (1 + #{null ≥ observed}) /
    (1 + len(null)) (notebook 02)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], float]]:
        for i in range(_N_CASES):
            null = torch.rand(int(torch.randint(1, 30, (1,), generator=g)), generator=g).tolist()
            observed = null[0] if i % 4 == 0 else float(torch.rand(1, generator=g))  # ties too
            yield (observed, null), (1 + sum(v >= observed for v in null)) / (1 + len(null))

    return _check("p_value", fn, cases())


def check_spectral_gap(fn: Callable[[Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, k)`` → the clusterability of ``modlib.spectral_cocluster(W, k)`` minus
    the chance level of that same partition (notebook 02)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES // 2):  # each case runs spectral co-clustering: keep it quick
            n_out, n_in = (int(x) for x in torch.randint(8, 40, (2,), generator=g))
            k = int(torch.randint(2, 6, (1,), generator=g))
            W = torch.randn(n_out, n_in, generator=g)
            part = spectral_cocluster(W, k)
            yield (W, k), clusterability(W, part) - chance_level(part)

    return _check("spectral_gap", fn, cases(), atol=1e-4)
