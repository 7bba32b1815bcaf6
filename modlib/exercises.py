"""Checkers for the notebooks' exercises.

Each ``check_<name>(fn)`` runs the learner's function on fresh random inputs, compares it with
the reference implementation in modlib, and prints one friendly line: what is right, or the
first input on which it goes wrong and how (type, shape or value). It returns True when every
case passes, so a notebook can ``assert check_...(my_function)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from .metrics import chance_level, clusterability
from .partition import Partition, contiguous_partition
from .spectral import normalized_matrix

__all__ = ["check_clusterability", "check_chance_level", "check_normalized_matrix",
           "check_block_mask", "check_loss_value", "check_p_value"]

_N_CASES = 12


def _describe(args: tuple[Any, ...]) -> str:
    parts = []
    for a in args:
        if isinstance(a, Tensor):
            parts.append(f"a tensor of shape {tuple(a.shape)}")
        elif isinstance(a, (list, tuple)) and all(isinstance(t, Tensor) for t in a):
            shapes = ", ".join(str(tuple(t.shape)) for t in a)
            parts.append(f"a list of {len(a)} tensors of shapes {shapes}")
        else:
            parts.append(repr(a))
    return ", ".join(parts)


def _compare(got: Any, want: Tensor | float, atol: float) -> str | None:
    """None if ``got`` matches ``want``, else what is wrong, in words."""
    if isinstance(want, Tensor) and want.ndim > 0:
        if not isinstance(got, Tensor):
            return f"returned {type(got).__name__}, expected a tensor of shape {tuple(want.shape)}"
        if got.shape != want.shape:
            return f"returned shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        if not torch.allclose(got.detach().double().cpu(), want.double(), atol=atol):
            err = float((got.detach().double().cpu() - want.double()).abs().max())
            return f"returned values that differ from the expected ones by up to {err:.3g}"
        return None
    try:
        value = float(got)
    except (TypeError, ValueError, RuntimeError):
        return f"returned {type(got).__name__}, expected a number"
    if abs(value - float(want)) > atol:
        return f"returned {value:.4f}, expected {float(want):.4f}"
    return None


def _check(name: str, fn: Callable[..., Any], cases: Iterator[tuple[tuple[Any, ...], Any]],
           atol: float = 1e-5) -> bool:
    if not callable(fn):
        print(f"✗ {name}: expected a function, got {type(fn).__name__}.")
        return False
    n = 0
    for args, want in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"✗ {name}: not implemented yet: replace the `...` / NotImplementedError.")
            return False
        except Exception as e:  # the learner's bug: report it, do not crash the notebook
            print(f"✗ {name}: raised {type(e).__name__}: {e} for {_describe(args)}.")
            return False
        problem = _compare(got, want, atol)
        if problem:
            print(f"✗ {name}: for {_describe(args)}, your function {problem}.")
            return False
        n += 1
    print(f"✓ {name}: correct on {n} random inputs.")
    return True


def _random_partitions(seed: int) -> Iterator[tuple[Tensor, Partition]]:
    g = torch.Generator().manual_seed(seed)
    for i in range(_N_CASES):
        n_out, n_in = (int(x) for x in torch.randint(2, 12, (2,), generator=g))
        k = int(torch.randint(1, min(n_out, n_in) + 1, (1,), generator=g))
        W = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
        if i % 3 == 0:
            W[0] = 0.0  # a dead neuron
        part = Partition(torch.randint(k, (n_out,), generator=g),
                         torch.randint(k, (n_in,), generator=g), k)
        yield W, part


def check_clusterability(fn: Callable[[Tensor, Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, rows, cols)`` → the share of W² inside the clusters (notebook 01)."""
    cases = (((W, p.rows, p.cols), clusterability(W, p)) for W, p in _random_partitions(seed))
    return _check("clusterability", fn, cases)


def check_chance_level(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(rows, cols, k)`` → sum over clusters of p_c q_c (notebook 01)."""
    cases = (((p.rows, p.cols, p.k), chance_level(p)) for _, p in _random_partitions(seed))
    return _check("chance_level", fn, cases)


def check_normalized_matrix(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W)`` → D_r^-1/2 |W| D_c^-1/2 with 0 for dead neurons (notebook 01)."""
    cases = (((W,), normalized_matrix(W)[0]) for W, _ in _random_partitions(seed))
    return _check("normalized_matrix", fn, cases)


def check_block_mask(fn: Callable[[int, int, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(n_out, n_in, k)`` → the (n_out, n_in) bool mask of k contiguous equal blocks
    (notebook 03)."""
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            n_out, n_in = (int(x) for x in torch.randint(2, 40, (2,), generator=g))
            k = int(torch.randint(1, min(n_out, n_in) + 1, (1,), generator=g))
            yield (n_out, n_in, k), contiguous_partition(n_out, n_in, k).mask()

    return _check("block_mask", fn, cases(), atol=0)


def check_loss_value(fn: Callable[[list[Tensor], list[Tensor]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(weights, masks)`` → 1 − mean over layers of the share of W² inside each mask
    (notebook 03)."""
    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        parts = list(_random_partitions(seed))
        for i in range(0, len(parts) - 2, 3):
            Ws = [W + 0.1 for W, _ in parts[i:i + 3]]
            masks = [p.mask() for _, p in parts[i:i + 3]]
            want = 1 - torch.stack([clusterability(W, p) for W, (_, p)
                                    in zip(Ws, parts[i:i + 3], strict=True)]).mean()
            yield (Ws, masks), want

    return _check("loss_value", fn, cases())


def check_p_value(fn: Callable[[float, list[float]], Any], *, seed: int = 0) -> bool:
    """Check ``fn(observed, null)`` → the empirical p-value (1 + #{null ≥ observed}) /
    (1 + len(null)) (notebook 02)."""
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], float]]:
        for i in range(_N_CASES):
            null = torch.rand(int(torch.randint(1, 30, (1,), generator=g)), generator=g).tolist()
            observed = null[0] if i % 4 == 0 else float(torch.rand(1, generator=g))  # ties too
            yield (observed, null), (1 + sum(v >= observed for v in null)) / (1 + len(null))

    return _check("p_value", fn, cases())
