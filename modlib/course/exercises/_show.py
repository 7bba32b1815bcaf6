"""Writing a checker's inputs and answers for the learner: Python they can paste and re-run.

A small input (at most ``_SMALL`` numbers) is written in full, as a literal that rebuilds it
exactly (``torch.tensor([[0.37, -1.2]], dtype=torch.float64)``); a larger one as the seeded
call that built it (``torch.randn(40, 30, generator=torch.Generator().manual_seed(7))``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

_SMALL = 30  # inputs of at most this many numbers are printed in full

_DEFAULT_DTYPE = {bool: torch.bool, int: torch.int64, float: torch.float32}


def _size(x: Any) -> int:
    """How many numbers (or characters) ``x`` holds: what makes it too large to print."""
    if isinstance(x, Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(_size(v) for v in x)
    return 1


def _number(v: float, dtype: torch.dtype = torch.float64) -> str:
    """The shortest text of ``v`` that reads back as the same ``dtype`` value, always a float
    literal (``1.0``, not ``1``), so that ``torch.tensor`` infers a floating-point tensor."""
    if math.isnan(v):
        return "float('nan')"
    if math.isinf(v):
        return "float('inf')" if v > 0 else "-float('inf')"
    text = repr(v)
    for digits in range(1, 18):
        candidate = float(f"{v:.{digits}g}")
        if torch.tensor(candidate, dtype=dtype).item() == v:
            text = repr(candidate)  # 120.0, not 1.2e+02
            break
    return text


def _nested(values: Any, entry: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, entry) for v in values) + "]"
    return entry(values)


def _tensor_literal(t: Tensor) -> str:
    """``torch.tensor(...)`` (``torch.zeros(...)`` when empty) that rebuilds ``t`` exactly."""
    t = t.detach().cpu()
    if t.numel() == 0:
        shape = ", ".join(str(n) for n in t.shape)
        dtype = "" if t.dtype == torch.float32 else f", dtype={t.dtype}"
        return f"torch.zeros({shape}{dtype})"
    kind = bool if t.dtype == torch.bool else float if t.is_floating_point() else int
    dtype = "" if _DEFAULT_DTYPE[kind] == t.dtype else f", dtype={t.dtype}"
    entry = (lambda v: _number(v, t.dtype)) if kind is float else repr
    return f"torch.tensor({_nested(t.tolist(), entry)}{dtype})"


def _literal(x: Any) -> str | None:
    """Python that rebuilds ``x`` exactly, or None when ``x`` is too large (or not plain data)."""
    if _size(x) > _SMALL:
        return None
    if x is None or isinstance(x, (bool, int, str)):
        return repr(x)
    if isinstance(x, float):
        return _number(x)
    if isinstance(x, Tensor):
        return _tensor_literal(x)
    if isinstance(x, (list, tuple)):
        parts = [_literal(v) for v in x]
        if any(p is None for p in parts):
            return None
        inner = ", ".join(parts)  # type: ignore[arg-type]
        return f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
    return None


def _input(x: Any, code: str | None) -> str:
    """An input as the learner should read it: in full when small (or the code that built it,
    when shorter and not random: ``torch.zeros(3, 4)``), else that code, else its type and
    shape."""
    text = _literal(x)
    if text is not None and code is not None and "generator" not in code:
        return min(text, code, key=len)
    if text is not None:
        return text
    if code is not None:
        return code
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, (list, tuple)) and all(isinstance(t, Tensor) for t in x):
        shapes = ", ".join(str(tuple(t.shape)) for t in x)
        return f"a list of {len(x)} tensors of shapes {shapes}"
    return f"a {type(x).__name__}"


def _inputs(args: tuple[Any, ...], codes: tuple[str | None, ...], names: tuple[str, ...]) -> str:
    """``W = torch.tensor(...), rows = ...``: every argument, named as in the exercise."""
    codes = codes or (None,) * len(args)
    return ", ".join(f"{name} = {_input(x, code)}"
                     for name, x, code in zip(names, args, codes, strict=True))


def _returned(x: Any) -> str:
    """What a wrong-kind answer is, in a few words: ``None``, ``a list of 3 values`` ..."""
    if x is None:
        return "None (is a `return` missing?)"
    if isinstance(x, Tensor):
        kind = "bool " if x.dtype == torch.bool else "complex " if x.is_complex() else ""
        return f"a {kind}tensor of shape {tuple(x.shape)}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)} value{'' if len(x) == 1 else 's'}"
    if isinstance(x, (str, bool, int, float)):
        return f"{type(x).__name__} {x!r}"
    return type(x).__name__


def _value(v: float, *, exact: bool = False) -> str:
    """A number in a message: an int as itself, else 4 decimals (or 4 significant digits)."""
    if exact and float(v).is_integer():
        return str(int(v))
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4f}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.4g}"


def _pair(got: float, want: float, *, exact: bool = False) -> tuple[str, str]:
    """``got`` and ``want`` as text, with enough digits to tell them apart."""
    a, b = _value(got, exact=exact), _value(want, exact=exact)
    if a == b:
        a, b = repr(float(got)), repr(float(want))
    return a, b
