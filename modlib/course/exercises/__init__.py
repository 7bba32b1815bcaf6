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
``learned``: 04–05, ``grokking``: 06, ``language``: 07) and are all available from here.

Example:
    >>> from modlib.course.exercises import check_jaccard
    >>> check_jaccard(lambda a, b: float((a & b).sum() / (a | b).sum()))  # doctest: +ELLIPSIS
    ✗ jaccard: your function returned nan, expected 1.0000 (a nan usually comes from 0/0)...
    False
"""

from . import basics, grokking, language, learned
from .basics import *  # noqa: F403
from .grokking import *  # noqa: F403
from .language import *  # noqa: F403
from .learned import *  # noqa: F403

__all__ = [*basics.__all__, *learned.__all__, *grokking.__all__, *language.__all__]
