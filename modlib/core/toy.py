"""Toy weight matrices with planted modules, where the right answer is known.

Introduced in notebook 01: a matrix whose weights are larger inside k planted co-clusters,
with its rows and columns shuffled so that the modules are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..validate import check_bool, check_int, check_real
from .partition import Partition

__all__ = ["Planted", "planted_matrix"]


@dataclass(frozen=True)
class Planted:
    """A planted matrix and its hidden partition.

    Attributes:
        W: (n_out, n_in) weights, rows and columns shuffled.
        partition: the planted clusters of W's rows and columns.
    """

    W: Tensor
    partition: Partition


def planted_matrix(n_out: int = 60, n_in: int = 40, k: int = 4, *, noise: float = 0.3,
                   seed: int = 0, shuffle: bool = True) -> Planted:
    """Gaussian weights inside k co-clusters, ``noise`` times as large outside them.

    Args:
        n_out: rows (output neurons).
        n_in: columns (input neurons).
        k: planted clusters, in [1, min(n_out, n_in)]; sizes are equal (±1).
        noise: standard deviation of the weights between clusters, relative to 1 inside
            them; 0 gives a block-diagonal matrix, 1 no structure at all.
        seed: seeds the weights and the shuffle.
        shuffle: hide the modules by permuting rows and columns.

    Returns:
        A :class:`Planted` with W and its planted partition.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: sizes < 1, ``k`` out of range, ``noise`` negative or not finite.

    Example:
        >>> toy = planted_matrix(6, 4, 2, noise=0.0, shuffle=False)
        >>> toy.partition.rows.tolist()
        [0, 0, 0, 1, 1, 1]

    Introduced in notebook 01.
    """
    check_int(n_out, "n_out", minimum=1)
    check_int(n_in, "n_in", minimum=1)
    check_int(k, "k", minimum=1)
    check_real(noise, "noise", minimum=0)
    check_int(seed, "seed")
    check_bool(shuffle, "shuffle")
    if k > min(n_out, n_in):
        raise ValueError(f"'k' must be an int in [1, {min(n_out, n_in)}]. Got {k} for a "
                         f"{n_out}×{n_in} matrix.")
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(n_out) * k // n_out
    cols = torch.arange(n_in) * k // n_in
    if shuffle:
        rows = rows[torch.randperm(n_out, generator=g)]
        cols = cols[torch.randperm(n_in, generator=g)]
    scale = torch.where(rows[:, None] == cols[None, :], 1.0, noise)
    W = torch.randn(n_out, n_in, generator=g) * scale
    return Planted(W, Partition(rows, cols, k))
