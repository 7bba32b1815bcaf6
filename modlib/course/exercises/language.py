"""Checkers for the exercises of notebook 07, modular language models: the weight graph of a
GPT-2 layer, perplexity, the kind of a token, the mean loss on each kind of token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ...analysis.lm_interp import KINDS, loss_by_kind, perplexity, token_kind
from ...core.graph import layer_matrix
from ...validate import check_int
from ._core import _N_CASES, _check, _describe

__all__ = ["check_weight_graph", "check_perplexity", "check_token_kind", "check_loss_by_kind"]


def check_weight_graph(fn: Callable[[nn.Module], Any], *, seed: int = 0) -> bool:
    """Check ``fn(layer)`` → the (n_out, n_in) weight matrix of an ``nn.Linear`` or of GPT-2's
    ``Conv1D``, which stores its weight transposed, (n_in, n_out) (notebook 07)."""
    check_int(seed, "seed")
    from transformers.pytorch_utils import Conv1D  # an optional dependency ([llm])

    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for i in range(_N_CASES):
            n_out, n_in = (int(x) for x in torch.randint(2, 12, (2,), generator=g))
            if n_out == n_in:  # a square matrix would hide a missing transpose's shape error
                n_out += 1
            layer = Conv1D(n_out, n_in) if i % 2 == 0 else nn.Linear(n_in, n_out)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
            yield (layer,), layer_matrix(layer).detach()

    return _check("weight_graph", fn, cases())


def check_perplexity(fn: Callable[[Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(logits, targets)`` → exp(mean next-token cross-entropy), for logits
    (B, T, vocab) and targets (B, T) (notebook 07)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            B, T, vocab = (int(x) for x in torch.randint(1, 9, (3,), generator=g))
            vocab += 1  # at least two tokens
            logits = 3 * torch.randn(B, T, vocab, generator=g)
            targets = torch.randint(vocab, (B, T), generator=g)
            yield (logits, targets), perplexity(logits, targets)

    return _check("perplexity", fn, cases(), atol=1e-4)


def _texts(g: torch.Generator) -> Iterator[str]:
    """Short token texts: bytes, GPT-2-like words with a leading space, whitespace, ''."""
    fixed = ["", " ", "\n\n", "\t", "a", " the", "Z", "é", " 7", "42", ",", " .", "\ufffd",
             " \ufffd", "(", "_x", "€"]
    yield from fixed
    pieces = ["", " ", "\n", "ab", "Q", "9", "-", "'s", "\ufffd", "ü", "!"]
    for _ in range(_N_CASES):
        n = int(torch.randint(1, 4, (1,), generator=g))
        yield "".join(pieces[int(i)] for i in torch.randint(len(pieces), (n,), generator=g))


def check_token_kind(fn: Callable[[str], Any], *, seed: int = 0) -> bool:
    """Check ``fn(text)`` → the kind of a token from its first non-whitespace character:
    'letter', 'digit', 'punct' (``string.punctuation``) or 'other'; 'space' for whitespace
    only, 'other' for '' (notebook 07)."""
    check_int(seed, "seed")
    if not callable(fn):
        print(f"✗ token_kind: expected a function, got {type(fn).__name__}.")
        return False
    n = 0
    for text in _texts(torch.Generator().manual_seed(seed)):
        want = token_kind(text)
        try:
            got = fn(text)
        except NotImplementedError:
            print("✗ token_kind: not implemented yet: replace the `...` / NotImplementedError.")
            return False
        except Exception as e:  # the learner's bug: report it, do not crash the notebook
            print(f"✗ token_kind: raised {type(e).__name__}: {e} for {_describe((text,))}.")
            return False
        if got != want:
            hint = "" if got in KINDS else f" (the kinds are {', '.join(KINDS)})"
            print(f"✗ token_kind: for {text!r}, your function returned {got!r}, expected "
                  f"{want!r}{hint}.")
            return False
        n += 1
    print(f"✓ token_kind: correct on {n} token texts.")
    return True


def check_loss_by_kind(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(losses, kinds, n_kinds)`` → the (n_kinds,) mean loss over the tokens of each
    kind, for losses and kinds of shape (B, T) in which every kind occurs (notebook 07)."""
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[tuple[tuple[Any, ...], Tensor]]:
        for _ in range(_N_CASES):
            n_kinds = int(torch.randint(1, 6, (1,), generator=g))
            B, T = (int(x) for x in torch.randint(3, 9, (2,), generator=g))  # B * T >= 9
            kinds = torch.randint(n_kinds, (B * T,), generator=g)
            kinds[torch.randperm(B * T, generator=g)[:n_kinds]] = torch.arange(n_kinds)
            kinds = kinds.view(B, T)  # every kind occurs at least once
            losses = 5 * torch.rand(B, T, generator=g)
            yield (losses, kinds, n_kinds), loss_by_kind(losses, kinds, n_kinds)

    return _check("loss_by_kind", fn, cases())
