"""What every checker shares: its cases, comparing an answer with the reference's, the one line.

A checker runs the learner's function on a list of :class:`_Case` s, random inputs drawn from
its ``seed`` and the edge cases of the exercise, and stops at the first wrong answer. It then
prints one line: what came back, what was expected, which edge case it was, and the input,
written so that the learner can paste it and re-run their function (see ``_show``). An answer
of the wrong type or shape, None, NaN or ±inf is wrong whatever the values.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._show import _inputs, _pair, _returned, _value

_N_CASES = 12

_HINT = {"nan": "a nan usually comes from 0/0", "inf": "an inf usually comes from x/0 or log(0)"}


@dataclass(frozen=True)
class _Code:
    """Python that builds an input from ``torch`` alone, e.g. ``torch.randn(40, 30,
    generator=torch.Generator().manual_seed(7))``. The input is made by evaluating this text,
    so the code a learner reads for a large input is by construction what their function got."""

    text: str

    def build(self) -> Any:
        return eval(self.text, {"torch": torch})  # only ever our own text


@dataclass(frozen=True)
class _Case:
    """One input of a checker.

    Attributes:
        args: the arguments of the learner's function.
        want: the reference's answer.
        code: per argument, the code that rebuilt it (None: a plain value, printed as is).
        note: what makes this input an edge case, in words ('' for a plain random input).
    """

    args: tuple[Any, ...]
    want: Any
    code: tuple[str | None, ...] = ()
    note: str = ""


def _case(reference: Callable[..., Any], *inputs: Any, note: str = "") -> _Case:
    """The case of ``inputs`` (each a plain value or a :class:`_Code` to build), answered by
    ``reference``."""
    args = tuple(x.build() if isinstance(x, _Code) else x for x in inputs)
    code = tuple(x.text if isinstance(x, _Code) else None for x in inputs)
    return _Case(args, reference(*args), code, note)


def _draw(g: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high) from ``g``."""
    return int(torch.randint(low, high, (1,), generator=g))


def _gen(seed: int) -> str:
    return f"generator=torch.Generator().manual_seed({seed})"


def _randn(*shape: int, seed: int, dtype: str = "", decimals: int | None = 2) -> str:
    """Code for Gaussian values, rounded to ``decimals`` so that they read well in full."""
    dims = ", ".join(str(n) for n in shape)
    dtype = f"dtype=torch.{dtype}, " if dtype else ""
    rounded = f".round(decimals={decimals})" if decimals is not None else ""
    return f"torch.randn({dims}, {dtype}{_gen(seed)}){rounded}"


def _rand_mask(*shape: int, seed: int, density: float) -> str:
    """Code for a bool mask, True with probability ``density``."""
    return f"torch.rand({', '.join(str(n) for n in shape)}, {_gen(seed)}) < {density}"


class _Partitioned(NamedTuple):
    """A weight matrix and a partition of it, for the exercises on clusters."""

    W: _Code
    rows: Tensor
    cols: Tensor
    k: int
    about_W: str  # what is special about W ('' if nothing): dead neurons
    about_clusters: str  # what is special about the partition ('' if nothing)


def _partitions(seed: int) -> Iterator[_Partitioned]:
    """``_N_CASES`` matrices with partitions: four edge cases, then random ones (float64,
    2..11 neurons a side, a dead output neuron in every third)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    yield _Partitioned(_Code(_randn(3, 4, seed=_draw(g, 0, 10_000), dtype="float64")),
                       t([0, 0, 0]), t([0, 0, 0, 0]), 1, "", "every neuron in one cluster")
    dead = ".index_fill(0, torch.tensor([1]), 0.0).index_fill(1, torch.tensor([2]), 0.0)"
    yield _Partitioned(_Code(_randn(4, 5, seed=_draw(g, 0, 10_000), dtype="float64") + dead),
                       t([0, 1, 1, 0]), t([1, 0, 0, 1, 1]), 2,
                       "dead neurons: row 1 and column 2 of W are all zeros", "")
    yield _Partitioned(_Code(_randn(3, 3, seed=_draw(g, 0, 10_000), dtype="float64")),
                       t([0, 0, 0]), t([1, 1, 1]), 2, "",
                       "no output neuron shares a cluster with an input neuron")
    yield _Partitioned(_Code(_randn(5, 4, seed=_draw(g, 0, 10_000), dtype="float64")),
                       t([0, 2, 1, 2, 0]), t([1, 0, 0, 1]), 4, "",
                       "cluster 2 has output neurons but no input neuron, cluster 3 is empty")
    for i in range(_N_CASES - 4):
        n_out, n_in = _draw(g, 2, 12), _draw(g, 2, 12)
        k = _draw(g, 1, min(n_out, n_in) + 1)
        code = _randn(n_out, n_in, seed=_draw(g, 0, 10_000), dtype="float64")
        about_W = ""
        if i % 3 == 0:
            code += ".index_fill(0, torch.tensor([0]), 0.0)"
            about_W = "a dead neuron: row 0 of W is all zeros"
        rows, cols = torch.randint(k, (n_out,), generator=g), torch.randint(k, (n_in,), generator=g)
        yield _Partitioned(_Code(code), rows, cols, k, about_W, "")


def _is_number(x: Any) -> bool:
    """A single real number: an int or float (numpy's too) or a 0-d tensor, not a bool."""
    if isinstance(x, bool):
        return False
    if isinstance(x, Tensor):
        return x.ndim == 0 and x.dtype != torch.bool and not x.is_complex()
    return isinstance(x, numbers.Real)


def _compare_number(got: Any, want: Any, atol: float, rtol: float) -> str | None:
    exact = isinstance(want, int)
    expected = f"{_value(float(want), exact=exact)}"
    if not _is_number(got):
        one = isinstance(got, Tensor) and got.numel() == 1 and got.ndim > 0
        hint = ": use .item() or .squeeze()" if one else ""
        return f"returned {_returned(got)}, expected a number ({expected}){hint}"
    value, want = float(got), float(want)
    if math.isnan(value) or math.isinf(value):
        hint = _HINT["nan" if math.isnan(value) else "inf"]
        return f"returned {value}, expected {expected} ({hint})"
    if not math.isclose(value, want, rel_tol=rtol, abs_tol=atol):
        a, b = _pair(value, want, exact=exact)
        return f"returned {a}, expected {b}"
    return None


def _entry(t: Tensor, index: tuple[int, ...]) -> str:
    v = t[index].item()
    return repr(v) if isinstance(v, bool) else _value(float(v), exact=not t.is_floating_point())


def _compare_tensor(got: Any, want: Tensor, atol: float, rtol: float) -> str | None:
    shape = tuple(want.shape)
    if not isinstance(got, Tensor):
        return f"returned {_returned(got)}, expected a tensor of shape {shape}"
    if tuple(got.shape) != shape:
        return f"returned shape {tuple(got.shape)}, expected {shape}"
    if got.is_complex():
        return "returned complex numbers, expected real ones"
    g, w = got.detach().cpu(), want.detach().cpu()
    close = torch.isclose(g.double(), w.double(), atol=atol, rtol=rtol, equal_nan=True)
    if bool(close.all()):
        return None
    bad = ~close
    non_finite = bad & ~torch.isfinite(g.double())
    err = (g.double() - w.double()).abs().nan_to_num(0.0)
    flat = int(non_finite.flatten().nonzero()[0]) if non_finite.any() else int(
        torch.where(bad, err, -1.0).flatten().argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), shape))
    at = f"at index {list(index)}"
    got_text, want_text = _entry(g, index), _entry(w, index)
    if bool(non_finite.flatten()[flat]):
        hint = _HINT["nan" if math.isnan(float(g[index])) else "inf"]
        return f"returned {got_text} {at}, expected {want_text} ({hint})"
    count = f" ({int(bad.sum())} of {w.numel()} entries differ)" if w.numel() > 1 else ""
    return f"returned {got_text} {at}, expected {want_text}{count}"


def _compare_text(got: Any, want: str, choices: tuple[str, ...] | None) -> str | None:
    if isinstance(got, str) and got == want:
        return None
    shown = repr(got) if isinstance(got, str) else _returned(got)
    known = isinstance(got, str) and got in (choices or (got,))
    hint = "" if known or not choices else f" (the kinds are {', '.join(choices)})"
    return f"returned {shown}, expected {want!r}{hint}"


def _compare(got: Any, want: Any, atol: float, rtol: float,
             choices: tuple[str, ...] | None = None) -> str | None:
    """None if ``got`` matches ``want``, else what is wrong, in words."""
    if isinstance(want, str):
        return _compare_text(got, want, choices)
    if isinstance(want, Tensor) and want.ndim > 0:
        return _compare_tensor(got, want, atol, rtol)
    return _compare_number(got, want, atol, rtol)


def _outcome(fn: Callable[..., Any], case: _Case, atol: float, rtol: float,
             choices: tuple[str, ...] | None) -> str | None:
    """None if ``fn`` answers ``case`` right, else what went wrong (``NotImplementedError``
    passes through). ``fn`` gets copies, so that changing its inputs in place harms nothing."""
    try:
        got = fn(*copy.deepcopy(case.args))
    except NotImplementedError:
        raise
    except Exception as e:  # the learner's bug: report it, do not crash the notebook
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"raised {type(e).__name__}" + (f": {first}" if first else "")
    return _compare(got, case.want, atol, rtol, choices)


def _check(name: str, fn: Callable[..., Any], cases: Iterable[_Case], names: tuple[str, ...],
           *, atol: float = 1e-5, rtol: float | None = None, noun: str = "random inputs",
           choices: tuple[str, ...] | None = None) -> bool:
    """Run ``fn`` on ``cases``; print one ✓ line, or one ✗ line for the first wrong answer.

    ``names`` are the names of ``fn``'s arguments; ``rtol`` defaults to 1e-5, or 0 when
    ``atol`` is 0 (exact answers); ``choices`` are the allowed answers of a text exercise.
    """
    if not callable(fn):
        print(f"✗ {name}: expected a function, got {type(fn).__name__}.")
        return False
    rtol = (0.0 if atol == 0 else 1e-5) if rtol is None else rtol
    n = 0
    for case in cases:
        try:
            problem = _outcome(fn, case, atol, rtol, choices)
        except NotImplementedError:
            print(f"✗ {name}: not implemented yet: replace the `...` / NotImplementedError.")
            return False
        if problem:
            note = f". Edge case: {case.note}" if case.note else ""
            print(f"✗ {name}: your function {problem}{note}. "
                  f"Input: {_inputs(case.args, case.code, names)}")
            return False
        n += 1
    print(f"✓ {name}: correct on {n} {noun}.")
    return True
