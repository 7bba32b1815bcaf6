"""Partitions of a layer's neurons into k clusters.

A :class:`Partition` gives every output neuron (row of ``W``) and every input neuron (column of
``W``) one of ``k`` cluster labels; output cluster ``c`` is paired with input cluster ``c``.
Introduced in notebook 01 (weights as graphs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..validate import check_instance, check_int, check_mapping, describe

__all__ = ["Partition", "check_partition", "check_partitions", "contiguous_labels",
           "contiguous_partition"]


def _check_labels(labels: object, k: int, name: str) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor of integer labels. "
                        f"Got {describe(labels)}.")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold integer labels. Got dtype {labels.dtype}.")
    if labels.ndim != 1:
        raise ValueError(f"'{name}' must be 1-D. Got shape {tuple(labels.shape)}.")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"'{name}' labels must lie in [0, {k}) for k={k}. "
                         f"Got values in [{int(labels.min())}, {int(labels.max())}].")
    return labels.long()


@dataclass(frozen=True)
class Partition:
    """Cluster labels for the output neurons (``rows``) and input neurons (``cols``) of a layer.

    Args:
        rows: (n_out,) integer labels in ``[0, k)`` for the output neurons.
        cols: (n_in,) integer labels in ``[0, k)`` for the input neurons.
        k: the number of clusters (some may be empty).

    Raises:
        TypeError: labels that are not integer tensors, or a non-int ``k``.
        ValueError: ``k < 1``, labels that are not 1-D or fall outside ``[0, k)``.

    Example:
        >>> p = Partition(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), k=2)
        >>> p.shape
        (3, 2)
    """

    rows: Tensor
    cols: Tensor
    k: int

    def __post_init__(self) -> None:
        k = check_int(self.k, "k", minimum=1)
        object.__setattr__(self, "rows", _check_labels(self.rows, k, "rows"))
        object.__setattr__(self, "cols", _check_labels(self.cols, k, "cols"))

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_out, n_in)``: the shape of the weight matrix this partition fits."""
        return (self.rows.numel(), self.cols.numel())

    def mask(self) -> Tensor:
        """(n_out, n_in) bool mask, True where row and column share a cluster."""
        return self.rows[:, None] == self.cols[None, :]

    def sizes(self) -> tuple[Tensor, Tensor]:
        """Number of rows and of columns in each cluster: two (k,) tensors."""
        return (torch.bincount(self.rows, minlength=self.k),
                torch.bincount(self.cols, minlength=self.k))

    def order(self) -> tuple[Tensor, Tensor]:
        """Row and column permutations that sort neurons by cluster (stable).

        ``W[row_perm][:, col_perm]`` is block-diagonal in cluster order; see :meth:`permute`.
        """
        return (torch.sort(self.rows, stable=True).indices,
                torch.sort(self.cols, stable=True).indices)

    def permute(self, W: Tensor) -> Tensor:
        """``W`` (n_out, n_in) with rows and columns reordered by cluster, for plotting.

        Raises:
            ValueError: if ``W`` does not have this partition's shape.
        """
        self.check_fits(W)
        row_perm, col_perm = self.order()
        return W[row_perm.to(W.device)][:, col_perm.to(W.device)]

    def check_fits(self, W: Tensor, name: str = "W") -> None:
        """Raise ``ValueError`` unless ``W`` is 2-D with shape ``(n_out, n_in)``.

        Raises:
            TypeError: ``W`` is not a tensor.
        """
        if not isinstance(W, Tensor):
            raise TypeError(f"'{name}' must be a torch.Tensor. Got {describe(W)}.")
        if W.ndim != 2 or tuple(W.shape) != self.shape:
            raise ValueError(f"'{name}' of shape {tuple(W.shape)} does not fit a partition of "
                             f"{self.shape[0]} rows and {self.shape[1]} columns.")

    def to(self, device: torch.device | str) -> Partition:
        """The same partition with its labels on ``device``."""
        if not isinstance(device, (str, torch.device)):
            raise TypeError(f"'device' must be a torch.device or str. Got {describe(device)}.")
        return Partition(self.rows.to(device), self.cols.to(device), self.k)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partition):
            return NotImplemented
        return (self.k == other.k and torch.equal(self.rows.cpu(), other.rows.cpu())
                and torch.equal(self.cols.cpu(), other.cols.cpu()))

    __hash__ = None  # type: ignore[assignment]  # mutable tensors inside: not hashable


def check_partition(value: object, name: str = "partition") -> Partition:
    """``value`` if it is a :class:`Partition`; a ``TypeError`` naming ``name`` otherwise.

    Example:
        >>> check_partition(4)
        Traceback (most recent call last):
        ...
        TypeError: 'partition' must be a modlib Partition. Got int 4.
    """
    return check_instance(value, name, Partition, "a modlib Partition")


def check_partitions(value: object, name: str = "partitions") -> dict[str, Partition]:
    """``value`` if it is a non-empty dict ``{layer name: Partition}``.

    Example:
        >>> check_partitions({})
        Traceback (most recent call last):
        ...
        ValueError: 'partitions' must be a non-empty dict {layer name: Partition}. Got dict {}.
    """
    check_mapping(value, name, "{layer name: Partition}")
    assert isinstance(value, dict)
    for key, part in value.items():
        check_instance(key, f"{name} key", str, "a layer name (str)")
        check_partition(part, f"{name}[{key!r}]")
    return value


def contiguous_labels(n: int, k: int) -> Tensor:
    """(n,) labels splitting ``0..n-1`` into k contiguous blocks of equal size (±1).

    Neuron ``i`` gets ``floor(i * k / n)``, so the same n and k always give the same blocks:
    that is what aligns output block c of one layer with input block c of the next.

    Raises:
        ValueError: if ``k`` is not in ``[1, n]``.

    Example:
        >>> contiguous_labels(5, 2).tolist()
        [0, 0, 0, 1, 1]
    """
    check_int(k, "k", minimum=1)
    check_int(n, "n", minimum=1)
    if k > n:
        raise ValueError(f"'k' must be an int in [1, {n}] for {n} neurons. Got {k}.")
    return torch.arange(n) * k // n


def contiguous_partition(n_out: int, n_in: int, k: int, *, in_groups: int | None = None
                         ) -> Partition:
    """k equal contiguous blocks on each side, aligned across consecutive layers.

    Args:
        n_out: number of output neurons (rows).
        n_in: number of input neurons (columns).
        k: number of clusters; at most ``min(n_out, in_groups or n_in)``.
        in_groups: when the input is a flattened feature map (Conv2d → flatten → Linear),
            the number of channels feeding it; column j then belongs to channel
            ``j // (n_in // in_groups)`` and takes that channel's block, so a conv channel's
            whole feature map stays in the channel's cluster.

    Returns:
        The :class:`Partition` with ``rows = contiguous_labels(n_out, k)`` and matching ``cols``.

    Raises:
        ValueError: k larger than a side, or ``n_in`` not a multiple of ``in_groups``.

    Example:
        >>> contiguous_partition(4, 6, 2).cols.tolist()
        [0, 0, 0, 1, 1, 1]
        >>> contiguous_partition(4, 6, 2, in_groups=3).cols.tolist()  # 3 channels, 2 values each
        [0, 0, 0, 0, 1, 1]
    """
    check_int(n_out, "n_out", minimum=1)
    check_int(n_in, "n_in", minimum=1)
    rows = contiguous_labels(n_out, k)
    if in_groups is None:
        return Partition(rows, contiguous_labels(n_in, k), k)
    check_int(in_groups, "in_groups", minimum=1)
    if n_in % in_groups:
        raise ValueError(f"'in_groups' must be a positive divisor of n_in={n_in}. "
                         f"Got {in_groups!r}.")
    cols = contiguous_labels(in_groups, k).repeat_interleave(n_in // in_groups)
    return Partition(rows, cols, k)
