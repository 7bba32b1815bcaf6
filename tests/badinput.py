"""What the three bad-input tables share: row ids, the refusal check and the coverage check.

A table is a list of rows ``(public name, call, TypeError or ValueError, message regex)``; see
``tests/test_bad_inputs.py`` (core, analysis, hooks), ``tests/test_bad_inputs_training.py`` and
``tests/test_bad_inputs_course.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

Row = tuple[str, Callable[[], object], type[Exception], str]


def row_ids(rows: Iterable[Row]) -> list[str]:
    """``name-1``, ``name-2`` ...: one readable id per row, numbered per public name."""
    seen: dict[str, int] = {}
    out = []
    for name, *_ in rows:
        seen[name] = seen.get(name, 0) + 1
        out.append(f"{name}-{seen[name]}")
    return out


def assert_refused(call: Callable[[], object], error: type[Exception], match: str) -> None:
    """``call()`` raises exactly ``error`` (not a subclass from deeper down) matching ``match``."""
    with pytest.raises(error, match=match) as info:
        call()
    assert type(info.value) is error


def assert_every_name_has_a_row(rows: Iterable[Row], names: set[str], allowed: set[str]) -> None:
    """Every public name has a row or is allow-listed; no row or entry names a non-public name."""
    covered = {name for name, *_ in rows}
    missing = sorted(names - covered - allowed)
    assert not missing, f"public names without a bad-input row in CASES: {missing}"
    stale = sorted((covered | allowed) - names)
    assert not stale, f"rows or allow-list entries for names that are not public: {stale}"
