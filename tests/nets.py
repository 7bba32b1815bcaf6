"""Small networks that several test modules share."""

from __future__ import annotations

import torch
from torch import nn


class CountingConv(nn.Conv2d):
    """A Conv2d that counts its forward calls (in the class attribute ``calls``)."""

    calls = 0

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        return super().forward(X)


class ConvNet(nn.Module):
    """A conv, an in-place change of its output, one ReLU shared before and after the fc layers.

    Input (N, 1, 4, 4), output (N, 3). ``conv`` is an instance of ``conv_cls``.
    """

    def __init__(self, conv_cls: type[nn.Conv2d] = nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv_cls(1, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.fc1 = nn.Linear(3 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(X))
        h.mul_(2.0)  # in place, on what act returned: a replayed output must survive this
        return self.fc2(self.act(self.fc1(h.flatten(1))))


class Twice(nn.Module):
    """One Linear layer run twice in a forward pass (a shared layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(X)))
