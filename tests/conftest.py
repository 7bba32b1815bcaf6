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
