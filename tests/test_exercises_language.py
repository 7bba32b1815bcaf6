"""The checkers of notebook 07 accept a correct solution and reject a wrong one, with one line."""

import pytest
import torch

from modlib import exercises as ex
from modlib.analysis.lm_interp import token_kind

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


CASES = [
    (ex.check_weight_graph, weight_graph_ok, [weight_graph_wrong]),
    (ex.check_perplexity, perplexity_ok, [perplexity_wrong, perplexity_wrong_mean]),
    (ex.check_token_kind, token_kind_ok, [token_kind_wrong, token_kind_bad_name]),
    (ex.check_loss_by_kind, loss_by_kind_ok, [loss_by_kind_wrong]),
]


@pytest.mark.parametrize(("check", "ok", "wrongs"), CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_accepts_correct_and_rejects_wrong(check, ok, wrongs, capsys):
    assert check(ok) is True
    assert capsys.readouterr().out.startswith("✓")
    for wrong in wrongs:
        assert check(wrong) is False
        out = capsys.readouterr().out
        assert out.startswith("✗") and out.count("\n") == 1, out


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
