"""Checkers for the exercises of notebook 06: the modular-addition transformer and its Fourier
features (the Fourier basis of Z_p, the frequencies of an embedding, a neuron's frequency).

Each checker's docstring lists the edge cases it tries besides its random inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...analysis.fourier import fourier_basis, frequency_norms, table_frequencies
from ...validate import check_int
from ._core import _N_CASES, _Case, _case, _check, _Code, _draw, _gen, _randn

__all__ = ["check_fourier_basis", "check_frequency_norms", "check_dominant_frequency"]

_ODD = (3, 5, 7, 9, 11, 13, 17, 19, 23, 29, 31)  # moduli of the random cases (primes and 9)


def _random_p(g: torch.Generator) -> int:
    return _ODD[_draw(g, 0, len(_ODD))]


def _wave(p: int, f: int, kind: int, g: torch.Generator) -> str:
    """Code for a (p, p) wave of frequency f over (a, b) with random phases: in a + b, a
    product of a wave in a and one in b, or a wave in a or in b alone (kind 0..3)."""
    phi, psi = (round(float(x), 2) for x in torch.rand(2, generator=g) * 6.3)
    a, b, w = f"torch.arange({p}.0)[:, None]", f"torch.arange({p}.0)", f"2 * torch.pi * {f} / {p}"
    return [f"torch.cos({w} * ({a} + {b}) + {phi})",
            f"torch.cos({w} * {a} + {phi}) * torch.cos({w} * {b} + {psi})",
            f"torch.cos({w} * {a} + {phi})", f"torch.cos({w} * {b} + {phi})"][kind]


def _energy(table: Tensor) -> Tensor:
    """(n + 1,) energy of a (p, p) table per frequency (frequency 0 owns none)."""
    return table_frequencies(table[..., None])[0][0]


def _dominant(table: Tensor) -> int:
    return int(_energy(table).argmax())


def _planted_table(g: torch.Generator, p: int | None = None, kind: int | None = None,
                   note: str = "") -> _Case:
    """A (p, p) table with one clearly dominant frequency, as a neuron's activations could be,
    and that frequency (by :func:`modlib.analysis.fourier.table_frequencies`). ``p`` and the
    ``kind`` of the loud wave are random unless given."""
    while True:
        q = p or _random_p(g)
        n = (q - 1) // 2
        loud, *quiet = (torch.randperm(n, generator=g)[:min(n, 2)] + 1).tolist()
        amp = round(1.0 + float(torch.rand(1, generator=g)), 2)
        loud_kind = _draw(g, 0, 4) if kind is None else kind
        terms = [f"{amp} * {_wave(q, loud, loud_kind, g)}"]
        terms += [f"0.3 * {_wave(q, f, _draw(g, 0, 4), g)}" for f in quiet]
        terms.append(f"0.05 * torch.randn({q}, {q}, {_gen(_draw(g, 0, 10_000))})")
        code = f"({' + '.join(terms)})"
        if bool(torch.rand(1, generator=g) < 0.5):
            code += ".add(0.3).relu()"  # a ReLU neuron: harmonics appear
        top2 = torch.topk(_energy(_Code(code).build()), 2).values
        if top2[0] >= 2 * top2[1]:  # unambiguous
            return _case(_dominant, _Code(code), note=note)


def check_fourier_basis(fn: Callable[[int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(p)`` → the (p, p) orthonormal real Fourier basis of Z_p, one basis vector per
    row: the constant, then cos and sin of each frequency 1..(p − 1)/2 (notebook 06).

    Edge cases: p = 3 (a single frequency), p = 9 (odd but not prime).

    Example:
        >>> check_fourier_basis(lambda p: torch.eye(p))  # doctest: +ELLIPSIS
        ✗ fourier_basis: your function returned 1.0000 at index [2, 2], expected -0.7071 ... p = 3
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _case(fourier_basis, 3, note="p = 3: a single frequency")
        yield _case(fourier_basis, 9, note="p = 9: odd, not prime")
        others = [p for p in _ODD if p not in (3, 9)]
        for i in torch.randperm(len(others), generator=g)[:6].tolist():
            yield _case(fourier_basis, others[i])

    return _check("fourier_basis", fn, cases(), ("p",), atol=1e-4)


def check_frequency_norms(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W)`` → for ``W: (p, d)`` (each column a function of the residue), the norm of
    its Fourier coefficients per frequency 0..(p − 1)/2: ``((p − 1) // 2 + 1,)`` (notebook 06).

    Edge cases: a single column, constant columns (all the norm at frequency 0), p = 3.

    Example:
        >>> check_frequency_norms(frequency_norms)  # the reference passes, of course
        ✓ frequency_norms: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def W(p: int, d: int) -> _Code:
        return _Code(_randn(p, d, seed=_draw(g, 0, 10_000), dtype="float64"))

    def cases() -> Iterator[_Case]:
        yield _case(frequency_norms, W(7, 1), note="a single column")
        yield _case(frequency_norms, _Code("torch.full((5, 2), 0.5)"), note="constant columns")
        yield _case(frequency_norms, W(3, 4), note="p = 3: a single frequency")
        for _ in range(_N_CASES - 3):
            yield _case(frequency_norms, W(_random_p(g), _draw(g, 1, 17)))

    return _check("frequency_norms", fn, cases(), ("W",), atol=1e-4)


def check_dominant_frequency(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(table)`` → the frequency f in 1..(p − 1)/2 that carries the most energy of a
    (p, p) table over (a, b), owning the 2-D Fourier components whose a- and b-frequencies are
    each 0 or f (notebook 06).

    Edge cases: p = 3 (only frequency 1), a wave in a alone, a wave in b alone.

    Example:
        >>> check_dominant_frequency(lambda table: 1)  # doctest: +ELLIPSIS
        ✗ dominant_frequency: your function returned 1, expected ... Input: table = (...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _planted_table(g, p=3, note="p = 3: the only frequency is 1")
        yield _planted_table(g, kind=2, note="the loud wave is in a alone")
        yield _planted_table(g, kind=3, note="the loud wave is in b alone")
        for _ in range(_N_CASES - 3):
            yield _planted_table(g)

    return _check("dominant_frequency", fn, cases(), ("table",), atol=0)


# name -> reference implementation, the function each checker computes its expected answers
# with: modlib.exercises.reference(name) looks names up here.
_REFERENCES: dict[str, Callable[..., Any]] = {
    "fourier_basis": fourier_basis, "frequency_norms": frequency_norms,
    "dominant_frequency": _dominant,
}
