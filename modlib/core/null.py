"""The shuffled-weights null: is a matrix more clusterable than its own weights in random places?

Filan et al. (2021): cluster W, then cluster copies of W whose entries are randomly permuted (the
same weight distribution, no structure); the p-value is the share of copies that score as high.
Introduced in notebook 02.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..validate import check_bool, check_int, check_matrix
from .metrics import chance_level, clusterability
from .partition import Partition
from .spectral import spectral_cocluster

__all__ = ["ShuffleTest", "shuffle_test"]


@dataclass(frozen=True)
class ShuffleTest:
    """Result of :func:`shuffle_test`.

    Attributes:
        observed: clusterability of the best spectral partition of W.
        null: the same for each shuffled copy of W.
        p_value: (1 + #{null >= observed}) / (1 + len(null)).
        chance_level: chance level of the observed partition's cluster sizes.
        partition: the spectral partition of W.
    """

    observed: float
    null: list[float] = field(repr=False)
    p_value: float
    chance_level: float
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
    check_matrix(W)
    check_int(k, "k", minimum=1)
    check_int(n_shuffles, "n_shuffles", minimum=1)
    check_int(seed, "seed")
    check_bool(progress, "progress")
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
