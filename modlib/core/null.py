"""Null copies of a weight matrix: is a layer more clusterable than a copy without modules?

Two kinds of copy, each clustered the same way as the layer itself:

- ``"shuffle"`` (Filan et al. 2021): the entries randomly permuted. The same weights, in random
  places: no modules, and no neuron larger than another either.
- ``"scales"``: :func:`scale_matched`, Gaussian entries whose expected squares keep every row's
  and every column's squared weight. The neurons keep their sizes; only the modules are gone.
  Trained layers have neurons of very unequal size (in the course's MNIST CNN, fc1's heaviest
  tenth of inputs carries 25 % of its squared weight, its lightest tenth 3 %), and a partition
  can score above the chance level of its cluster sizes by pairing heavy rows with heavy columns
  alone; this copy scores that too.

The p-value is the share of copies that score as high. Introduced in notebook 02 (the
``"scales"`` copy in notebook 01).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..validate import check_bool, check_choice, check_int, check_matrix, check_total
from .metrics import chance_level, clusterability
from .partition import Partition
from .spectral import spectral_cocluster

__all__ = ["NULLS", "ShuffleTest", "scale_matched", "shuffle_test"]

NULLS = ("shuffle", "scales")  # the kinds of null copy shuffle_test makes


@dataclass(frozen=True)
class ShuffleTest:
    """Result of :func:`shuffle_test`.

    Attributes:
        observed: clusterability of the best spectral partition of W.
        null: the same for each null copy of W.
        p_value: (1 + #{null >= observed}) / (1 + len(null)).
        chance_level: chance level of the observed partition's cluster sizes.
        partition: the spectral partition of W.
        kind: the kind of null copy, one of ``NULLS``.
    """

    observed: float
    null: list[float] = field(repr=False)
    p_value: float
    chance_level: float
    partition: Partition = field(repr=False)
    kind: str = "shuffle"


def scale_matched(W: Tensor, *, seed: int = 0) -> Tensor:
    """A copy of W without modules whose neurons keep their sizes.

    Entry ``(i, j)`` is ``g_ij · sqrt(r_i · c_j / S)`` with ``g_ij`` standard Gaussian, ``r_i``
    row i's squared weight ``Σ_j W_ij²``, ``c_j`` column j's and ``S`` all of it. So the
    expected squared weight of every row is ``r_i`` and of every column ``c_j``, as in W, and
    the expected share of weight inside any partition's clusters is ``Σ_c R_c · K_c``, the
    product of the shares of row and column weight each cluster holds: how much a partition
    scores from the neurons' sizes alone. Dead neurons stay dead.

    Args:
        W: (n_out, n_in) weights; any sign.
        seed: seeds the Gaussian entries.

    Returns:
        A tensor of W's shape, dtype and device.

    Raises:
        TypeError: ``W`` not a floating-point tensor, ``seed`` not an int.
        ValueError: ``W`` not 2-D, empty, all zeros or non-finite.

    Example:
        >>> W = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
        >>> scale_matched(W, seed=0).shape
        torch.Size([2, 2])

    Introduced in notebook 01.
    """
    check_matrix(W)
    check_int(seed, "seed")
    return _scale_matched(W, _scales(W), seed)


def _scales(W: Tensor) -> Tensor:
    """(n_out, n_in) float64 ``sqrt(r_i · c_j / S)``, the scale of each entry of a
    scale-matched copy; refuses an all-zero or non-finite W."""
    W2 = W.detach().double().square()
    rows, cols = W2.sum(1, keepdim=True), W2.sum(0, keepdim=True)
    total = rows.sum()
    check_total(W, total)
    return torch.sqrt(rows * cols / total)


def _scale_matched(W: Tensor, scales: Tensor, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(W.shape, generator=gen, dtype=torch.float64)
    return (g * scales).to(W.device, W.dtype)


def _shuffled(W: Tensor, gen: torch.Generator) -> Tensor:
    perm = torch.randperm(W.numel(), generator=gen).to(W.device)
    return W.flatten()[perm].view_as(W)


def shuffle_test(W: Tensor, k: int, *, n_shuffles: int = 20, seed: int = 0,
                 progress: bool = True, null: str = "shuffle") -> ShuffleTest:
    """Is W more clusterable than its null copies? (Filan et al. 2021.)

    Clusters W with :func:`modlib.spectral_cocluster` and compares the clusterability found
    with that of ``n_shuffles`` null copies of W, each clustered the same way.

    Args:
        W: (n_out, n_in) weights.
        k: number of clusters.
        n_shuffles: number of null copies (the smallest p-value is 1/(n_shuffles+1)).
        seed: seeds both the copies and the clustering.
        progress: show a progress bar.
        null: ``"shuffle"`` (W's entries randomly permuted: same weights, no structure) or
            ``"scales"`` (:func:`scale_matched`: no modules, but every neuron keeps its
            size, so a layer whose only structure is neurons of unequal size does not pass).

    Returns:
        A :class:`ShuffleTest` with the observed value, the null values and the p-value.

    Raises:
        ValueError: bad ``W`` (see :func:`clusterability`), bad ``k``, ``n_shuffles < 1``,
            ``null`` not one of ``NULLS``.

    Introduced in notebook 02.
    """
    check_matrix(W)
    check_int(k, "k", minimum=1)
    check_int(n_shuffles, "n_shuffles", minimum=1)
    check_int(seed, "seed")
    check_bool(progress, "progress")
    check_choice(null, "null", NULLS)
    W = W.detach()
    part = spectral_cocluster(W, k, seed=seed)
    observed = float(clusterability(W, part))
    gen = torch.Generator().manual_seed(seed)
    values = []
    scales = _scales(W) if null == "scales" else None  # the same for every copy
    desc = "shuffled nulls" if scales is None else "scale-matched nulls"
    for i in tqdm(range(n_shuffles), desc=desc, disable=not progress, leave=False):
        Wn = _shuffled(W, gen) if scales is None else _scale_matched(W, scales, seed + 1 + i)
        values.append(float(clusterability(Wn, spectral_cocluster(Wn, k, seed=seed + 1 + i))))
    p = (1 + sum(v >= observed for v in values)) / (1 + n_shuffles)
    return ShuffleTest(observed, values, p, chance_level(part), part, null)
