"""Checkers for the exercises of notebooks 04–05: cluster ablation, specialization and circuits
(04), conv layers as weight graphs and class-wise accuracy (05)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ...analysis.interp import class_accuracy, specialization
from ...analysis.patching import inside_share, jaccard
from ...core.graph import layer_matrix
from ...validate import check_int
from ._core import _N_CASES, _check, _random_partitions

__all__ = ["check_specialization", "check_jaccard", "check_inside_share", "check_conv_matrix",
           "check_class_accuracy"]


def check_specialization(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(drop)`` → the specialization score of a (k, n_classes) drop matrix, as
    :func:`modlib.analysis.interp.specialization` with ``min_drop=0.05`` (notebook 04)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], float]]:
        for i in range(_N_CASES):
            k, n_classes = int(torch.randint(2, 6, (1,), generator=g)), 10
            drop = torch.rand(k, n_classes, generator=g) * 1.2 - 0.2  # some negative drops
            drop[:, 0] = 0.03 * torch.rand(k, generator=g)  # below min_drop: left out
            drop[:, 1] = 0.0
            drop[int(torch.randint(k, (1,), generator=g)), 1] = 0.5  # one cluster only
            drop[:, 2] = 0.4  # every cluster alike
            if i == 0:
                drop = drop.clamp(max=0.04)  # no class counts: 0
            yield (drop,), specialization(drop, min_drop=0.05)

    return _check("specialization", fn, cases())


def check_jaccard(fn: Callable[[Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(a, b)`` → shared True entries of two bool masks over entries True in either;
    1.0 when both are empty (notebook 04)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], float]]:
        for i in range(_N_CASES):
            shape = tuple(int(x) for x in torch.randint(2, 12, (2,), generator=g))
            density = float(torch.rand(1, generator=g))
            a, b = (torch.rand(shape, generator=g) < density for _ in range(2))
            if i == 0:
                a, b = torch.zeros_like(a), torch.zeros_like(b)
            yield (a, b), jaccard({"W": a}, {"W": b})

    return _check("jaccard", fn, cases())


def check_inside_share(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(mask, rows, cols)`` → the share of a circuit's edges (True in the (n_out, n_in)
    bool ``mask``) whose output and input neuron are in the same cluster (notebook 04)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], float]]:
        for W, part in _random_partitions(seed):
            mask = torch.rand(W.shape, generator=g) < 0.4
            mask[0, 0] = True  # never empty
            yield (mask, part.rows, part.cols), inside_share({"W": mask}, {"W": part})

    return _check("inside_share", fn, cases())


def check_conv_matrix(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(weight)`` → the (C_out, C_in) weight graph of a conv kernel
    (C_out, C_in, kh, kw): the L2 norm of each kernel slice, as :func:`modlib.layer_matrix`
    (notebook 05)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            c_out, c_in = (int(x) for x in torch.randint(1, 9, (2,), generator=g))
            kh, kw = (int(x) for x in torch.randint(1, 6, (2,), generator=g))
            conv = nn.Conv2d(c_in, c_out, (kh, kw), bias=False)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
            yield (conv.weight.detach().clone(),), layer_matrix(conv).detach()

    return _check("conv_matrix", fn, cases())


class _Logits(nn.Module):
    """A "model" whose input is already its logits: lets class_accuracy score given logits."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # class_accuracy reads the device from it

    def forward(self, logits: Tensor) -> Tensor:
        return logits


def check_class_accuracy(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(logits, y, n_classes)`` → the (n_classes,) accuracy on each class, from
    (N, n_classes) logits and (N,) labels, as :func:`modlib.analysis.interp.class_accuracy`
    (notebook 05)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            n_classes = int(torch.randint(2, 11, (1,), generator=g))
            n = n_classes + int(torch.randint(0, 40, (1,), generator=g))
            y = torch.cat([torch.arange(n_classes),  # every class at least once
                           torch.randint(n_classes, (n - n_classes,), generator=g)])
            y = y[torch.randperm(n, generator=g)]
            logits = torch.randn(n, n_classes, generator=g)
            logits[torch.arange(n), y] += 1.0  # better than chance, not perfect
            yield (logits, y, n_classes), class_accuracy(_Logits(), [(logits, y)], n_classes)

    return _check("class_accuracy", fn, cases())
