"""Checkers for the notebooks' exercises.

Each ``check_<name>(fn)`` runs the learner's function on fresh random inputs, compares it with
the reference implementation in modlib, and prints one friendly line: what is right, or the
first input on which it goes wrong and how (type, shape or value). It returns True when every
case passes, so a notebook can ``assert modlib.exercises.check_...(my_function)``.

The checkers live in one module per part of the course (``basics``: notebooks 00–03,
``learned``: 04–05, ``grokking``: 06, ``language``: 07) and are all available from here.
"""

from . import basics, grokking, language, learned
from .basics import *  # noqa: F403
from .grokking import *  # noqa: F403
from .language import *  # noqa: F403
from .learned import *  # noqa: F403

__all__ = [*basics.__all__, *learned.__all__, *grokking.__all__, *language.__all__]
