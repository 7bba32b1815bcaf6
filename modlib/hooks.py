"""Forward hooks, activation capture, masking and replay: the one home for running a model with
something changed inside it. Depends on torch only; every part of modlib may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and every sub-module) in eval mode; restore each module's own mode after.

    Restores even when the body raises, and keeps a mixed state (for example a frozen, eval-mode
    sub-module inside a model being trained) as it was.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
