"""Checkers for the notebooks' exercises.

Each ``check_<name>(fn, *, seed=0)`` runs the learner's function on inputs drawn from ``seed``
and on the edge cases of the exercise (each checker's docstring lists them: an empty mask, no
class left, a single cluster, dead neurons ...), compares every answer with the reference
implementation in modlib, and prints one line. On success: ``✓ <name>: correct on 12 random
inputs.``. On the first wrong answer: what came back, what was expected, which edge case it was
and the input, written so that it can be pasted to re-run the function (a small input in full,
``torch.tensor([[0.37, -1.2]])``; a larger one as the seeded call that built it,
``torch.randn(40, 30, generator=torch.Generator().manual_seed(7))``). NaN, ±inf, None, an
exception, or an answer of the wrong type or shape (a tensor for a number, a tuple, a list) is
a wrong answer. The checker returns True when every case passes, so a notebook can
``assert modlib.exercises.check_...(my_function)``; it never raises on the learner's behalf.

The checkers live in one module per part of the course (``basics``: notebooks 00–03,
``learned``: 04–05, ``grokking``: 06, ``language``: 07, ``emergent``: 08) and are all available
from here.
:func:`reference` hands out the reference implementation a checker compares with, so that a
student notebook can go on past an unfinished exercise.

Example:
    >>> from modlib.course.exercises import check_jaccard
    >>> check_jaccard(lambda a, b: float((a & b).sum() / (a | b).sum()))  # doctest: +ELLIPSIS
    ✗ jaccard: your function returned nan, expected 1.0000 (a nan usually comes from 0/0)...
    False
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...validate import check_instance
from . import basics, emergent, grokking, language, learned
from .basics import *  # noqa: F403
from .emergent import *  # noqa: F403
from .grokking import *  # noqa: F403
from .language import *  # noqa: F403
from .learned import *  # noqa: F403

# Every checker, and reference (the one public name here that is not a checker).
__all__ = [*basics.__all__, *learned.__all__, *grokking.__all__, *language.__all__,
           *emergent.__all__, "reference"]

# exercise name (the checker's name without ``check_``) -> the function its checker compares with
_REFERENCES: dict[str, Callable[..., Any]] = {
    **basics._REFERENCES, **learned._REFERENCES, **grokking._REFERENCES,
    **language._REFERENCES, **emergent._REFERENCES,
}


def reference(name: str) -> Callable[..., Any]:
    """The library's reference implementation of exercise ``name``: the function whose answers
    the checker ``check_<name>`` compares the learner's with.

    It takes the same arguments as the learner's function and returns what the checker expects,
    so that a student notebook whose exercise is not done yet can go on with it ("Run all"
    reaches the end); ``check_<name>(reference(name))`` passes.

    Args:
        name: the exercise, the checker's name without ``check_``: ``"jaccard"`` for
            :func:`check_jaccard`.

    Returns:
        The reference implementation, a function of the exercise's arguments.

    Raises:
        TypeError: ``name`` not a str.
        ValueError: ``name`` not the name of an exercise (the error lists the known names), or
            a checker's name (``"check_jaccard"``: drop the ``check_``).

    Example:
        >>> import torch
        >>> jaccard = reference("jaccard")
        >>> jaccard(torch.tensor([[True, True, False]]), torch.tensor([[True, False, False]]))
        0.5
        >>> check_jaccard(jaccard)
        ✓ jaccard: correct on 12 random inputs.
        True
    """
    check_instance(name, "name", str, "a str, an exercise's name such as 'jaccard'")
    if name in _REFERENCES:
        return _REFERENCES[name]
    bare = name.removeprefix("check_")
    if bare != name and bare in _REFERENCES:
        raise ValueError(f"'name' must be an exercise's name, the checker's name without "
                         f"'check_'. Got {name!r}: drop the prefix, reference({bare!r}).")
    raise ValueError(f"'name' must be an exercise's name, the checker's name without 'check_'. "
                     f"Got {name!r}. Known: {', '.join(sorted(_REFERENCES))}.")
