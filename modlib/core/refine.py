"""Refining a partition by moving neurons while its excess over chance rises.

A co-clustering is judged by its **excess over chance**, ``clusterability − chance_level``
(DESIGN.md), which spectral co-clustering does not optimise. Written per entry, the excess is

    excess = Σ_{i, j in the same cluster} (W_ij² / S − 1 / (n_out · n_in)),   S = Σ W_ij²,

a sum over the pairs a partition keeps inside, of how much more weight each pair carries than
an average entry (the second terms add up to the chance level Σ_c p_c q_c). So with the
columns' labels fixed, each row's best cluster can be read off on its own: the c maximising

    gain[i, c] = (n_out · n_in / S) · Σ_{j in c} W_ij²  −  (number of columns in c),

its squared weight into c in units of an average entry, minus what chance puts there. Moving
every row to its best cluster at once is the best change of all the rows for those columns, and
likewise for the columns given the rows. Alternating the two (block coordinate ascent) never
lowers the excess and stops when no single neuron can raise it: a local optimum, where a
planted partition whose modules stand out already is.

The first sweeps cost one pass over W each (``W² @ onehot``, O(n_out · n_in · k), W squared a
block of rows at a time); once few neurons move, only the moved neurons' weights are read.
Several starting partitions are refined side by side, in the same passes. Dead neurons (no
weight at all) change the chance level alone; see :func:`refine_partition`.

The excess it raises has a blind spot: the chance level counts neurons, not their weight, so
a partition that puts the heaviest rows and columns together in small clusters scores above
chance from the neurons' sizes alone, without any module. Refined partitions find that
structure wherever neurons differ in size; compare them with :func:`modlib.scale_matched`
copies (notebook 01).

Introduced in notebook 01 (why raw clusterability rewards lopsided partitions).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..validate import check_int, check_matrix, check_total
from .metrics import chance_level, clusterability
from .partition import Partition, check_partition

__all__ = ["refine_partition"]

_MAX_SWEEPS = 100  # far more than needed: the benchmarks converge within about 30 sweeps
_BLOCK = 1 << 18  # entries of W squared at a time (1 MB in float32: fits a CPU cache)


def _blocks(W: Tensor) -> Iterator[tuple[slice, Tensor]]:
    """``(rows, W[rows]²)`` for blocks of rows of about ``_BLOCK`` entries, squared into one
    reused buffer: W² is never stored whole (a copy of W, and slow to allocate)."""
    step = max(1, _BLOCK // W.shape[1])
    buf = W.new_empty(min(step, W.shape[0]), W.shape[1])
    for i in range(0, W.shape[0], step):
        block = buf[: min(step, W.shape[0] - i)]
        yield slice(i, i + step), torch.square(W[i:i + step], out=block)


def _times(W: Tensor, X: Tensor, dim: int) -> Tensor:
    """``W² @ X`` (n_out, c) for dim 0, ``W²ᵀ @ X`` (n_in, c) for dim 1."""
    if dim == 0:
        out = X.new_empty(W.shape[0], X.shape[1])
        for rows, square in _blocks(W):
            torch.matmul(square, X, out=out[rows])
        return out
    out = X.new_zeros(X.shape[1], W.shape[1])  # (Xᵀ W²)ᵀ: a transposed W² is slower on a CPU
    for rows, square in _blocks(W):
        out.addmm_(X[rows].T, square)
    return out.T


def _live_part(W: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, float]:
    """The live part of W (float32 or float64), its rows' and columns' sums of squares, which
    rows and columns of W are live (not all zero), and ``n_live_out · n_live_in / S``.

    Refuses NaN/Inf and all-zero W.
    """
    W = W.detach()
    if W.dtype not in (torch.float32, torch.float64):
        W = W.float()
    sum_r, sum_c = W.new_empty(W.shape[0]), W.new_zeros(W.shape[1])
    for rows, square in _blocks(W):
        torch.sum(square, 1, out=sum_r[rows])
        sum_c += square.sum(0)
    total = sum_r.sum(dtype=torch.float64)
    check_total(W, total)
    live_r, live_c = sum_r > 0, sum_c > 0
    if not (live_r.all() and live_c.all()):
        W, sum_r, sum_c = W[live_r][:, live_c], sum_r[live_r], sum_c[live_c]
    return W, sum_r, sum_c, live_r, live_c, W.numel() / float(total)


class _Side:
    """One side (rows or columns) of B candidate partitions, as the refinement sees it.

    Attributes:
        W: (n_out, n_in) weights (live part); this side's neurons lie along ``dim``.
        labels: (B, n) cluster labels of this side's n neurons.
        mass: (B, n, k) float64: each neuron's squared weight into each cluster of the other
            side, times ``n_out · n_in / S`` (so that an average entry weighs 1).
        tol: (n,) the least gain a move must show: above the rounding of the matrix products
            (a full product, and the incremental updates added to it since).
    """

    def __init__(self, W: Tensor, dim: int, sums: Tensor, labels: Tensor, scale: float
                 ) -> None:
        self.W, self.dim, self.labels, self.scale = W, dim, labels, scale
        self.mass: Tensor | None = None  # measured when first needed
        other = W.shape[1 - dim]
        self.tol = 64 * torch.finfo(W.dtype).eps * (sums.double() * scale + other)

    def sizes(self, k: int) -> Tensor:
        """(B, k) float64: how many of this side's neurons each cluster holds."""
        return F.one_hot(self.labels, k).sum(1, dtype=torch.float64)

    def _add(self, W: Tensor, X: Tensor, B: int, k: int) -> None:
        mass = _times(W, X, self.dim).view(-1, B, k).transpose(0, 1).double() * self.scale
        self.mass = mass if self.mass is None else self.mass + mass

    def measure(self, other: Tensor, k: int) -> None:
        """Recompute ``mass`` from the other side's labels (B, m): one pass over W."""
        B, m = other.shape
        onehot = F.one_hot(other, k).to(self.W.dtype)  # (B, m, k)
        self.mass = None
        self._add(self.W, onehot.transpose(0, 1).reshape(m, B * k), B, k)

    def update(self, moved: Tensor, old: Tensor, new: Tensor, k: int) -> None:
        """Add to ``mass`` what the other side's moves changed: only the moved neurons' weights.

        Args:
            moved: (u,) indices of the other side's neurons that moved in some candidate.
            old, new: (B, u) their labels before and after.
        """
        delta = (F.one_hot(new, k) - F.one_hot(old, k)).to(self.W.dtype)  # (B, u, k)
        B, u, _ = delta.shape
        W = self.W.index_select(1 - self.dim, moved)  # the moved neurons' weights only
        self._add(W, delta.transpose(0, 1).reshape(u, B * k), B, k)

    def step(self, other_sizes: Tensor, k: int) -> Tensor:
        """Move every neuron to its best cluster; returns the (B, n) bool moves."""
        gain = self.mass - other_sizes[:, None, :]  # (B, n, k)
        current = gain.gather(2, self.labels[..., None]).squeeze(2)  # (B, n)
        best, target = gain.max(2)
        move = _keep_clusters(best > current + self.tol, self.labels, current - best, k)
        self.labels = torch.where(move, target, self.labels)
        return move


def _keep_clusters(move: Tensor, labels: Tensor, loss: Tensor, k: int) -> Tensor:
    """Cancel, in each cluster that every member would leave, the move that gains least.

    A refined partition keeps its k clusters: without this, the excess sometimes rises by
    merging a small cluster into others, and "k clusters" would silently become fewer.
    """
    stay = torch.zeros(labels.shape[0], k, dtype=torch.long, device=labels.device)
    stay.scatter_add_(1, labels, (~move).long())
    size = torch.zeros_like(stay).scatter_add_(1, labels, torch.ones_like(labels))
    for b, c in ((size > 0) & (stay == 0)).nonzero().tolist():  # rare; at most B·k
        i = int(torch.where(labels[b] == c, loss[b], torch.inf).argmin())
        move[b, i] = False
    return move


def _half_sweep(side: _Side, other: _Side, k: int) -> Tensor:
    """Move ``side``'s neurons given ``other``'s labels, and bring ``other.mass`` up to date:
    by the moved neurons alone when few moved, else by one full product. (B,) moves made."""
    old = side.labels
    move = side.step(other.sizes(k), k)
    moved = move.any(0).nonzero().squeeze(1)  # (u,): moved in some candidate
    if other.mass is None or 8 * len(moved) > len(old[0]):
        other.measure(side.labels, k)
    elif len(moved):
        other.update(moved, old[:, moved], side.labels[:, moved], k)
    return move.sum(1)


def _distinct(rows: Tensor, cols: Tensor) -> Tensor:
    """(B,) bool, False for a candidate equal to an earlier one (it would move the same way)."""
    keep = [True] * rows.shape[0]
    for b in range(rows.shape[0]):
        keep[b] = not any(torch.equal(rows[a], rows[b]) and torch.equal(cols[a], cols[b])
                          for a in range(b) if keep[a])
    return torch.tensor(keep, device=rows.device)


def _refine_candidates(W: Tensor, rows: Tensor, cols: Tensor, k: int, *,
                       max_sweeps: int = _MAX_SWEEPS
                       ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Refine the live part of B candidate partitions side by side (no argument checks).

    Dead neurons keep their labels and count in no size. A candidate that becomes equal to an
    earlier one is dropped (it would move the same way). When few neurons move, the masses are
    updated by the moved neurons' weights alone, added up in float64 so that rounding does not
    pile up.

    Args:
        W: (n_out, n_in) weights, checked by the caller.
        rows: (B, n_out) and ``cols``: (B, n_in) labels in [0, k), on W's device.
        k: number of clusters.
        max_sweeps: most sweeps (a sweep moves the rows, then the columns).

    Returns:
        ``(rows, cols, excess, live_rows, live_cols)``: the refined labels (B', n_out) and
        (B', n_in) of the B' <= B distinct candidates, in their order; the (B',) excess over
        chance of their live parts; which rows (n_out,) and columns (n_in,) are live.
    """
    W, sum_r, sum_c, live_r, live_c, scale = _live_part(W)
    R = _Side(W, 0, sum_r, rows[:, live_r], scale)
    C = _Side(W, 1, sum_c, cols[:, live_c], scale)
    R.measure(C.labels, k)  # C's masses: after the rows' first moves
    for _ in range(max_sweeps):
        moved = _half_sweep(R, C, k) + _half_sweep(C, R, k)
        if int(moved.sum()) == 0:
            break
        keep = _distinct(R.labels, C.labels)
        if not keep.all():
            rows, cols = rows[keep], cols[keep]
            for side in (R, C):
                side.labels, side.mass = side.labels[keep], side.mass[keep]
    inside = R.mass.gather(2, R.labels[..., None]).sum((1, 2))  # (B',)
    excess = (inside - (R.sizes(k) * C.sizes(k)).sum(1)) / W.numel()
    rows, cols = rows.clone(), cols.clone()
    rows[:, live_r], cols[:, live_c] = R.labels, C.labels
    return rows, cols, excess, live_r, live_c


def _place_dead(rows: Tensor, cols: Tensor, live_r: Tensor, live_c: Tensor, k: int
                ) -> tuple[Tensor, Tensor]:
    """All dead rows (n_out,) into one cluster and all dead columns (n_in,) into one: the pair
    of clusters where they add least to the chance level (the least of all placements)."""
    n_r, n_c = int((~live_r).sum()), int((~live_c).sum())
    if n_r == 0 and n_c == 0:
        return rows, cols
    r = torch.bincount(rows[live_r], minlength=k).double()  # (k,) live rows per cluster
    q = torch.bincount(cols[live_c], minlength=k).double()
    # chance · n_out · n_in grows by n_r q_a + n_c r_b, and n_r n_c more when a = b; the
    # chance level is linear in each side's dead labels, so one cluster per side is best
    eye = torch.eye(k, dtype=torch.float64, device=r.device)
    a, b = divmod(int((n_r * q[:, None] + n_c * r[None, :] + n_r * n_c * eye).argmin()), k)
    rows, cols = rows.clone(), cols.clone()
    rows[~live_r], cols[~live_c] = a, b
    return rows, cols


def _excess(W: Tensor, partition: Partition) -> float:
    return float(clusterability(W.detach(), partition)) - chance_level(partition)


def refine_partition(W: Tensor, partition: Partition, *, max_sweeps: int = _MAX_SWEEPS
                     ) -> Partition:
    """Move neurons between clusters while the excess over chance rises.

    The excess is ``clusterability(W, p) − chance_level(p)``. Each sweep moves every row to the
    cluster where it adds most excess given the columns, then every column given the rows (see
    the module's docstring), until no single neuron's move raises the excess, or for
    ``max_sweeps`` sweeps. No cluster loses all its live rows or all its live columns (when
    they would all leave, the one that gains least stays), so k clusters stay k clusters.

    Dead neurons (all-zero rows or columns) carry no weight, so their clusters change the
    chance level alone. The sweeps leave them out (as co-clustering does): they neither move
    nor count in a cluster's size, so live neurons go where the weights say. Then all dead rows
    join one cluster and all dead columns one, the two where they add least to the chance
    level. The result never has less excess than ``partition`` (if it had, ``partition``
    comes back). Deterministic: no randomness is involved.

    Args:
        W: (n_out, n_in) weights; any sign (clusterability uses W²).
        partition: the starting partition, e.g. from :func:`modlib.spectral_cocluster`.
        max_sweeps: most sweeps, >= 1.

    Returns:
        A new :class:`Partition` on the partition's device, with the same k and the same
        cluster numbers where neurons did not move.

    Raises:
        TypeError: ``W`` not a floating-point tensor, ``partition`` not a :class:`Partition`,
            ``max_sweeps`` not an int.
        ValueError: ``W`` not 2-D, empty, all zeros or non-finite, or of another shape than the
            partition; ``max_sweeps < 1``.

    Example:
        >>> from modlib.core.toy import planted_matrix
        >>> toy = planted_matrix(40, 30, k=2, noise=0.3, seed=0)
        >>> start = Partition(toy.partition.rows, torch.zeros(30, dtype=torch.long), 2)
        >>> better = refine_partition(toy.W, start)  # every column in cluster 0, at first
        >>> excess = lambda p: round(float(clusterability(toy.W, p)) - chance_level(p), 3)
        >>> excess(start), excess(better), better == toy.partition
        (0.037, 0.417, True)

    Introduced in notebook 01.
    """
    check_matrix(W)
    check_partition(partition).check_fits(W)
    max_sweeps = check_int(max_sweeps, "max_sweeps", minimum=1)
    rows, cols, _, live_r, live_c = _refine_candidates(
        W, partition.rows.to(W.device)[None], partition.cols.to(W.device)[None], partition.k,
        max_sweeps=max_sweeps)
    rows, cols = _place_dead(rows[0], cols[0], live_r, live_c, partition.k)
    device = partition.rows.device
    refined = Partition(rows.to(device), cols.to(device), partition.k)
    if live_r.all() and live_c.all():  # every sweep raised the excess itself
        return refined
    return refined if _excess(W, refined) >= _excess(W, partition) else partition
