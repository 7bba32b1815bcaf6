"""What every checker shares: describing inputs, comparing outputs, the one-line report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...core.partition import Partition

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
