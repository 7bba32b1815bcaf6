"""Timing two variants of a step fairly: interleaved, alternating which one goes first."""

from __future__ import annotations

from collections.abc import Callable


def interleave(plain: Callable[[], float], modular: Callable[[], float], pairs: int,
               warmup: int = 3) -> tuple[list[float], list[float]]:
    """Run ``warmup`` untimed pairs, then ``pairs`` pairs of the two steps, alternating which
    goes first so that neither always runs on a warm cache.

    Args:
        plain, modular: steps that return their own duration in seconds.
        pairs: how many timed pairs.
        warmup: how many untimed pairs first.

    Returns:
        The durations of ``plain`` and of ``modular``, one per pair, in the same order.
    """
    for _ in range(warmup):
        plain(), modular()
    t_plain, t_mod = [], []
    for i in range(pairs):
        if i % 2 == 0:
            a, b = plain(), modular()
        else:
            b, a = modular(), plain()
        t_plain.append(a)
        t_mod.append(b)
    return t_plain, t_mod
