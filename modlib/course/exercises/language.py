"""Checkers for the exercises of notebook 07, modular language models: the weight graph of a
GPT-2 layer, perplexity, the kind of a token, the mean loss on each kind of token.

Each checker's docstring lists the edge cases it tries besides its random inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ...analysis.lm_interp import KINDS, loss_by_kind, perplexity, token_kind
from ...core.graph import layer_matrix
from ...validate import check_int
from ._core import _N_CASES, _Case, _case, _check, _Code, _draw, _gen, _randn
from ._show import _input

__all__ = ["check_weight_graph", "check_perplexity", "check_token_kind", "check_loss_by_kind"]


def _ref_weight_graph(layer: nn.Module) -> Tensor:
    return layer_matrix(layer).detach()


def _layer_case(kind: str, n_out: int, n_in: int, seed: int, note: str = "") -> _Case:
    """A Conv1D (GPT-2's layer, weight stored (n_in, n_out)) or an nn.Linear with seeded
    weights, described as the call that makes it and the weight it is given."""
    from transformers.pytorch_utils import Conv1D  # an optional dependency ([llm])

    shape = (n_in, n_out) if kind == "Conv1D" else (n_out, n_in)
    weight = _Code(_randn(*shape, seed=seed))
    layer = Conv1D(n_out, n_in) if kind == "Conv1D" else nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(weight.build())
    made = (f"transformers.pytorch_utils.Conv1D({n_out}, {n_in})" if kind == "Conv1D"
            else f"torch.nn.Linear({n_in}, {n_out})")
    text = f"{made} with .weight = {_input(layer.weight.detach(), weight.text)}"
    return _Case((layer,), _ref_weight_graph(layer), (text,), note)


def check_weight_graph(fn: Callable[[nn.Module], Any], *, seed: int = 0) -> bool:
    """Check ``fn(layer)`` → the (n_out, n_in) weight matrix of an ``nn.Linear`` or of GPT-2's
    ``Conv1D``, which stores its weight transposed, (n_in, n_out) (notebook 07).

    Edge cases: a square Conv1D (a missing transpose keeps the shape), a Conv1D with one
    output, an ``nn.Linear`` with one input.

    Example:
        >>> check_weight_graph(lambda layer: layer.weight)  # doctest: +ELLIPSIS, +SKIP
        ✗ weight_graph: your function returned 1.0300 at index [0, 2], expected -1.4400 ...
        False
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def cases() -> Iterator[_Case]:
        yield _layer_case("Conv1D", 4, 4, _draw(g, 0, 10_000),
                          "a square Conv1D: a missing transpose keeps the shape")
        yield _layer_case("Conv1D", 1, 5, _draw(g, 0, 10_000), "a Conv1D with one output")
        yield _layer_case("Linear", 3, 1, _draw(g, 0, 10_000), "an nn.Linear with one input")
        for i in range(_N_CASES - 3):
            n_out, n_in = _draw(g, 2, 12), _draw(g, 2, 12)
            if n_out == n_in:  # random cases are not square, so a shape names a lost transpose
                n_out += 1
            yield _layer_case("Conv1D" if i % 2 == 0 else "Linear", n_out, n_in,
                              _draw(g, 0, 10_000))

    return _check("weight_graph", fn, cases(), ("layer",))


def check_perplexity(fn: Callable[[Tensor, Tensor], Any], *, seed: int = 0) -> bool:
    """Check ``fn(logits, targets)`` → exp(mean next-token cross-entropy), for logits
    (B, T, vocab) and targets (B, T) (notebook 07).

    Edge cases: a single token, uniform logits (the perplexity is the vocabulary size), logits
    so far apart that ``log(softmax(...))`` underflows to log 0 (use ``log_softmax``).

    Example:
        >>> ce = torch.nn.functional.cross_entropy
        >>> check_perplexity(lambda logits, y: ce(logits.flatten(0, 1), y.flatten()).exp())
        ✓ perplexity: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def targets(B: int, T: int, vocab: int) -> _Code:
        return _Code(f"torch.randint({vocab}, ({B}, {T}), {_gen(_draw(g, 0, 10_000))})")

    def cases() -> Iterator[_Case]:
        yield _case(perplexity, _Code(_randn(1, 1, 5, seed=_draw(g, 0, 10_000))),
                    targets(1, 1, 5), note="a single token")
        yield _case(perplexity, _Code("torch.zeros(2, 3, 7)"), targets(2, 3, 7),
                    note="uniform logits")
        yield _case(perplexity, torch.tensor([[[0.0, 120.0], [3.0, 0.0], [0.0, 2.0]]]),
                    torch.tensor([[0, 0, 1]]),
                    note="logits far apart: softmax gives 0 to a target, whose log is -inf")
        for _ in range(_N_CASES - 3):
            B, T, vocab = _draw(g, 1, 9), _draw(g, 1, 9), _draw(g, 2, 10)
            logits = _Code(f"3 * {_randn(B, T, vocab, seed=_draw(g, 0, 10_000))}")
            yield _case(perplexity, logits, targets(B, T, vocab))

    return _check("perplexity", fn, cases(), ("logits", "targets"), atol=1e-4)


def _texts(g: torch.Generator) -> Iterator[str]:
    """Short token texts: bytes, GPT-2-like words with a leading space, whitespace, ''."""
    fixed = ["", " ", "\n\n", "\t", "a", " the", "Z", "é", " 7", "42", ",", " .", "\ufffd",
             " \ufffd", "(", "_x", "€"]
    yield from fixed
    pieces = ["", " ", "\n", "ab", "Q", "9", "-", "'s", "\ufffd", "ü", "!"]
    for _ in range(_N_CASES):
        n = int(torch.randint(1, 4, (1,), generator=g))
        yield "".join(pieces[int(i)] for i in torch.randint(len(pieces), (n,), generator=g))


def _text_note(text: str) -> str:
    if not text:
        return "the empty string"
    if text.isspace():
        return "whitespace only"
    return "leading whitespace" if text[0].isspace() else ""


def check_token_kind(fn: Callable[[str], Any], *, seed: int = 0) -> bool:
    """Check ``fn(text)`` → the kind of a token from its first non-whitespace character:
    'letter', 'digit', 'punct' (``string.punctuation``) or 'other'; 'space' for whitespace
    only, 'other' for '' (notebook 07).

    Edge cases: the empty string, whitespace only, leading whitespace, non-ASCII letters and
    symbols, the replacement character of a lone byte.

    Example:
        >>> check_token_kind(lambda text: "space" if not text.strip() else token_kind(text))
        ... # doctest: +ELLIPSIS
        ✗ token_kind: your function returned 'space', expected 'other'. ... Input: text = ''
        False
    """
    check_int(seed, "seed")
    cases = (_Case((text,), token_kind(text), note=_text_note(text))
             for text in _texts(torch.Generator().manual_seed(seed)))
    return _check("token_kind", fn, cases, ("text",), noun="token texts", choices=KINDS)


def check_loss_by_kind(fn: Callable[[Tensor, Tensor, int], Any], *, seed: int = 0) -> bool:
    """Check ``fn(losses, kinds, n_kinds)`` → the (n_kinds,) mean loss over the tokens of each
    kind, for losses and kinds of shape (B, T) in which every kind occurs (notebook 07).

    Edge cases: a single kind, a kind with a single token.

    Example:
        >>> check_loss_by_kind(loss_by_kind)  # the reference passes, of course
        ✓ loss_by_kind: correct on 12 random inputs.
        True
    """
    check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)

    def losses(B: int, T: int) -> _Code:
        return _Code(f"(5 * torch.rand({B}, {T}, {_gen(_draw(g, 0, 10_000))})).round(decimals=2)")

    def cases() -> Iterator[_Case]:
        yield _case(loss_by_kind, losses(2, 4), torch.zeros(2, 4, dtype=torch.long), 1,
                    note="a single kind")
        yield _case(loss_by_kind, losses(2, 3), torch.tensor([[0, 2, 0], [2, 1, 2]]), 3,
                    note="kind 1 has a single token")
        for _ in range(_N_CASES - 2):
            n_kinds, B, T = _draw(g, 1, 6), _draw(g, 3, 9), _draw(g, 3, 9)  # B * T >= 9
            kinds = _Code(f"(torch.randperm({B * T}, {_gen(_draw(g, 0, 10_000))}) % {n_kinds})"
                          f".view({B}, {T})")  # every kind occurs
            yield _case(loss_by_kind, losses(B, T), kinds, n_kinds)

    return _check("loss_by_kind", fn, cases(), ("losses", "kinds", "n_kinds"))


# name -> reference implementation, the function each checker computes its expected answers
# with: modlib.exercises.reference(name) looks names up here.
_REFERENCES: dict[str, Callable[..., Any]] = {
    "weight_graph": _ref_weight_graph, "perplexity": perplexity, "token_kind": token_kind,
    "loss_by_kind": loss_by_kind,
}
