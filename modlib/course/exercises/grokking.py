"""Checkers for the exercises of notebook 06: the modular-addition transformer and its Fourier
features (the Fourier basis of Z_p, the frequencies of an embedding, a neuron's frequency)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...analysis.fourier import fourier_basis, frequency_norms, table_frequencies
from ...validate import check_int
from ._core import _N_CASES, _check

__all__ = ["check_fourier_basis", "check_frequency_norms", "check_dominant_frequency"]

_ODD = (3, 5, 7, 9, 11, 13, 17, 19, 23, 29, 31)  # moduli of the random cases (primes and 9)


def _random_p(g: torch.Generator) -> int:
    return _ODD[int(torch.randint(len(_ODD), (1,), generator=g))]


def _wave(p: int, f: int, kind: int, g: torch.Generator) -> Tensor:
    """(p, p) a wave of frequency f over (a, b) with random phases: in a + b, a product of a
    wave in a and one in b, or a wave in a or b alone (kind 0..3)."""
    x = torch.arange(p, dtype=torch.float64)
    w, (phi, psi) = 2 * math.pi * f / p, (torch.rand(2, generator=g, dtype=torch.float64) * 6.3)
    a, b = x[:, None], x[None, :]
    if kind == 0:
        return torch.cos(w * (a + b) + phi)
    if kind == 1:
        return torch.cos(w * a + phi) * torch.cos(w * b + psi)
    return torch.cos(w * (a if kind == 2 else b) + phi).expand(p, p)


def _planted_table(g: torch.Generator) -> tuple[Tensor, int]:
    """A (p, p) table with one clearly dominant frequency, as a neuron's activations could be,
    and that frequency (by :func:`modlib.analysis.fourier.table_frequencies`)."""
    while True:
        p = _random_p(g)
        n = (p - 1) // 2
        freqs = (torch.randperm(n, generator=g)[:min(n, 3)] + 1).tolist()
        table = torch.zeros(p, p, dtype=torch.float64)
        for i, f in enumerate(freqs):  # the first one is loud, the others quiet
            amp = 1.0 + float(torch.rand(1, generator=g)) if i == 0 else 0.3
            table += amp * _wave(p, f, int(torch.randint(4, (1,), generator=g)), g)
        table += 0.05 * torch.randn(p, p, generator=g, dtype=torch.float64)
        if bool(torch.rand(1, generator=g) < 0.5):
            table = torch.relu(table + 0.3)  # a ReLU neuron: harmonics appear
        energy = table_frequencies(table[..., None])[0][0]  # (n + 1,)
        top2 = torch.topk(energy, 2).values
        if top2[0] >= 2 * top2[1]:  # unambiguous
            return table, int(energy.argmax())


def check_fourier_basis(fn: Callable[[int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(p)`` → the (p, p) orthonormal real Fourier basis of Z_p, one basis vector per
    row: the constant, then cos and sin of each frequency 1..(p − 1)/2 (notebook 06)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for i in torch.randperm(len(_ODD), generator=g)[:8].tolist():
            yield (_ODD[i],), fourier_basis(_ODD[i])

    return _check("fourier_basis", fn, cases(), atol=1e-4)


def check_frequency_norms(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W)`` → for ``W: (p, d)`` (each column a function of the residue), the norm of
    its Fourier coefficients per frequency 0..(p − 1)/2: ``((p − 1) // 2 + 1,)`` (notebook 06)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            p, d = _random_p(g), int(torch.randint(1, 17, (1,), generator=g))
            x = torch.arange(p, dtype=torch.float64)[:, None]  # (p, 1)
            f = torch.randint(1, (p - 1) // 2 + 1, (1, d), generator=g)  # a frequency per column
            phase = torch.rand(1, d, generator=g, dtype=torch.float64) * 6.3
            W = 2 * torch.cos(2 * math.pi * f * x / p + phase) + 0.3 * torch.randn(
                p, d, generator=g, dtype=torch.float64) + torch.randn(1, d, generator=g)
            yield (W,), frequency_norms(W)

    return _check("frequency_norms", fn, cases(), atol=1e-4)


def check_dominant_frequency(fn: Callable[[Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(table)`` → the frequency f in 1..(p − 1)/2 that carries the most energy of a
    (p, p) table over (a, b), owning the 2-D Fourier components whose a- and b-frequencies are
    each 0 or f (notebook 06)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], int]]:
        for _ in range(_N_CASES):
            table, f = _planted_table(g)
            yield (table.float(),), f

    return _check("dominant_frequency", fn, cases(), atol=0)
