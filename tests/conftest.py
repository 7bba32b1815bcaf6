"""Shared fixtures: tiny planted matrices on the CPU."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=40, deadline=None)
settings.load_profile("ci")


def planted(n_out: int, n_in: int, k: int, *, seed: int = 0, signal: float = 5.0,
            sizes: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian weights, ``signal`` times larger inside k planted, shuffled co-clusters.

    ``sizes`` gives the clusters' shares (uneven clusters); default equal.
    """
    g = torch.Generator().manual_seed(seed)
    p = torch.tensor(sizes or [1.0] * k)
    rows = torch.multinomial(p, n_out, replacement=True, generator=g)
    cols = torch.multinomial(p, n_in, replacement=True, generator=g)
    W = torch.randn(n_out, n_in, generator=g)
    W = W * torch.where(rows[:, None] == cols[None, :], signal, 1.0)
    return W, rows, cols


@pytest.fixture
def planted_matrix():
    return planted


def _not_done(*args):
    raise NotImplementedError


@pytest.fixture
def checker_contract(capsys):
    """What every exercise checker promises: the reference passes, the wrong answer fails in one
    line that speaks of "your function", and an unfinished stub is reported as such."""

    def check(checker, good, bad):
        assert checker(good) is True
        assert capsys.readouterr().out.startswith("✓")
        assert checker(bad) is False
        out = capsys.readouterr().out
        assert out.startswith("✗") and "your function" in out
        assert len(out.strip().splitlines()) == 1
        assert checker(_not_done) is False
        assert "not implemented yet" in capsys.readouterr().out

    return check
