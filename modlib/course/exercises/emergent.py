"""Checkers for the exercises of notebook 08: brain-inspired modular training (BIMT), the
connection cost of a layer, the cost of each neuron in each place, and the gain of a swap.

Each checker's docstring lists the edge cases it tries besides its random inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ...training.bimt import connection_cost, place_costs, swap_deltas
from ...validate import check_int
from ._core import _N_CASES, _Case, _case, _check, _Code, _draw, _randn

__all__ = ["check_connection_cost", "check_place_costs", "check_swap_deltas"]

_GAPS = (0.05, 0.1, 0.2, 0.5, 1.0)


def _gap(g: torch.Generator) -> float:
    return _GAPS[_draw(g, 0, len(_GAPS))]


def _matrix(g: torch.Generator, n_out: int, n_in: int) -> _Code:
    """Code for a random (n_out, n_in) weight matrix, seeded from ``g``."""
    return _Code(_randn(n_out, n_in, seed=_draw(g, 0, 10_000)))


def check_connection_cost(fn: Callable[[Tensor, float], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W, gap)`` → ``Σ_ij |W_ij| sqrt((x_i − x_j)² + gap²)``, a float, where neuron
    i of a line of n sits at ``x_i = (i + 0.5) / n`` (notebook 08).

    Edge cases: a 1 × 1 layer (the connection is ``gap`` long), gap = 0 (lengths along the
    lines only), negative weights (``|W|`` counts), a layer of zeros.

    Example:
        >>> check_connection_cost(lambda W, gap: float(W.abs().sum()))  # doctest: +ELLIPSIS
        ✗ connection_cost: your function returned 1.1000, expected 0.2200... gap = 0.2
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _case(connection_cost, _Code("torch.tensor([[1.1]])"), 0.2,
                    note="a 1 x 1 layer: one connection, gap long")
        yield _case(connection_cost, _matrix(g, 3, 4), 0.0, note="gap = 0: lengths along the lines")
        yield _case(connection_cost, _Code("-torch.ones(2, 3)"), 0.5,
                    note="negative weights: their size counts")
        yield _case(connection_cost, _Code("torch.zeros(3, 2)"), 0.2, note="a layer of zeros")
        for _ in range(_N_CASES - 4):
            yield _case(connection_cost, _matrix(g, _draw(g, 1, 9), _draw(g, 1, 9)), _gap(g))

    return _check("connection_cost", fn, cases(), ("W", "gap"), atol=1e-4)


def check_place_costs(fn: Callable[[Tensor, Tensor, float], Any], *, seed: int = 0) -> bool:
    """Check ``fn(W_in, W_out, gap)`` → the (n, n) place costs of a line of n neurons:
    ``C[s, p] = Σ_a |W_in[s, a]| d(p, a) + Σ_b |W_out[b, s]| d(b, p)``, with W_in (n, n_before) the
    weights into the line, W_out (n_after, n) the weights out of it and d the connection lengths
    of exercise 8.1 (notebook 08).

    Edge cases: a line of one neuron, lines before and after of one neuron, a neuron with no
    connections (a row of zeros), negative weights.

    Example:
        >>> check_place_costs(lambda W_in, W_out, gap: W_in.abs() @ W_out.abs())
        ... # doctest: +ELLIPSIS
        ✗ place_costs: your function raised RuntimeError: ...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _case(place_costs, _matrix(g, 1, 3), _matrix(g, 2, 1), 0.2,
                    note="a line of one neuron")
        yield _case(place_costs, _matrix(g, 4, 1), _matrix(g, 1, 4), 0.1,
                    note="the lines before and after hold one neuron each")
        dead = _randn(3, 5, seed=_draw(g, 0, 10_000))
        yield _case(place_costs, _Code(f"{dead} * torch.tensor([[1.0], [0.0], [1.0]])"),
                    _Code(f"{_randn(2, 3, seed=_draw(g, 0, 10_000))} "
                          f"* torch.tensor([1.0, 0.0, 1.0])"), 0.2,
                    note="neuron 1 has no connections: its row is 0 in every place")
        yield _case(place_costs, _Code("-torch.ones(2, 2)"), _Code("-torch.ones(2, 2)"), 0.5,
                    note="negative weights: their size counts")
        for _ in range(_N_CASES - 4):
            n = _draw(g, 1, 8)
            W_in = _matrix(g, n, _draw(g, 1, 8))
            yield _case(place_costs, W_in, _matrix(g, _draw(g, 1, 8), n), _gap(g))

    return _check("place_costs", fn, cases(), ("W_in", "W_out", "gap"), atol=1e-4)


def check_swap_deltas(fn: Callable[[Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(C, s)`` → the (n,) changes of the total cost if the neuron in place s traded
    places with the neuron in each place t: C[s, t] + C[t, s] − C[s, s] − C[t, t] (notebook 08).

    Edge cases: a line of one neuron (nothing to trade: [0]), s the last place, a line where
    every trade shortens the connections.

    Example:
        >>> check_swap_deltas(lambda C, s: C[s] - C[s, s])  # doctest: +ELLIPSIS
        ✗ swap_deltas: your function returned ...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def C(n: int) -> _Code:
        return _Code(f"{_randn(n, n, seed=_draw(g, 0, 10_000))}.abs()")

    def cases() -> Iterator[_Case]:
        yield _case(swap_deltas, _Code("torch.tensor([[0.7]])"), 0,
                    note="a line of one neuron: nothing to trade")
        yield _case(swap_deltas, C(5), 4, note="s is the last place")
        yield _case(swap_deltas, _Code("torch.ones(3, 3) + torch.eye(3) * 2"), 1,
                    note="every neuron is cheaper anywhere but where it is")
        for _ in range(_N_CASES - 3):
            n = _draw(g, 2, 9)
            yield _case(swap_deltas, C(n), _draw(g, 0, n))

    return _check("swap_deltas", fn, cases(), ("C", "s"), atol=1e-5)


# name -> reference implementation, the function each checker computes its expected answers
# with: modlib.exercises.reference(name) looks names up here.
_REFERENCES: dict[str, Callable[..., Any]] = {
    "connection_cost": connection_cost, "place_costs": place_costs, "swap_deltas": swap_deltas,
}
