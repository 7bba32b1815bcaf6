"""The checkers of notebook 06 accept a correct solution and reject a wrong one, in one line,
refuse NaN, inf, None and wrong types and shapes, and try the edge cases of their exercises."""

import math

import pytest
import torch

from modlib import exercises as ex
from modlib.analysis.fourier import fourier_basis
from tests.test_exercises import checker_suite


def basis_ok(p):
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64)]
    for f in range(1, (p - 1) // 2 + 1):
        rows += [math.sqrt(2 / p) * torch.cos(2 * math.pi * f * x / p),
                 math.sqrt(2 / p) * torch.sin(2 * math.pi * f * x / p)]
    return torch.stack(rows)


def basis_wrong(p):  # forgets to normalise the waves
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for f in range(1, (p - 1) // 2 + 1):
        rows += [torch.cos(2 * math.pi * f * x / p), torch.sin(2 * math.pi * f * x / p)]
    return torch.stack(rows)


def basis_sin_first(p):  # right waves, wrong order: sin before cos
    B = basis_ok(p)
    order = [0] + [i for f in range(1, (p - 1) // 2 + 1) for i in (2 * f, 2 * f - 1)]
    return B[order]


def norms_ok(W):
    p = W.shape[0]
    energy = (fourier_basis(p).double() @ W.double()).pow(2).sum(1)  # (p,)
    out = torch.zeros((p - 1) // 2 + 1, dtype=torch.float64)
    out[0] = energy[0]
    out[1:] = energy[1::2] + energy[2::2]
    return out.sqrt()


def norms_wrong(W):  # returns the energies: forgets the square root
    return norms_ok(W) ** 2


def norms_cos_only(W):  # forgets the sine rows
    p = W.shape[0]
    energy = (fourier_basis(p).double() @ W.double()).pow(2).sum(1)
    return torch.cat([energy[:1], energy[1::2]]).sqrt()


def dominant_ok(table):
    p = table.shape[0]
    B = fourier_basis(p).double()
    energy = (B @ table.double() @ B.T) ** 2  # (p, p): components (a-frequency, b-frequency)
    freq = [0] + [f for f in range(1, (p - 1) // 2 + 1) for _ in range(2)]
    total = torch.zeros((p - 1) // 2 + 1, dtype=torch.float64)
    for i, fa in enumerate(freq):
        for j, fb in enumerate(freq):
            if fa == fb or fa == 0 or fb == 0:
                total[max(fa, fb)] += energy[i, j]
    total[0] = 0.0
    return int(total.argmax())


def dominant_wrong(table):  # looks at the waves in a alone (the mean over b)
    p = table.shape[0]
    energy = (fourier_basis(p).double() @ table.double().mean(1)) ** 2
    return int(torch.argmax(energy[1::2] + energy[2::2])) + 1


def basis_p3_swapped(p):  # right, except that p = 3 gets sin before cos
    return basis_ok(p)[[0, 2, 1]] if p == 3 else basis_ok(p)


def norms_one_column_squared(W):  # right, except that a single column gets its energies
    return norms_ok(W) ** 2 if W.shape[1] == 1 else norms_ok(W)


def dominant_p3_constant(table):  # right, except that p = 3 answers the constant, 0
    return 0 if table.shape[0] == 3 else dominant_ok(table)


CHECKERS = [  # checker, a right answer, a wrong one, one wrong on an edge case only
    (ex.check_fourier_basis, basis_ok, basis_wrong, basis_p3_swapped),
    (ex.check_fourier_basis, basis_ok, basis_sin_first, basis_p3_swapped),
    (ex.check_frequency_norms, norms_ok, norms_wrong, norms_one_column_squared),
    (ex.check_frequency_norms, norms_ok, norms_cos_only, norms_one_column_squared),
    (ex.check_dominant_frequency, dominant_ok, dominant_wrong, dominant_p3_constant),
]
(test_checker_accepts_reference_and_rejects_wrong,
 test_checker_refuses_every_kind_of_wrong_answer,
 test_a_failure_prints_an_input_that_rebuilds_exactly) = checker_suite(CHECKERS, (0, 2, 4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checkers_pass_the_reference_for_any_seed(seed):
    assert ex.check_fourier_basis(basis_ok, seed=seed)
    assert ex.check_frequency_norms(norms_ok, seed=seed)
    assert ex.check_dominant_frequency(dominant_ok, seed=seed)


def test_wrong_shape_and_type_are_named(capsys):
    assert ex.check_fourier_basis(lambda p: basis_ok(p).T[:, :-1]) is False
    assert "returned shape" in capsys.readouterr().out
    assert ex.check_dominant_frequency(lambda table: "three") is False
    assert "expected a number" in capsys.readouterr().out
