"""The checkers of notebook 07 accept a correct solution and reject a wrong one, with one line,
refuse NaN, inf, None and wrong types and shapes, and try the edge cases of their exercises."""

import pytest
import torch

from modlib import exercises as ex
from modlib.analysis.lm_interp import token_kind
from tests.test_exercises import (
    WRONG,
    assert_inputs_rebuild,
    assert_refuses_every_wrong_answer,
)

pytest.importorskip("transformers")


def weight_graph_ok(layer):
    return layer.weight.T if type(layer).__name__ == "Conv1D" else layer.weight


def weight_graph_wrong(layer):  # forgets that Conv1D stores its weight (n_in, n_out)
    return layer.weight


def perplexity_ok(logits, targets):
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).exp()


def perplexity_wrong(logits, targets):  # the mean loss, not its exponential
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def perplexity_wrong_mean(logits, targets):  # mean of per-token perplexities
    losses = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                               reduction="none")
    return losses.exp().mean()


token_kind_ok = token_kind  # the reference: a learner's correct answer behaves the same


def token_kind_wrong(text):  # does not skip leading whitespace: " the" becomes 'space'
    if not text:
        return "other"
    first = text[0]
    if first.isspace():
        return "space"
    return token_kind_ok(first)


def token_kind_bad_name(text):  # a kind that does not exist
    return "word" if token_kind_ok(text) == "letter" else token_kind_ok(text)


def loss_by_kind_ok(losses, kinds, n_kinds):
    total = torch.zeros(n_kinds).index_add_(0, kinds.flatten(), losses.flatten())
    return total / torch.bincount(kinds.flatten(), minlength=n_kinds)


def loss_by_kind_wrong(losses, kinds, n_kinds):  # divides by all tokens, not the kind's
    total = torch.zeros(n_kinds).index_add_(0, kinds.flatten(), losses.flatten())
    return total / kinds.numel()


def weight_graph_by_shape(layer):  # transposes when the shape shows it: not a square Conv1D
    W = layer.weight
    return W.T if type(layer).__name__ == "Conv1D" and W.shape[0] != W.shape[1] else W


def perplexity_log_softmax_underflow(logits, targets):  # log(softmax) is -inf where softmax is 0
    logp = torch.log(torch.softmax(logits, -1))
    return (-logp.gather(-1, targets[..., None]).mean()).exp()


def token_kind_empty_is_space(text):  # '' has no character at all: it is 'other'
    return "space" if not text.strip() else token_kind_ok(text)


def loss_by_kind_one_kind_scalar(losses, kinds, n_kinds):  # one kind: the mean, not (1,)
    return losses.mean() if n_kinds == 1 else loss_by_kind_ok(losses, kinds, n_kinds)


CASES = [
    (ex.check_weight_graph, weight_graph_ok, [weight_graph_wrong]),
    (ex.check_perplexity, perplexity_ok, [perplexity_wrong, perplexity_wrong_mean]),
    (ex.check_token_kind, token_kind_ok, [token_kind_wrong, token_kind_bad_name]),
    (ex.check_loss_by_kind, loss_by_kind_ok, [loss_by_kind_wrong]),
]
EDGE_BUGS = [weight_graph_by_shape, perplexity_log_softmax_underflow, token_kind_empty_is_space,
             loss_by_kind_one_kind_scalar]  # one per row of CASES: wrong on an edge case only
CHECKERS = [(c, ok, edge) for (c, ok, _), edge in zip(CASES, EDGE_BUGS, strict=True)]


@pytest.mark.parametrize(("check", "ok", "wrongs"), CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_accepts_correct_and_rejects_wrong(check, ok, wrongs, capsys):
    assert check(ok) is True
    assert capsys.readouterr().out.startswith("✓")
    for wrong in wrongs:
        assert check(wrong) is False
        out = capsys.readouterr().out
        assert out.startswith("✗") and out.count("\n") == 1, out


@pytest.mark.parametrize("kind", [*WRONG, "edge"])
@pytest.mark.parametrize(("check", "ok", "edge_bug"), CHECKERS,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_refuses_every_kind_of_wrong_answer(check, ok, edge_bug, kind, capsys):
    assert_refuses_every_wrong_answer(check, ok, edge_bug, kind, capsys)


@pytest.mark.parametrize(("check", "ok", "_"), CHECKERS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_failure_prints_an_input_that_rebuilds_exactly(check, ok, _, capsys):
    assert_inputs_rebuild(check, ok, capsys)


@pytest.mark.parametrize("seed", [1, 2, -3])
@pytest.mark.parametrize(("check", "ok", "_"), CHECKERS, ids=lambda v: getattr(v, "__name__", ""))
def test_passes_the_reference_for_any_seed(check, ok, _, seed):
    assert check(ok, seed=seed) is True


@pytest.mark.parametrize("check", [c for c, _, _ in CASES], ids=lambda c: c.__name__)
def test_not_implemented_and_not_callable(check, capsys):
    def stub(*args):
        raise NotImplementedError

    assert check(stub) is False
    assert "not implemented" in capsys.readouterr().out
    assert check(42) is False
    assert "expected a function" in capsys.readouterr().out


@pytest.mark.parametrize("check", [c for c, _, _ in CASES], ids=lambda c: c.__name__)
def test_a_crash_is_reported_not_raised(check, capsys):
    def crash(*args):
        raise RuntimeError("boom")

    assert check(crash) is False
    assert "raised RuntimeError: boom" in capsys.readouterr().out


def test_token_kind_names_the_kinds_when_the_answer_is_no_kind(capsys):
    assert ex.check_token_kind(token_kind_bad_name) is False
    assert "the kinds are letter, digit, space, punct, other" in capsys.readouterr().out


def test_checkers_are_exported():
    for name in ("check_weight_graph", "check_perplexity", "check_token_kind",
                 "check_loss_by_kind"):
        assert name in ex.__all__
