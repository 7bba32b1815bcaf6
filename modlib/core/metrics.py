"""Clusterability of a weight matrix under a partition, and what it is to be compared with.

Clusterability C = sum of W_ij² over pairs (i, j) in the same cluster / sum of all W_ij²
(Golechha et al. 2025). An unstructured matrix scores the partition's chance level
sum_c p_c q_c (p_c, q_c: shares of rows and columns in cluster c), which is 1/k for equal
clusters. Introduced in notebook 01; the shuffled-weights null (Filan et al. 2021) in notebook 02.
"""

from __future__ import annotations

import warnings

from torch import Tensor

from ..validate import check_int, check_matrix, check_real, check_total
from .partition import Partition, check_partition

__all__ = ["clusterability", "chance_level", "near_zero_share", "random_baseline"]


def clusterability(W: Tensor, partition: Partition) -> Tensor:
    """Share of the squared weight mass that lies inside the clusters.

    Args:
        W: (n_out, n_in) weight matrix (see :func:`modlib.layer_matrix`).
        partition: cluster labels for its rows and columns.

    Returns:
        A scalar tensor in [0, 1], differentiable in ``W``.

    Raises:
        TypeError: ``W`` not a floating-point tensor, ``partition`` not a :class:`Partition`.
        ValueError: ``W`` not 2-D, empty, all zeros, holding NaN/Inf, or of another shape than
            the partition.

    Example:
        >>> import torch
        >>> W = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> float(clusterability(W, Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), 2)))
        1.0

    Introduced in notebook 01.
    """
    check_matrix(W)
    check_partition(partition).check_fits(W)
    W2 = W.square()
    total = W2.sum()
    check_total(W, total)
    return (W2 * partition.to(W.device).mask()).sum() / total


def chance_level(partition: Partition) -> float:
    """Expected clusterability of an unstructured matrix under ``partition``: sum_c p_c q_c.

    p_c and q_c are the shares of rows and of columns in cluster c. Equal clusters give 1/k;
    lopsided ones give more (all neurons in one cluster give 1). Report clusterability beside it.

    Example:
        >>> import torch
        >>> chance_level(Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), 2))
        0.5

    Raises:
        TypeError: ``partition`` is not a :class:`Partition`.
    """
    r, c = check_partition(partition).sizes()
    n_out, n_in = partition.shape
    return float((r.double() / n_out * c.double() / n_in).sum())


def near_zero_share(W: Tensor, *, rel: float = 0.05) -> float:
    """Share of a weight matrix's entries that are near zero: ``|W_ij| < rel · max |W|``.

    The clusterability loss drives the weights outside the clusters towards zero, so a modular
    layer is also a sparse one; this measures how sparse, so that a control can be matched to it.

    Args:
        W: (n_out, n_in) weight matrix (see :func:`modlib.layer_matrix`).
        rel: the threshold, as a share of the largest magnitude, in (0, 1).

    Returns:
        A float in [0, 1].

    Raises:
        TypeError: ``W`` not a floating-point tensor; ``rel`` not a real.
        ValueError: ``W`` not 2-D, empty, all zeros or holding NaN/Inf; ``rel`` outside (0, 1).

    Example:
        >>> import torch
        >>> near_zero_share(torch.tensor([[1.0, 0.001], [0.0, -0.5]]))
        0.5

    Introduced in notebook 03.
    """
    check_matrix(W)
    rel = check_real(rel, "rel", minimum=0, maximum=1, low_open=True, high_open=True)
    A = W.detach().abs()
    top = A.max()
    check_total(W, top)
    return float((A < rel * top).double().mean())


def random_baseline(k: int) -> float:
    """1/k: the chance level of k equal clusters. Deprecated: use :func:`chance_level`.

    :func:`chance_level` of a partition is the one chance level the course uses: it matches the
    partition's own cluster sizes, and equals 1/k when they are equal. This name is kept so that
    older notebooks run; it warns once.

    Example:
        >>> random_baseline(4)
        0.25
    """
    warnings.warn("modlib.random_baseline(k) is deprecated: use modlib.chance_level(partition), "
                  "the chance level of the partition's own cluster sizes (1/k for equal clusters).",
                  DeprecationWarning, stacklevel=2)
    return 1.0 / check_int(k, "k", minimum=1)
