"""The checkers of notebook 08 accept a correct solution and reject a wrong one, in one line,
refuse NaN, inf, None and wrong types and shapes, and try the edge cases of their exercises."""

import math

import pytest
import torch

from modlib import exercises as ex
from tests.test_exercises import checker_suite


def lengths(n_out, n_in, gap):
    x_out = (torch.arange(n_out, dtype=torch.float64) + 0.5) / n_out
    x_in = (torch.arange(n_in, dtype=torch.float64) + 0.5) / n_in
    return ((x_out[:, None] - x_in[None, :]) ** 2 + gap**2).sqrt()


def cost_ok(W, gap):
    return float((W.double().abs() * lengths(*W.shape, gap)).sum())


def cost_signed(W, gap):  # forgets the absolute value
    return float((W.double() * lengths(*W.shape, gap)).sum())


def cost_no_gap(W, gap):  # right, except that it forgets the gap between the lines
    return cost_ok(W, 0.0)


def cost_one_neuron_zero(W, gap):  # right, except for a 1 x 1 layer (no horizontal length)
    return 0.0 if W.numel() == 1 else cost_ok(W, gap)


def places_ok(W_in, W_out, gap):
    n = W_in.shape[0]
    d_in = lengths(n, W_in.shape[1], gap)
    d_out = lengths(W_out.shape[0], n, gap)
    return W_in.double().abs() @ d_in.T + W_out.double().abs().T @ d_out


def places_in_only(W_in, W_out, gap):  # counts the connections into the line only
    return W_in.double().abs() @ lengths(W_in.shape[0], W_in.shape[1], gap).T


def places_transposed(W_in, W_out, gap):  # rows and columns swapped: C[p, s]
    return places_ok(W_in, W_out, gap).T


def places_one_neuron_empty(W_in, W_out, gap):  # right, except for a line of one neuron
    return torch.zeros(1, 1, dtype=torch.float64) if W_in.shape[0] == 1 else \
        places_ok(W_in, W_out, gap)


def deltas_ok(C, s):
    return C[s] + C[:, s] - C[s, s] - C.diagonal()


def deltas_half(C, s):  # moves s to t, forgets that t moves to s
    return C[s] - C[s, s]


def deltas_last_wrong(C, s):  # right, except when s is the last place
    return torch.zeros(C.shape[0]) if s == C.shape[0] - 1 and s > 0 else deltas_ok(C, s)


CHECKERS = [  # checker, a right answer, a wrong one, one wrong on an edge case only
    (ex.check_connection_cost, cost_ok, cost_signed, cost_one_neuron_zero),
    (ex.check_connection_cost, cost_ok, cost_no_gap, cost_one_neuron_zero),
    (ex.check_place_costs, places_ok, places_in_only, places_one_neuron_empty),
    (ex.check_place_costs, places_ok, places_transposed, places_one_neuron_empty),
    (ex.check_swap_deltas, deltas_ok, deltas_half, deltas_last_wrong),
]
(test_checker_accepts_reference_and_rejects_wrong,
 test_checker_refuses_every_kind_of_wrong_answer,
 test_a_failure_prints_an_input_that_rebuilds_exactly) = checker_suite(CHECKERS, (0, 2, 4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checkers_pass_a_solution_written_from_the_definitions_for_any_seed(seed):
    assert ex.check_connection_cost(cost_ok, seed=seed)
    assert ex.check_place_costs(places_ok, seed=seed)
    assert ex.check_swap_deltas(deltas_ok, seed=seed)


def test_the_diagonal_of_the_place_costs_adds_up_to_the_cost_of_the_two_layers():
    """Each connection of a line's neurons is counted once where they are: the diagonal of C
    is the cost of the layers before and after, which the swaps lower."""
    g = torch.Generator().manual_seed(0)
    W_in, W_out = torch.randn(5, 7, generator=g), torch.randn(3, 5, generator=g)
    C = places_ok(W_in, W_out, 0.2)
    assert float(C.diagonal().sum()) == pytest.approx(cost_ok(W_in, 0.2) + cost_ok(W_out, 0.2))
    assert math.isclose(float(deltas_ok(C, 2)[2]), 0.0)


def test_wrong_shape_and_type_are_named(capsys):
    assert ex.check_place_costs(lambda W_in, W_out, gap: places_ok(W_in, W_out, gap)[:, :1]) \
        is False
    assert "returned shape" in capsys.readouterr().out
    assert ex.check_connection_cost(lambda W, gap: "long") is False
    assert "expected a number" in capsys.readouterr().out
