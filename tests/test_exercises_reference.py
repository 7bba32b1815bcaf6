"""``modlib.exercises.reference(name)``: the function a student notebook goes on with when an
exercise is not done yet. It must pass its own checker for any seed, exist for every checker and
for nothing else, and refuse a bad name with a message that says what to write instead.

That a wrong function (NaN, None, a wrong shape, ...) still fails every checker is tested, for
every checker, by ``test_*_refuses_every_kind_of_wrong_answer`` in ``test_exercises*.py``; here,
that the reference passes is not for want of a comparison: its answers, moved off by a little,
are refused.
"""

from __future__ import annotations

import pytest
import torch

import modlib
from modlib import exercises as ex
from modlib.course.exercises import _REFERENCES

NAMES = [n.removeprefix("check_") for n in ex.__all__ if n.startswith("check_")]


def _checker(name: str):
    return getattr(ex, f"check_{name}")


def _needs(name: str) -> None:
    if name == "weight_graph":  # its cases are GPT-2's Conv1D layers: an optional dependency
        pytest.importorskip("transformers")


def test_every_checker_has_a_reference_and_the_registry_nothing_else():
    assert len(NAMES) == 24
    assert sorted(_REFERENCES) == sorted(NAMES)
    assert modlib.exercises.reference is ex.reference


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_its_checker(name, seed, capsys):
    _needs(name)
    fn = ex.reference(name)
    assert callable(fn)
    assert _checker(name)(fn, seed=seed) is True
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {name}: correct on ") and out.count("\n") == 1, out


def _off(good):
    """``good``'s answers moved off a little: a number or tensor + 0.25, a kind of token
    another kind."""
    def answer(*args):
        out = good(*args)
        if isinstance(out, str):
            return "other" if out != "other" else "letter"
        if isinstance(out, torch.Tensor) and out.dtype == torch.bool:
            return ~out
        if isinstance(out, torch.Tensor) and not out.is_floating_point():
            return out.flip(0) if out.ndim else out + 1
        return out + (1 if isinstance(out, int) else 0.25)
    return answer


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_moved_off_is_refused(name, capsys):
    _needs(name)
    assert _checker(name)(_off(ex.reference(name))) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}: your function returned") and out.count("\n") == 1, out


def test_a_checker_name_is_refused_with_the_name_to_write():
    with pytest.raises(ValueError, match=r"Got 'check_jaccard': drop the prefix, "
                                         r"reference\('jaccard'\)"):
        ex.reference("check_jaccard")


@pytest.mark.parametrize("name", ["jacard", "", "Jaccard", "check_nothing"])
def test_an_unknown_name_is_refused_with_the_known_names(name):
    with pytest.raises(ValueError, match=r"'name' must be an exercise's name") as info:
        ex.reference(name)
    message = str(info.value)
    assert f"Got {name!r}." in message
    assert all(known in message for known in NAMES)


@pytest.mark.parametrize("name, got", [(3, "int 3"), (None, "None"),
                                       (ex.check_jaccard, "function")])
def test_a_name_that_is_not_a_str_is_refused(name, got):
    with pytest.raises(TypeError, match=rf"'name' must be a str, .*Got {got}"):
        ex.reference(name)
