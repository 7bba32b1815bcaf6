"""The checkers of notebooks 04–05 accept a correct solution and reject a wrong one, refuse
NaN, inf, None and wrong types and shapes, and try the edge cases of their exercises."""

import math

import pytest
import torch

from modlib import exercises as ex
from tests.test_exercises import checker_suite


def specialization_ok(drop):
    d = drop.clamp(min=0)
    d = d[:, d.amax(0) >= 0.05]
    if d.shape[1] == 0:
        return 0.0
    p = d / d.sum(0)
    entropy = -(p * p.clamp(min=1e-30).log()).sum(0)
    return float((1 - entropy / math.log(drop.shape[0])).mean())


def specialization_no_threshold(drop):  # keeps the classes no cluster matters for
    d = drop.clamp(min=0) + 1e-12
    p = d / d.sum(0)
    entropy = -(p * p.log()).sum(0)
    return float((1 - entropy / math.log(drop.shape[0])).mean())


def jaccard_ok(a, b):
    either = int((a | b).sum())
    return int((a & b).sum()) / either if either else 1.0


def jaccard_wrong(a, b):  # divides by the size of the first mask
    return int((a & b).sum()) / max(1, int(a.sum()))


def inside_ok(mask, rows, cols):
    inside = rows[:, None] == cols[None, :]
    return int((mask & inside).sum()) / int(mask.sum())


def inside_wrong(mask, rows, cols):  # the share of the clusters' edges in the circuit, reversed
    inside = rows[:, None] == cols[None, :]
    return int((mask & inside).sum()) / max(1, int(inside.sum()))


def conv_ok(weight):
    return (weight**2).sum(dim=(2, 3)).sqrt()


def conv_wrong(weight):  # sums |W| instead of the L2 norm
    return weight.abs().sum(dim=(2, 3))


def class_accuracy_ok(logits, y, n_classes):
    hit = (logits.argmax(1) == y).float()
    return torch.bincount(y, weights=hit, minlength=n_classes) / torch.bincount(
        y, minlength=n_classes)


def class_accuracy_wrong(logits, y, n_classes):  # per predicted class (precision), not per label
    pred = logits.argmax(1)
    hit = (pred == y).float()
    return torch.bincount(pred, weights=hit, minlength=n_classes) / torch.bincount(
        pred, minlength=n_classes).clamp(min=1)


def specialization_no_guard(drop):  # forgets "0.0 when no class is left": the mean of nothing
    d = drop.clamp(min=0)
    d = d[:, d.amax(0) >= 0.05]
    p = d / d.sum(0)
    entropy = -(p * p.clamp(min=1e-30).log()).sum(0)
    return float((1 - entropy / math.log(drop.shape[0])).mean())


def jaccard_no_guard(a, b):  # 0 / 0 = nan when both masks are empty
    return float((a & b).sum() / (a | b).sum())


def inside_one_hot(mask, rows, cols):  # one_hot without num_classes: sizes differ with labels
    F = torch.nn.functional
    inside = (F.one_hot(rows) @ F.one_hot(cols).T).bool()
    return int((mask & inside).sum()) / int(mask.sum())


def conv_one_by_one_signed(weight):  # "a 1×1 kernel is its weight": the norm is not signed
    if weight.shape[-2:] == (1, 1):
        return weight[:, :, 0, 0]
    return conv_ok(weight)


def class_accuracy_per_example(logits, y, n_classes):  # one example per class: per example
    if len(y) == n_classes:
        return (logits.argmax(1) == y).float()
    return class_accuracy_ok(logits, y, n_classes)


CHECKERS = [  # checker, a right answer, a wrong one, one wrong on an edge case only
    (ex.check_specialization, specialization_ok, specialization_no_threshold,
     specialization_no_guard),
    (ex.check_jaccard, jaccard_ok, jaccard_wrong, jaccard_no_guard),
    (ex.check_inside_share, inside_ok, inside_wrong, inside_one_hot),
    (ex.check_conv_matrix, conv_ok, conv_wrong, conv_one_by_one_signed),
    (ex.check_class_accuracy, class_accuracy_ok, class_accuracy_wrong,
     class_accuracy_per_example),
]
IDS = [c.__name__ for c, *_ in CHECKERS]
(test_checker_accepts_reference_and_rejects_wrong,
 test_checker_refuses_every_kind_of_wrong_answer,
 test_a_failure_prints_an_input_that_rebuilds_exactly) = checker_suite(CHECKERS,
                                                                       range(len(CHECKERS)))


@pytest.mark.parametrize("seed", [1, 2, -3])
@pytest.mark.parametrize("checker,good,_,__", CHECKERS, ids=IDS)
def test_checker_passes_the_reference_for_any_seed(checker, good, _, __, seed):
    assert checker(good, seed=seed) is True


def test_jaccard_checker_needs_the_empty_case(capsys):
    assert ex.check_jaccard(lambda a, b: int((a & b).sum()) / int((a | b).sum())) is False
    assert "raised ZeroDivisionError" in capsys.readouterr().out


def test_conv_checker_names_a_wrong_shape(capsys):
    assert ex.check_conv_matrix(lambda w: (w**2).sum(dim=(2, 3)).sqrt().T) is False
    assert "returned shape" in capsys.readouterr().out
