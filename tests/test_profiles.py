"""Tests for modlib.profiles: the three profiles, how one is chosen, and the error messages."""

from __future__ import annotations

import dataclasses
import doctest
from typing import get_args

import pytest
import torch

from modlib import profiles
from modlib.profiles import PROFILES, Profile, ProfileName, profile


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def test_profiles_match_the_literal():
    assert tuple(PROFILES) == get_args(ProfileName)
    for name, prof in PROFILES.items():
        assert isinstance(prof, Profile)
        assert prof.name == name


@pytest.mark.parametrize("name", get_args(ProfileName))
def test_explicit_name_wins_over_env(name, monkeypatch):
    monkeypatch.setenv("MODLIB_PROFILE", "ci" if name != "ci" else "gpu")
    assert profile(name) is PROFILES[name]


@pytest.mark.parametrize("name", get_args(ProfileName))
def test_env_var_chooses(name, monkeypatch):
    monkeypatch.setenv("MODLIB_PROFILE", name)
    assert profile().name == name


@pytest.mark.parametrize(("cuda", "expected"), [(True, "gpu"), (False, "cpu")])
@pytest.mark.parametrize("env", [None, "", "  "])
def test_automatic_choice_follows_cuda(cuda, expected, env, monkeypatch):
    if env is None:
        monkeypatch.delenv("MODLIB_PROFILE", raising=False)
    else:
        monkeypatch.setenv("MODLIB_PROFILE", env)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert profile().name == expected


def test_sizes_grow_from_ci_to_gpu():
    ci, cpu, gpu = PROFILES["ci"], PROFILES["cpu"], PROFILES["gpu"]
    for field in dataclasses.fields(Profile):
        if field.name in ("name", "modadd_train_frac", "modadd_lr", "modadd_weight_decay",
                          "batch_size", "mnist_epochs"):
            continue
        small, mid, big = (getattr(p, field.name) for p in (ci, cpu, gpu))
        big = float("inf") if big is None else big  # None: all of it
        assert small <= mid <= big, field.name
    # ci takes more passes over far fewer digits: the images seen still grow
    seen = [p.mnist_train * p.mnist_epochs for p in (ci, cpu, gpu)]
    assert seen == sorted(seen)


def test_values_are_sensible():
    for prof in PROFILES.values():
        assert _is_prime(prof.modadd_p)
        assert 0 < prof.modadd_train_frac < 1
    assert PROFILES["gpu"].mnist_train == 60_000 and PROFILES["gpu"].cifar_train == 50_000
    assert PROFILES["gpu"].modadd_p == 113 and PROFILES["gpu"].mnist_epochs == 10
    assert PROFILES["gpu"].llm_steps >= 1000
    # cpu uses all of the offline 5,000-image MNIST subset (4,000 train / 1,000 test)
    assert (PROFILES["cpu"].mnist_train, PROFILES["cpu"].mnist_test) == (4000, 1000)
    assert PROFILES["ci"].mnist_epochs <= 8 and PROFILES["ci"].mnist_train <= 1000
    # modular addition: the small profiles grok in hundreds of epochs thanks to strong weight
    # decay (tests/test_experiments.py checks that ci's models generalise); gpu keeps the
    # gentler recipe at the paper's p
    for name in ("ci", "cpu"):
        prof = PROFILES[name]
        assert prof.modadd_epochs <= 1000 and prof.modadd_weight_decay >= 3
    assert PROFILES["gpu"].modadd_weight_decay == 1.0 and PROFILES["gpu"].modadd_epochs >= 10_000


def test_progress_bars_only_in_the_gpu_profile():
    assert [profile(n).progress for n in ("ci", "cpu", "gpu")] == [False, False, True]


def test_profile_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["ci"].mnist_epochs = 3  # type: ignore[misc]


def test_profile_round_trips_through_a_dict():
    for prof in PROFILES.values():
        assert Profile(**dataclasses.asdict(prof)) == prof


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("laptop", ValueError, r"'name' must be one of \('ci', 'cpu', 'gpu'\)\. Got 'laptop'\."),
        ("GPU", ValueError, r"'name' must be one of .* Got 'GPU'\."),
        ("", ValueError, r"'name' must be one of .* Got ''\."),
        (3, TypeError, r"'name' must be a str or None\. Got int\."),
    ],
)
def test_bad_name(name, error, match):
    with pytest.raises(error, match=match):
        profile(name)


def test_bad_env_var(monkeypatch):
    monkeypatch.setenv("MODLIB_PROFILE", "tpu")
    with pytest.raises(ValueError, match=r"MODLIB_PROFILE must be one of \('ci', 'cpu', 'gpu'\)\. "
                       r"Got 'tpu'\."):
        profile()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"name": "big"}, r"'name' must be one of \('ci', 'cpu', 'gpu'\)\. Got 'big'\."),
        ({"mnist_train": 0}, r"'mnist_train' must be a positive int\. Got 0\."),
        ({"batch_size": 2.5}, r"'batch_size' must be a positive int\. Got 2\.5\."),
        ({"llm_steps": True}, r"'llm_steps' must be a positive int\. Got True\."),
        ({"modadd_train_frac": 1.0}, r"'modadd_train_frac' must be in \(0, 1\)\. Got 1\.0\."),
        ({"modadd_lr": 0.0}, r"'modadd_lr' must be a positive number\. Got 0\.0\."),
        ({"modadd_weight_decay": "1"}, r"'modadd_weight_decay' must be a positive number\. "
                                       r"Got '1'\."),
        ({"modadd_lr": True}, r"'modadd_lr' must be a positive number\. Got True\."),
    ],
)
def test_bad_profile_fields(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(PROFILES["ci"], **change)


def test_docstring_examples():
    assert doctest.testmod(profiles).failed == 0
