"""Every checker accepts a correct solution and rejects a wrong one, with one clear line.

Besides each exercise's own wrong answers, every checker must refuse the answers that are wrong
whatever the exercise (NaN, +inf, None, a wrong type, a wrong shape, a tuple) and a function
that is right except on one of the exercise's edge cases; and the input a failure prints must
rebuild exactly what the learner's function received. The helpers for those three checks live
here; ``test_exercises_{learned,grokking,language}.py`` run them on their checkers too.
"""

from __future__ import annotations

import copy
import math
import re
import string
from pathlib import Path

import nbformat
import pytest
import torch

import modlib
from modlib import exercises as ex
from modlib.course.exercises._show import _literal

NAN, INF = float("nan"), float("inf")


# --- the checks shared by every test_exercises_* file -------------------------------------------

def _like(good, value):
    """An answer of the right shape, every number ``value`` (a bare number for a scalar)."""
    def answer(*args):
        out = good(*args)
        if isinstance(out, torch.Tensor) and out.ndim > 0:
            return torch.full(tuple(out.shape), value)
        return value
    return answer


def _wrong_type(good):
    def answer(*args):
        out = good(*args)
        if isinstance(out, torch.Tensor) and out.ndim > 0:
            return out.tolist()  # a list, not a tensor
        return 1 if isinstance(out, str) else str(float(out))  # "0.5", not 0.5
    return answer


def _wrong_shape(good):
    def answer(*args):
        out = good(*args)
        if isinstance(out, torch.Tensor) and out.ndim > 0:
            return out.unsqueeze(0)
        if isinstance(out, str):
            return [out]
        return torch.tensor([float(out), float(out)])  # two numbers where one is expected
    return answer


def _pair(good):
    def answer(*args):
        out = good(*args)
        return out, out
    return answer


WRONG = {  # kind -> (make a wrong answer from a right one, words its ✗ line must hold)
    "nan": (lambda good: _like(good, NAN), ["nan"]),
    "+inf": (lambda good: _like(good, INF), ["inf"]),
    "None": (lambda good: lambda *args: None, ["returned None"]),
    "wrong type": (_wrong_type, ["returned"]),
    "wrong shape": (_wrong_shape, ["returned"]),
    "tuple of 2": (_pair, ["tuple of 2 values"]),
}


def assert_refused(checker, fn, words, capsys):
    """``checker(fn)`` is False and says so in one ✗ line about "your function" holding
    ``words``."""
    assert checker(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and "your function" in out and out.count("\n") == 1, out
    for word in words:
        assert word in out, (word, out)


def assert_refuses_every_wrong_answer(checker, good, edge_bug, kind, capsys):
    """``checker`` refuses the ``kind`` of wrong answer: one of :data:`WRONG`, or "edge" for
    ``edge_bug``, right except on an edge case, which the ✗ line names."""
    if kind == "edge":
        assert_refused(checker, edge_bug, ["Edge case:"], capsys)
    else:
        make, words = WRONG[kind]
        assert_refused(checker, make(good), words, capsys)


def _same(rebuilt, arg) -> bool:
    if isinstance(arg, torch.Tensor):
        return (isinstance(rebuilt, torch.Tensor) and rebuilt.dtype == arg.dtype
                and rebuilt.shape == arg.shape and bool(torch.equal(rebuilt, arg)))
    if isinstance(arg, (list, tuple)):
        return (type(rebuilt) is type(arg) and len(rebuilt) == len(arg)
                and all(_same(r, a) for r, a in zip(rebuilt, arg, strict=True)))
    return type(rebuilt) is type(arg) and rebuilt == arg


def _printed_inputs(line: str) -> list[str]:
    """The code after "Input: ", one string per argument (``W = ..., rows = ...``)."""
    text = line.split("Input: ", 1)[1].strip()
    return re.split(r"(?:^|, )[A-Za-z_]\w* = ", text)[1:]


def assert_inputs_rebuild(checker, good, capsys):
    """For every case of ``checker``, a function wrong on that case alone gets a ✗ line whose
    printed input, run as Python, rebuilds exactly the arguments the function received."""
    n_cases = 0

    def count(*args):
        nonlocal n_cases
        n_cases += 1
        return good(*args)

    assert checker(count)
    capsys.readouterr()
    for i in range(n_cases):
        seen = []

        def spy(*args, i=i, seen=seen):
            seen.append(copy.deepcopy(args))
            return _like(good, NAN)(*args) if len(seen) == i + 1 else good(*args)

        assert checker(spy) is False
        exprs = _printed_inputs(capsys.readouterr().out)
        args = seen[-1]
        assert len(exprs) == len(args), exprs
        for expr, arg in zip(exprs, args, strict=True):
            if isinstance(arg, torch.nn.Module):  # "Conv1D(4, 4) with .weight = <code>"
                expr, arg = expr.split(" with .weight = ")[1], arg.weight.detach()
            assert _same(eval(expr, {"torch": torch}), arg), (i, expr)


def checker_suite(checkers, one_each):
    """The three tests every notebook's checkers share, for a module to bind to test_ names.

    ``checkers``: rows (checker, a right answer, a wrong one, one wrong on an edge case only);
    ``one_each``: the indices of one row per checker, for the tests that need one row each.
    Returns the functions (accepts-and-rejects, refuses-every-wrong-answer, inputs-rebuild).
    """
    ids = [f"{c.__name__}-{bad.__name__}" for c, _, bad, _ in checkers]
    rows = [row for i, row in enumerate(checkers) if i in one_each]
    row_ids = [c.__name__ for c, *_ in rows]

    @pytest.mark.parametrize("checker,good,bad,_", checkers, ids=ids)
    def accepts_reference_and_rejects_wrong(checker, good, bad, _, checker_contract):
        checker_contract(checker, good, bad)

    @pytest.mark.parametrize("kind", [*WRONG, "edge"])
    @pytest.mark.parametrize("checker,good,_,edge_bug", rows, ids=row_ids)
    def refuses_every_kind_of_wrong_answer(checker, good, _, edge_bug, kind, capsys):
        assert_refuses_every_wrong_answer(checker, good, edge_bug, kind, capsys)

    @pytest.mark.parametrize("checker,good,_,__", rows, ids=row_ids)
    def a_failure_prints_an_input_that_rebuilds_exactly(checker, good, _, __, capsys):
        assert_inputs_rebuild(checker, good, capsys)

    return (accepts_reference_and_rejects_wrong, refuses_every_kind_of_wrong_answer,
            a_failure_prints_an_input_that_rebuilds_exactly)


# --- the checkers of notebooks 00-03 --------------------------------------------------------------

def clusterability_ok(W, rows, cols):
    W2 = W**2
    return (W2 * (rows[:, None] == cols[None, :])).sum() / W2.sum()


def clusterability_wrong(W, rows, cols):  # forgets to square
    A = W.abs()
    return (A * (rows[:, None] == cols[None, :])).sum() / A.sum()


def clusterability_mean_times_count(W, rows, cols):  # nan when no weight lies in a cluster
    same = rows[:, None] == cols[None, :]
    W2 = W**2
    return W2[same].mean() * same.sum() / W2.sum()


def order_ok(labels):
    return torch.sort(labels, stable=True).indices


def order_wrong(labels):  # clusters in order, but the neurons inside each one reversed
    return torch.sort(labels, stable=True, descending=True).indices.flip(0)


def order_one_cluster_reversed(labels):  # right, except that one cluster comes out reversed
    if bool((labels == labels[0]).all()):
        return torch.arange(len(labels)).flip(0)
    return order_ok(labels)


def permute_ok(W, rows, cols):
    return W[order_ok(rows)][:, order_ok(cols)]


def permute_wrong(W, rows, cols):  # sorts the rows only
    return W[order_ok(rows)]


def permute_one_cluster_flipped(W, rows, cols):  # right, except for a single cluster
    if rows.unique().numel() == 1:
        return W.flip(0)
    return permute_ok(W, rows, cols)


def chance_ok(rows, cols, k):
    p = torch.bincount(rows, minlength=k) / len(rows)
    q = torch.bincount(cols, minlength=k) / len(cols)
    return (p * q).sum()


def chance_wrong(rows, cols, k):  # assumes equal clusters
    return 1 / k


def chance_no_minlength(rows, cols, k):  # without minlength, p and q broadcast when they differ
    return (torch.bincount(rows) / len(rows) * torch.bincount(cols) / len(cols)).sum()


def normalized_ok(W):
    A = W.abs()
    d_r, d_c = A.sum(1), A.sum(0)
    inv = lambda d: torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), 0.0)  # noqa: E731
    return inv(d_r)[:, None] * A * inv(d_c)[None, :]


def normalized_wrong(W):  # divides by the degrees instead of their square roots
    A = W.abs()
    return A / A.sum(1, keepdim=True).clamp_min(1e-300) / A.sum(0, keepdim=True).clamp_min(1e-300)


def normalized_no_guard(W):  # 0/0 = nan for a dead neuron
    A = W.abs()
    return A / A.sum(1, keepdim=True).sqrt() / A.sum(0, keepdim=True).sqrt()


def mask_ok(n_out, n_in, k):
    rows = torch.arange(n_out) * k // n_out
    cols = torch.arange(n_in) * k // n_in
    return rows[:, None] == cols[None, :]


def mask_wrong(n_out, n_in, k):  # blocks of n // k, the remainder in no block
    rows = torch.arange(n_out) // max(1, n_out // k)
    cols = torch.arange(n_in) // max(1, n_in // k)
    return rows[:, None] == cols[None, :]


def mask_one_block_empty(n_out, n_in, k):  # right, except that a single block is left empty
    return torch.zeros(n_out, n_in, dtype=torch.bool) if k == 1 else mask_ok(n_out, n_in, k)


def loss_ok(weights, masks):
    shares = [(W**2 * m).sum() / (W**2).sum() for W, m in zip(weights, masks, strict=True)]
    return 1 - torch.stack(shares).mean()


def loss_wrong(weights, masks):  # returns the clusterability, not 1 minus it
    return 1 - loss_ok(weights, masks)


def loss_three_layers(weights, masks):  # the notebook's model has three layers: others do not
    shares = [(W**2 * m).sum() / (W**2).sum() for W, m in zip(weights, masks, strict=True)]
    return 1 - sum(shares) / 3


def p_ok(observed, null):
    return (1 + sum(v >= observed for v in null)) / (1 + len(null))


def p_wrong(observed, null):  # forgets the +1s, and counts only strictly larger values
    return sum(v > observed for v in null) / len(null)


def p_strict(observed, null):  # > instead of >=: wrong on ties only
    return (1 + sum(v > observed for v in null)) / (1 + len(null))


def gap_ok(W, k):
    part = modlib.spectral_cocluster(W, k)
    return modlib.clusterability(W, part) - modlib.chance_level(part)


def gap_wrong(W, k):  # assumes equal clusters: 1/k is not the chance level of unequal ones
    return modlib.clusterability(W, modlib.spectral_cocluster(W, k)) - 1 / k


def gap_drops_dead(W, k):  # clusters the live neurons only: the chance level moves
    live_rows, live_cols = W.abs().sum(1) > 0, W.abs().sum(0) > 0
    return gap_ok(W[live_rows][:, live_cols], k)


CHECKERS = [  # checker, a right answer, a wrong one, one wrong on an edge case only
    (ex.check_clusterability, clusterability_ok, clusterability_wrong,
     clusterability_mean_times_count),
    (ex.check_cluster_order, order_ok, order_wrong, order_one_cluster_reversed),
    (ex.check_permute, permute_ok, permute_wrong, permute_one_cluster_flipped),
    (ex.check_chance_level, chance_ok, chance_wrong, chance_no_minlength),
    (ex.check_normalized_matrix, normalized_ok, normalized_wrong, normalized_no_guard),
    (ex.check_block_mask, mask_ok, mask_wrong, mask_one_block_empty),
    (ex.check_loss_value, loss_ok, loss_wrong, loss_three_layers),
    (ex.check_p_value, p_ok, p_wrong, p_strict),
    (ex.check_spectral_gap, gap_ok, gap_wrong, gap_drops_dead),
]
IDS = [c.__name__ for c, *_ in CHECKERS]
(test_checker_accepts_reference_and_rejects_wrong,
 test_checker_refuses_every_kind_of_wrong_answer,
 test_a_failure_prints_an_input_that_rebuilds_exactly) = checker_suite(CHECKERS,
                                                                       range(len(CHECKERS)))


@pytest.mark.parametrize("seed", [1, 2, -3])
@pytest.mark.parametrize("checker,good,_,__", CHECKERS, ids=IDS)
def test_checker_passes_the_reference_for_any_seed(checker, good, _, __, seed, capsys):
    assert checker(good, seed=seed) is True


# --- messages ------------------------------------------------------------------------------------

def test_checker_reports_exceptions_and_non_functions(capsys):
    assert ex.check_clusterability(lambda W, r, c: W.foo) is False
    assert "raised AttributeError" in capsys.readouterr().out
    assert ex.check_clusterability(3) is False
    assert "expected a function, got int" in capsys.readouterr().out


def test_a_multi_line_exception_is_reported_on_one_line(capsys):
    def crash(*args):
        raise ValueError("first line\nsecond line")

    assert_refused(ex.check_p_value, crash, ["raised ValueError: first line"], capsys)


def test_shape_mismatch_is_named(capsys):
    assert ex.check_block_mask(lambda n_out, n_in, k: torch.zeros(n_in, n_out, dtype=bool)) is False
    assert "returned shape" in capsys.readouterr().out


def test_a_nan_answer_is_named_with_its_likely_cause(capsys):
    assert_refused(ex.check_jaccard, lambda a, b: float((a & b).sum() / (a | b).sum()),
                   ["returned nan, expected 1.0000 (a nan usually comes from 0/0)",
                    "Edge case: both masks empty",
                    "Input: a = torch.zeros(3, 4, dtype=torch.bool)"], capsys)


def test_a_large_input_is_printed_as_the_seeded_call_that_builds_it(capsys):
    def wrong_when_large(W, rows, cols):
        return clusterability_ok(W, rows, cols) + (0.1 if W.numel() > 30 else 0.0)

    assert_refused(ex.check_clusterability, wrong_when_large,
                   ["W = torch.randn(", "generator=torch.Generator().manual_seed(",
                    "rows = torch.tensor(["], capsys)


def test_a_one_element_tensor_is_not_a_number(capsys):
    assert_refused(ex.check_p_value, lambda o, null: torch.tensor([p_ok(o, null)]),
                   ["a tensor of shape (1,)", "use .item()"], capsys)


def test_the_learner_cannot_change_the_inputs_the_reference_sees(capsys):
    def in_place(W, rows, cols):
        out = clusterability_ok(W, rows, cols)
        W.zero_()
        return out

    assert ex.check_clusterability(in_place) is True


@pytest.mark.parametrize("t", [
    torch.tensor([[0.37, -1.2], [float("nan"), 1e-7]]),
    torch.tensor([0.1, 2.0], dtype=torch.float64),
    torch.tensor([1, 0, 3]),
    torch.tensor([[True, False]]),
    torch.tensor(0.5),
    torch.zeros(0, 3, dtype=torch.long),
    torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
    torch.randn(2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)),
])
def test_a_small_tensor_is_printed_as_a_literal_that_rebuilds_it(t):
    rebuilt = eval(_literal(t), {"torch": torch})
    assert rebuilt.dtype == t.dtype and rebuilt.shape == t.shape
    assert torch.equal(rebuilt.nan_to_num(9.0), t.nan_to_num(9.0))


def test_a_large_tensor_has_no_literal():
    assert _literal(torch.zeros(31)) is None
    assert _literal([torch.zeros(20), torch.zeros(11)]) is None


def test_every_checker_is_tested_against_a_right_and_a_wrong_solution():
    """Each public checker appears in the parametrised accept/reject test of some test file."""
    texts = "".join(p.read_text() for p in Path(__file__).parent.glob("test_exercises*.py"))
    missing = [name for name in ex.__all__
               if name.startswith("check_") and f"ex.{name}," not in texts]
    assert not missing, f"checkers without an accept/reject test: {missing}"


# --- the notebooks' own solutions ----------------------------------------------------------------

_ROOT = Path(__file__).resolve().parent.parent
_NOTEBOOKS = sorted((_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", _NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebooks_solutions_pass_with_their_stored_output(path, capsys):
    """Each solution cell passes its checker, which prints the line stored in the notebook."""
    cells = nbformat.read(path, as_version=4).cells
    namespace = {"torch": torch, "modlib": modlib, "math": math, "string": string}
    for i, cell in enumerate(cells):
        if "solution" not in cell.metadata.get("tags", []):
            continue
        exec(compile(cell.source, f"<{path.stem} cell {i}>", "exec"), namespace)  # noqa: S102
        nxt = next(c for c in cells[i + 1:] if c.cell_type == "code")
        match = re.search(r"modlib\.exercises\.(check_\w+)\((\w+)\)", nxt.source)
        if match is None:
            continue
        if match.group(1) == "check_weight_graph":
            pytest.importorskip("transformers")
        assert getattr(ex, match.group(1))(namespace[match.group(2)]) is True
        stored = "".join(o.get("text", "") for o in nxt.get("outputs", [])
                         if o.get("output_type") == "stream")
        assert capsys.readouterr().out == stored or not stored, (path.stem, match.group(1))
