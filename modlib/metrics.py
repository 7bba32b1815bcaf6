"""Clusterability of a weight matrix under a partition, and what it is to be compared with.

Clusterability C = sum of W_ij² over pairs (i, j) in the same cluster / sum of all W_ij²
(Golechha et al. 2025). An unstructured matrix scores the partition's chance level
sum_c p_c q_c (p_c, q_c: shares of rows and columns in cluster c), which is 1/k for equal
clusters. Introduced in notebook 01; the shuffled-weights null (Filan et al. 2021) in notebook 02.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .partition import Partition, _check_k

__all__ = ["clusterability", "chance_level", "random_baseline", "ShuffleTest", "shuffle_test"]


def _check_matrix(W: object, name: str = "W") -> Tensor:
    """Refuse a non-tensor, a non-float, a non-2-D or an empty ``W`` (cheap: no pass over it)."""
    if not isinstance(W, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor. Got {type(W).__name__}.")
    if not W.dtype.is_floating_point:
        raise TypeError(f"'{name}' must be a floating-point tensor. Got dtype {W.dtype}.")
    if W.ndim != 2:
        raise ValueError(f"'{name}' must be 2-D (n_out, n_in). Got shape {tuple(W.shape)}; "
                         f"use modlib.layer_matrix(module) for a conv layer.")
    if W.numel() == 0:
        raise ValueError(f"'{name}' is empty (shape {tuple(W.shape)}).")
    return W


def _check_total(W: Tensor, total: Tensor, name: str = "W") -> None:
    """Refuse NaN/Inf or all-zero weights, given a sum of |W| or W² computed anyway.

    One check of a scalar instead of extra passes over W: the total is finite and positive
    exactly when W is finite and not all zero (barring overflow, reported as such).
    """
    t = float(total.detach())
    if math.isfinite(t) and t > 0:
        return
    shape = tuple(W.shape)
    bad = int((~torch.isfinite(W.detach())).sum())
    if bad:
        raise ValueError(f"'{name}' of shape {shape} has {bad} NaN/Inf entries.")
    if t == 0:
        raise ValueError(f"'{name}' of shape {shape} is all zeros: clusterability is undefined.")
    raise ValueError(f"'{name}' of shape {shape} overflows {W.dtype} when summed; "
                     f"rescale it or use float64.")


def clusterability(W: Tensor, partition: Partition) -> Tensor:
    """Share of the squared weight mass that lies inside the clusters.

    Args:
        W: (n_out, n_in) weight matrix (see :func:`modlib.layer_matrix`).
        partition: cluster labels for its rows and columns.

    Returns:
        A scalar tensor in [0, 1], differentiable in ``W``.

    Raises:
        TypeError: ``W`` not a floating-point tensor.
        ValueError: ``W`` not 2-D, empty, all zeros, holding NaN/Inf, or of another shape than
            the partition.

    Example:
        >>> W = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> float(clusterability(W, Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), 2)))
        1.0

    Introduced in notebook 01.
    """
    _check_matrix(W)
    partition.check_fits(W)
    W2 = W.square()
    total = W2.sum()
    _check_total(W, total)
    return (W2 * partition.to(W.device).mask()).sum() / total


def chance_level(partition: Partition) -> float:
    """Expected clusterability of an unstructured matrix under ``partition``: sum_c p_c q_c.

    p_c and q_c are the shares of rows and of columns in cluster c. Equal clusters give 1/k;
    lopsided ones give more (all neurons in one cluster give 1). Report clusterability beside it.

    Example:
        >>> chance_level(Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), 2))
        0.5
    """
    r, c = partition.sizes()
    n_out, n_in = partition.shape
    return float((r.double() / n_out * c.double() / n_in).sum())


def random_baseline(k: int) -> float:
    """1/k: the clusterability of k equal random clusters on an unstructured matrix.

    Example:
        >>> random_baseline(4)
        0.25
    """
    return 1.0 / _check_k(k)


@dataclass(frozen=True)
class ShuffleTest:
    """Result of :func:`shuffle_test`.

    Attributes:
        observed: clusterability of the best spectral partition of W.
        null: the same for each shuffled copy of W.
        p_value: (1 + #{null >= observed}) / (1 + len(null)).
        chance: chance level of the observed partition's cluster sizes.
        partition: the spectral partition of W.
    """

    observed: float
    null: list[float] = field(repr=False)
    p_value: float
    chance: float
    partition: Partition = field(repr=False)


def shuffle_test(W: Tensor, k: int, *, n_shuffles: int = 20, seed: int = 0,
                 progress: bool = True) -> ShuffleTest:
    """Is W more clusterable than its own weights in random places? (Filan et al. 2021.)

    Clusters W with :func:`modlib.spectral_cocluster` and compares the clusterability found
    with that of ``n_shuffles`` copies of W whose entries are randomly permuted (same weight
    distribution, no structure), each clustered the same way.

    Args:
        W: (n_out, n_in) weights.
        k: number of clusters.
        n_shuffles: number of shuffled copies (the smallest p-value is 1/(n_shuffles+1)).
        seed: seeds both the shuffles and the clustering.
        progress: show a progress bar.

    Returns:
        A :class:`ShuffleTest` with the observed value, the null values and the p-value.

    Raises:
        ValueError: bad ``W`` (see :func:`clusterability`), bad ``k``, ``n_shuffles < 1``.

    Introduced in notebook 02.
    """
    from .spectral import spectral_cocluster  # spectral imports this module

    if isinstance(n_shuffles, bool) or not isinstance(n_shuffles, int) or n_shuffles < 1:
        raise ValueError(f"'n_shuffles' must be an int >= 1. Got {n_shuffles!r}.")
    W = W.detach()
    part = spectral_cocluster(W, k, seed=seed)
    observed = float(clusterability(W, part))
    gen = torch.Generator().manual_seed(seed)
    null = []
    for i in tqdm(range(n_shuffles), desc="shuffled nulls", disable=not progress, leave=False):
        perm = torch.randperm(W.numel(), generator=gen).to(W.device)
        Ws = W.flatten()[perm].view_as(W)
        null.append(float(clusterability(Ws, spectral_cocluster(Ws, k, seed=seed + 1 + i))))
    p = (1 + sum(v >= observed for v in null)) / (1 + n_shuffles)
    return ShuffleTest(observed, null, p, chance_level(part), part)
