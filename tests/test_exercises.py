"""Every checker accepts a correct solution and rejects a wrong one, with one clear line."""

import pytest
import torch

import modlib
from modlib import exercises as ex


def clusterability_ok(W, rows, cols):
    W2 = W**2
    return (W2 * (rows[:, None] == cols[None, :])).sum() / W2.sum()


def clusterability_wrong(W, rows, cols):  # forgets to square
    A = W.abs()
    return (A * (rows[:, None] == cols[None, :])).sum() / A.sum()


def order_ok(labels):
    return torch.sort(labels, stable=True).indices


def order_wrong(labels):  # clusters in order, but the neurons inside each one reversed
    return torch.sort(labels, stable=True, descending=True).indices.flip(0)


def permute_ok(W, rows, cols):
    return W[order_ok(rows)][:, order_ok(cols)]


def permute_wrong(W, rows, cols):  # sorts the rows only
    return W[order_ok(rows)]


def chance_ok(rows, cols, k):
    p = torch.bincount(rows, minlength=k) / len(rows)
    q = torch.bincount(cols, minlength=k) / len(cols)
    return (p * q).sum()


def chance_wrong(rows, cols, k):  # assumes equal clusters
    return 1 / k


def normalized_ok(W):
    A = W.abs()
    d_r, d_c = A.sum(1), A.sum(0)
    inv = lambda d: torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), 0.0)  # noqa: E731
    return inv(d_r)[:, None] * A * inv(d_c)[None, :]


def normalized_wrong(W):  # divides by the degrees instead of their square roots
    A = W.abs()
    return A / A.sum(1, keepdim=True).clamp_min(1e-300) / A.sum(0, keepdim=True).clamp_min(1e-300)


def mask_ok(n_out, n_in, k):
    rows = torch.arange(n_out) * k // n_out
    cols = torch.arange(n_in) * k // n_in
    return rows[:, None] == cols[None, :]


def mask_wrong(n_out, n_in, k):  # blocks of n // k, the remainder in no block
    rows = torch.arange(n_out) // max(1, n_out // k)
    cols = torch.arange(n_in) // max(1, n_in // k)
    return rows[:, None] == cols[None, :]


def loss_ok(weights, masks):
    shares = [(W**2 * m).sum() / (W**2).sum() for W, m in zip(weights, masks, strict=True)]
    return 1 - torch.stack(shares).mean()


def loss_wrong(weights, masks):  # returns the clusterability, not 1 minus it
    return 1 - loss_ok(weights, masks)


def p_ok(observed, null):
    return (1 + sum(v >= observed for v in null)) / (1 + len(null))


def p_wrong(observed, null):  # forgets the +1s, and counts only strictly larger values
    return sum(v > observed for v in null) / len(null)


def gap_ok(W, k):
    part = modlib.spectral_cocluster(W, k)
    return modlib.clusterability(W, part) - modlib.chance_level(part)


def gap_wrong(W, k):  # assumes equal clusters: 1/k is not the chance level of unequal ones
    return modlib.clusterability(W, modlib.spectral_cocluster(W, k)) - 1 / k


@pytest.mark.parametrize("checker,good,bad", [
    (ex.check_clusterability, clusterability_ok, clusterability_wrong),
    (ex.check_cluster_order, order_ok, order_wrong),
    (ex.check_permute, permute_ok, permute_wrong),
    (ex.check_chance_level, chance_ok, chance_wrong),
    (ex.check_normalized_matrix, normalized_ok, normalized_wrong),
    (ex.check_block_mask, mask_ok, mask_wrong),
    (ex.check_loss_value, loss_ok, loss_wrong),
    (ex.check_p_value, p_ok, p_wrong),
    (ex.check_spectral_gap, gap_ok, gap_wrong),
])
def test_checker_accepts_reference_and_rejects_wrong(checker, good, bad, checker_contract):
    checker_contract(checker, good, bad)


def test_checker_reports_exceptions_and_non_functions(capsys):
    assert ex.check_clusterability(lambda W, r, c: W.foo) is False
    assert "raised AttributeError" in capsys.readouterr().out
    assert ex.check_clusterability(3) is False
    assert "expected a function, got int" in capsys.readouterr().out


def test_shape_mismatch_is_named(capsys):
    assert ex.check_block_mask(lambda n_out, n_in, k: torch.zeros(n_in, n_out, dtype=bool)) is False
    assert "returned shape" in capsys.readouterr().out


def test_every_checker_is_tested_against_a_right_and_a_wrong_solution():
    """Each public checker appears in the parametrised accept/reject test of some test file."""
    import pathlib

    texts = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_exercises*.py"))
    missing = [name for name in ex.__all__ if f"ex.{name}," not in texts]
    assert not missing, f"checkers without an accept/reject test: {missing}"
