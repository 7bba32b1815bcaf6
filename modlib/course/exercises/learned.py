"""Checkers for the exercises of notebooks 04–05: cluster ablation, specialization and circuits
(04), conv layers as weight graphs and class-wise accuracy (05).

Each checker's docstring lists the edge cases it tries besides its random inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ...analysis.interp import class_accuracy, specialization
from ...analysis.patching import inside_share, jaccard
from ...core.graph import layer_matrix
from ...core.partition import Partition
from ...validate import check_int
from ._core import (
    _N_CASES,
    _Case,
    _case,
    _check,
    _Code,
    _draw,
    _gen,
    _partitions,
    _rand_mask,
    _randn,
)

__all__ = ["check_specialization", "check_jaccard", "check_inside_share", "check_conv_matrix",
           "check_class_accuracy"]


# The reference implementations: each checker computes its expected answers with one of these
# (or with _conv_graph, _class_accuracy below), and modlib.exercises.reference(name) hands out
# the same function.

def _ref_specialization(drop: Tensor) -> float:
    return specialization(drop, min_drop=0.05)


def _ref_jaccard(a: Tensor, b: Tensor) -> float:
    return jaccard({"W": a}, {"W": b})


def _ref_inside_share(mask: Tensor, rows: Tensor, cols: Tensor) -> float:
    """The share needs no number of clusters (an edge is inside when its two labels agree):
    as the learner's function, it gets none, and gives the Partition the labels' own."""
    k = int(max(rows.max(), cols.max())) + 1
    return inside_share({"W": mask}, {"W": Partition(rows, cols, k)})


def check_specialization(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(drop)`` → the specialization score of a (k, n_classes) drop matrix, k ≥ 2, as
    :func:`modlib.analysis.interp.specialization` with ``min_drop=0.05`` (notebook 04).

    Edge cases: no class left (0.0), a class that one cluster takes all of (0 log 0 = 0), a
    class that every cluster matters for alike, a class below 0.05, negative drops.

    Example:
        >>> check_specialization(lambda drop: 1.0)  # doctest: +ELLIPSIS
        ✗ specialization: your function returned 1.0000, expected 0.0000. Edge case: no class ...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        low = f"(0.04 * torch.rand(3, 4, {_gen(_draw(g, 0, 10_000))})).round(decimals=3)"
        yield _case(_ref_specialization, _Code(low),
                    note="no class has a drop of 0.05 or more")
        yield _case(_ref_specialization,
                    torch.tensor([[0.5, 0.4, 0.01, -0.1], [0.0, 0.4, 0.02, 0.3]]),
                    note="class 0 depends on cluster 0 alone, class 1 on both alike, class 2 "
                         "on none")
        yield _case(_ref_specialization, torch.tensor([[-0.2, -0.05, -0.1], [0.3, 0.6, 0.2],
                                             [0.1, 0.0, 0.25]]),
                    note="cluster 0 has negative drops only")
        for _ in range(_N_CASES - 3):
            k, rand = _draw(g, 2, 6), _gen(_draw(g, 0, 10_000))
            drop = f"(1.2 * torch.rand({k}, 10, {rand}) - 0.2).round(decimals=2)"
            yield _case(_ref_specialization, _Code(drop))

    return _check("specialization", fn, cases(), ("drop",))


def check_jaccard(fn: Callable[[Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(a, b)`` → shared True entries of two bool masks over entries True in either;
    1.0 when both are empty (notebook 04).

    Edge cases: both masks empty (1.0), one empty (0.0), the same mask twice (1.0), disjoint
    masks (0.0).

    Example:
        >>> check_jaccard(lambda a, b: float((a & b).sum() / (a | b).sum()))  # doctest: +ELLIPSIS
        ✗ jaccard: your function returned nan, expected 1.0000 (...). Edge case: both masks empty...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        empty = _Code("torch.zeros(3, 4, dtype=torch.bool)")
        yield _case(_ref_jaccard, empty, empty, note="both masks empty")
        some = _Code(_rand_mask(3, 4, seed=_draw(g, 0, 10_000), density=0.5))
        yield _case(_ref_jaccard, some, empty, note="the second mask is empty")
        yield _case(_ref_jaccard, some, some, note="the same mask twice")
        yield _case(_ref_jaccard, some, _Code(some.text.replace("<", ">=")), note="disjoint masks")
        for _ in range(_N_CASES - 4):
            shape = (_draw(g, 2, 12), _draw(g, 2, 12))
            density = round(float(torch.rand(1, generator=g)), 2)
            a, b = (_Code(_rand_mask(*shape, seed=_draw(g, 0, 10_000), density=density))
                    for _ in range(2))
            yield _case(_ref_jaccard, a, b)

    return _check("jaccard", fn, cases(), ("a", "b"))


def check_inside_share(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(mask, rows, cols)`` → the share of a circuit's edges (True in the (n_out, n_in)
    bool ``mask``, never empty) whose output and input neuron are in the same cluster
    (notebook 04).

    Edge cases: every neuron in one cluster (1.0), no output neuron sharing a cluster with an
    input neuron (0.0), a cluster with rows but no columns and an empty one.

    Example:
        >>> def share(mask, rows, cols):
        ...     inside = rows[:, None] == cols[None, :]
        ...     return (mask & inside).sum() / mask.sum()
        >>> check_inside_share(share)
        ✓ inside_share: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        for p in _partitions(seed):
            n_out, n_in = p.W.build().shape
            while True:  # a circuit has at least one edge: draw until it does
                mask = _Code(_rand_mask(n_out, n_in, seed=_draw(g, 0, 10_000), density=0.4))
                if bool(mask.build().any()):
                    break
            yield _case(_ref_inside_share, mask, p.rows, p.cols, note=p.about_clusters)

    return _check("inside_share", fn, cases(), ("mask", "rows", "cols"))


def _conv_graph(weight: Tensor) -> Tensor:
    """:func:`modlib.layer_matrix` of a Conv2d holding ``weight`` (C_out, C_in, kh, kw)."""
    c_out, c_in, kh, kw = weight.shape
    conv = nn.Conv2d(c_in, c_out, (kh, kw), bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight)
    return layer_matrix(conv).detach()


def check_conv_matrix(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(weight)`` → the (C_out, C_in) weight graph of a conv kernel
    (C_out, C_in, kh, kw): the L2 norm of each kernel slice, as :func:`modlib.layer_matrix`
    (notebook 05).

    Edge cases: a 1×1 kernel (the norm of one number is its absolute value), one input and
    one output channel, a dead output channel (all its kernels zero).

    Example:
        >>> check_conv_matrix(lambda weight: weight.norm(dim=(2, 3)))
        ✓ conv_matrix: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def weight(*shape: int, then: str = "") -> _Code:
        return _Code(_randn(*shape, seed=_draw(g, 0, 10_000)) + then)

    def cases() -> Iterator[_Case]:
        yield _case(_conv_graph, weight(4, 3, 1, 1), note="a 1×1 kernel")
        yield _case(_conv_graph, weight(1, 1, 3, 3), note="one input and one output channel")
        yield _case(_conv_graph, weight(3, 2, 2, 2, then=".index_fill(0, torch.tensor([1]), 0.0)"),
                    note="a dead output channel: weight[1] is all zeros")
        for _ in range(_N_CASES - 3):
            yield _case(_conv_graph, weight(_draw(g, 1, 9), _draw(g, 1, 9), _draw(g, 1, 6),
                                            _draw(g, 1, 6)))

    return _check("conv_matrix", fn, cases(), ("weight",))


class _Logits(nn.Module):
    """A "model" whose input is already its logits: lets class_accuracy score given logits."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # class_accuracy reads the device from it

    def forward(self, logits: Tensor) -> Tensor:
        return logits


def _class_accuracy(logits: Tensor, y: Tensor, n_classes: int) -> Tensor:
    return class_accuracy(_Logits(), [(logits, y)], n_classes)


def check_class_accuracy(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(logits, y, n_classes)`` → the (n_classes,) accuracy on each class, from
    (N, n_classes) logits and (N,) labels in which every class occurs, as
    :func:`modlib.analysis.interp.class_accuracy` (notebook 05).

    Edge cases: one example per class, every prediction right, every prediction wrong.

    Example:
        >>> def accuracy(logits, y, n_classes):
        ...     hit = (logits.argmax(1) == y).float()
        ...     return torch.bincount(y, hit, n_classes) / torch.bincount(y, minlength=n_classes)
        >>> check_class_accuracy(accuracy)
        ✓ class_accuracy: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def labels(n: int, n_classes: int) -> _Code:  # every class occurs when n >= n_classes
        return _Code(f"torch.randperm({n}, {_gen(_draw(g, 0, 10_000))}) % {n_classes}")

    def cases() -> Iterator[_Case]:
        one_hot = torch.nn.functional.one_hot
        yield _case(_class_accuracy, 2 * one_hot(torch.tensor([2, 0, 1, 2]), 4).float(),
                    torch.tensor([2, 0, 3, 1]), 4, note="one example per class")
        y = torch.tensor([2, 0, 1, 1, 0, 2])
        right = one_hot(y, 3).float()
        yield _case(_class_accuracy, right, y, 3, note="every prediction right")
        yield _case(_class_accuracy, right.roll(1, dims=1), y, 3, note="every prediction wrong")
        for _ in range(_N_CASES - 3):
            n_classes = _draw(g, 2, 11)
            n = n_classes + _draw(g, 0, 40)
            logits = _Code(_randn(n, n_classes, seed=_draw(g, 0, 10_000), decimals=None))
            yield _case(_class_accuracy, logits, labels(n, n_classes), n_classes)

    return _check("class_accuracy", fn, cases(), ("logits", "y", "n_classes"))


# name -> reference implementation: modlib.exercises.reference(name) looks names up here.
_REFERENCES: dict[str, Callable[..., Any]] = {
    "specialization": _ref_specialization, "jaccard": _ref_jaccard,
    "inside_share": _ref_inside_share, "conv_matrix": _conv_graph,
    "class_accuracy": _class_accuracy,
}
