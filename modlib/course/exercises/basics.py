"""Checkers for the exercises of notebooks 00–03: clusterability, chance level, the normalised
matrix, aligned blocks, the loss value, the p-value of the shuffle test, the spectral gap.

Each checker's docstring lists the edge cases it tries besides its random inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...core.metrics import chance_level, clusterability
from ...core.partition import Partition, contiguous_partition
from ...core.spectral import normalized_matrix, spectral_cocluster
from ...validate import check_int
from ._core import _N_CASES, _Case, _case, _check, _Code, _draw, _partitions, _randn

__all__ = ["check_clusterability", "check_cluster_order", "check_permute", "check_chance_level",
           "check_normalized_matrix", "check_block_mask", "check_loss_value", "check_p_value",
           "check_spectral_gap"]


def _partition(rows: Tensor, cols: Tensor) -> Partition:
    return Partition(rows, cols, int(max(rows.max(), cols.max())) + 1)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# The reference implementations: each checker computes its expected answers with one of these,
# and modlib.exercises.reference(name) hands out the same function.

def _ref_clusterability(W: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    return clusterability(W, _partition(rows, cols))


def _ref_cluster_order(labels: Tensor) -> Tensor:
    return _partition(labels, labels).order()[0]


def _ref_permute(W: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    return _partition(rows, cols).permute(W)


def _ref_chance_level(rows: Tensor, cols: Tensor, k: int) -> Tensor:
    return chance_level(Partition(rows, cols, k))


def _ref_normalized_matrix(W: Tensor) -> Tensor:
    return normalized_matrix(W)[0]


def _ref_block_mask(n_out: int, n_in: int, k: int) -> Tensor:
    return contiguous_partition(n_out, n_in, k).mask()


def _ref_loss_value(weights: list[Tensor], masks: list[Tensor]) -> Tensor:
    """1 − the mean over layers of the share of W² inside the mask, as
    :func:`modlib.clusterability` computes it for a partition's mask."""
    shares = [(W.square() * m).sum() / W.square().sum()
              for W, m in zip(weights, masks, strict=True)]
    return 1 - torch.stack(shares).mean()


def _ref_p_value(observed: float, null: list[float]) -> float:
    return (1 + sum(v >= observed for v in null)) / (1 + len(null))


def _ref_spectral_gap(W: Tensor, k: int) -> Tensor:
    part = spectral_cocluster(W, k)
    return clusterability(W, part) - chance_level(part)


def check_clusterability(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, rows, cols)`` → the share of W² inside the clusters (notebook 01).

    Edge cases: every neuron in one cluster (1), no output neuron sharing a cluster with an
    input neuron (0), dead neurons (rows or columns of zeros), a cluster with rows but no
    columns and an empty one.

    Example:
        >>> check_clusterability(lambda W, rows, cols: float("nan"))  # doctest: +ELLIPSIS
        ✗ clusterability: your function returned nan, expected 1.0000 (a nan usually comes ...
        False
    """
    check_int(seed, "seed")
    cases = (_case(_ref_clusterability, p.W, p.rows, p.cols,
                   note=_join(p.about_clusters, p.about_W)) for p in _partitions(seed))
    return _check("clusterability", fn, cases, ("W", "rows", "cols"))


def check_cluster_order(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(labels)`` → the permutation that sorts neurons by cluster, keeping the
    original order inside each cluster (a stable sort; notebook 00).

    Edge cases: every neuron in one cluster (the identity), a cluster with a single neuron.

    Example:
        >>> check_cluster_order(lambda labels: torch.sort(labels, stable=True).indices)
        ✓ cluster_order: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    cases = (_case(_ref_cluster_order, p.rows, note=p.about_clusters if p.k == 1 else "")
             for p in _partitions(seed))
    return _check("cluster_order", fn, cases, ("labels",), atol=0)


def check_permute(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, rows, cols)`` → W with rows and columns sorted by cluster, so that the
    clusters become diagonal blocks (notebook 00).

    Edge cases: as :func:`check_clusterability`.

    Example:
        >>> order = lambda labels: torch.sort(labels, stable=True).indices
        >>> check_permute(lambda W, rows, cols: W[order(rows)][:, order(cols)])
        ✓ permute: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    cases = (_case(_ref_permute, p.W, p.rows, p.cols, note=_join(p.about_clusters, p.about_W))
             for p in _partitions(seed))
    return _check("permute", fn, cases, ("W", "rows", "cols"), atol=0)


def check_chance_level(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(rows, cols, k)`` → sum over clusters of p_c q_c (notebook 01).

    Edge cases: k = 1 (1), no output neuron sharing a cluster with an input neuron (0), a
    cluster with rows but no columns and an empty one (``k`` counts it).

    Example:
        >>> check_chance_level(lambda rows, cols, k: 1 / k)  # doctest: +ELLIPSIS
        ✗ chance_level: your function returned 0.5000, expected 0.0000. Edge case: no output ...
        False
    """
    check_int(seed, "seed")
    cases = (_case(_ref_chance_level, p.rows, p.cols, p.k, note=p.about_clusters)
             for p in _partitions(seed))
    return _check("chance_level", fn, cases, ("rows", "cols", "k"))


def check_normalized_matrix(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W)`` → D_r^-1/2 |W| D_c^-1/2 with 0 for dead neurons (notebook 01).

    Edge cases: dead neurons (a row or a column of zeros: 0 there, not 0/0).

    Example:
        >>> A = lambda W: W.abs()
        >>> no_guard = lambda W: A(W) / A(W).sum(1, keepdim=True).sqrt() / A(W).sum(0).sqrt()
        >>> check_normalized_matrix(no_guard)  # doctest: +ELLIPSIS
        ✗ normalized_matrix: your function returned nan at index [0, 2], expected 0.0000 (...
        False
    """
    check_int(seed, "seed")
    cases = (_case(_ref_normalized_matrix, p.W, note=p.about_W) for p in _partitions(seed))
    return _check("normalized_matrix", fn, cases, ("W",))


def check_block_mask(fn: Callable[[int, int, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(n_out, n_in, k)`` → the (n_out, n_in) bool mask of k contiguous equal blocks
    (notebook 03).

    Edge cases: k = 1, one neuron per block, k equal to the smaller side, sizes that k does
    not divide.

    Example:
        >>> blocks = lambda n, k: torch.arange(n) * k // n
        >>> check_block_mask(lambda n_out, n_in, k: blocks(n_out, k)[:, None] == blocks(n_in, k))
        ✓ block_mask: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _case(_ref_block_mask, 5, 7, 1, note="k = 1: a single block")
        yield _case(_ref_block_mask, 4, 4, 4, note="one neuron per block")
        yield _case(_ref_block_mask, 3, 10, 3, note="k equal to the smaller side")
        yield _case(_ref_block_mask, 7, 5, 3, note="sizes that k does not divide")
        for _ in range(_N_CASES - 4):
            n_out, n_in = _draw(g, 2, 40), _draw(g, 2, 40)
            yield _case(_ref_block_mask, n_out, n_in, _draw(g, 1, min(n_out, n_in) + 1))

    return _check("block_mask", fn, cases(), ("n_out", "n_in", "k"), atol=0)


def check_loss_value(fn: Callable[[list[Tensor], list[Tensor]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(weights, masks)`` → 1 − mean over layers of the share of W² inside each mask
    (notebook 03).

    Edge cases: a single layer, a mask with no True entry next to one with no False entry.

    Example:
        >>> share = lambda W, m: (W**2 * m).sum() / (W**2).sum()
        >>> check_loss_value(lambda Ws, ms: 1 - sum(map(share, Ws, ms)) / len(Ws))
        ✓ loss_value: correct on 4 random inputs.
        True
    """
    check_int(seed, "seed")
    parts = list(_partitions(seed))

    def case(layers: list[Any], note: str = "") -> _Case:
        weights = _Code("[" + ", ".join(p.W.text for p in layers) + "]")
        masks = _Code("[" + ", ".join(f"torch.tensor({p.rows.tolist()})[:, None] == "
                                      f"torch.tensor({p.cols.tolist()})" for p in layers) + "]")
        return _case(_ref_loss_value, weights, masks, note=note)

    def cases() -> Iterator[_Case]:
        yield case(parts[3:4], "a single layer")
        yield case(parts[:3], "the first mask has no False entry, the third no True entry")
        yield case(parts[4:7])
        yield case(parts[7:10])

    return _check("loss_value", fn, cases(), ("weights", "masks"))


def check_p_value(fn: Callable[[float, list[float]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(observed, null)`` → the empirical p-value (1 + #{null ≥ observed}) /
    (1 + len(null)) (notebook 02).

    Edge cases: a single null value, the observed value above every null value (the smallest
    p-value) or below all of them (1), ties (a null value equal to the observed one counts).

    Example:
        >>> check_p_value(lambda observed, null: sum(v > observed for v in null) / len(null))
        ... # doctest: +ELLIPSIS
        ✗ p_value: your function returned 0.0000, expected 1.0000. ... observed = 0.5, null = [0.5]
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _case(_ref_p_value, 0.5, [0.5], note="a single null value, equal to the observed one")
        yield _case(_ref_p_value, 0.9, [0.12, 0.5, 0.33, 0.87, 0.05, 0.61, 0.2, 0.44, 0.7],
                    note="the observed value beats every null value")
        yield _case(_ref_p_value, 0.05, [0.4, 0.71, 0.6], note="every null value beats it")
        yield _case(_ref_p_value, 0.3, [0.3, 0.1, 0.3, 0.55],
                    note="ties: two null values equal the observed one")
        for i in range(_N_CASES - 4):
            null = [round(v, 2) for v in torch.rand(_draw(g, 1, 30), generator=g).tolist()]
            observed = null[0] if i % 4 == 0 else round(float(torch.rand(1, generator=g)), 2)
            yield _case(_ref_p_value, observed, null)

    return _check("p_value", fn, cases(), ("observed", "null"))


def check_spectral_gap(fn: Callable[[Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, k)`` → the clusterability of ``modlib.spectral_cocluster(W, k)`` minus
    the chance level of that same partition (notebook 02).

    Edge cases: k = 1 (a gap of 0), planted clusters, dead neurons (they join the smallest
    clusters, which moves the chance level).

    Example:
        >>> def gap(W, k):
        ...     part = spectral_cocluster(W, k)
        ...     return clusterability(W, part) - chance_level(part)
        >>> check_spectral_gap(gap)
        ✓ spectral_gap: correct on 6 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def planted(n_blocks: int, seed: int) -> str:
        n_out, n_in = 4 * n_blocks, 3 * n_blocks
        noise = _randn(n_out, n_in, seed=seed, decimals=None)
        return f"(torch.block_diag(*[torch.ones(4, 3)] * {n_blocks}) + 0.3 * {noise})"

    def cases() -> Iterator[_Case]:  # each case runs spectral co-clustering: keep it quick
        W = _Code(_randn(10, 8, seed=_draw(g, 0, 10_000), decimals=None))
        yield _case(_ref_spectral_gap, W, 1, note="k = 1")
        yield _case(_ref_spectral_gap, _Code(planted(3, _draw(g, 0, 10_000))), 3,
                    note="three planted clusters")
        dead = ".index_fill(0, torch.tensor([0, 5]), 0.0).index_fill(1, torch.tensor([4]), 0.0)"
        yield _case(_ref_spectral_gap, _Code(planted(4, _draw(g, 0, 10_000)) + dead), 4,
                    note="dead neurons: rows 0 and 5 and column 4 of W are all zeros")
        for _ in range(_N_CASES // 2 - 3):
            n_out, n_in = _draw(g, 8, 40), _draw(g, 8, 40)
            W = _Code(_randn(n_out, n_in, seed=_draw(g, 0, 10_000), decimals=None))
            yield _case(_ref_spectral_gap, W, _draw(g, 2, 6))

    return _check("spectral_gap", fn, cases(), ("W", "k"), atol=1e-4)


# name -> reference implementation: modlib.exercises.reference(name) looks names up here.
_REFERENCES: dict[str, Callable[..., Any]] = {
    "clusterability": _ref_clusterability, "cluster_order": _ref_cluster_order,
    "permute": _ref_permute, "chance_level": _ref_chance_level,
    "normalized_matrix": _ref_normalized_matrix, "block_mask": _ref_block_mask,
    "loss_value": _ref_loss_value, "p_value": _ref_p_value, "spectral_gap": _ref_spectral_gap,
}
