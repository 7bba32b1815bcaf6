"""Tests for modlib.profiles: the four profiles, how one is chosen, the error messages, and the
estimate that the gpu profile fits a free Colab T4 (benchmarks/bench_gpu.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from typing import get_args

import pytest
import torch

from modlib.__main__ import _parser
from modlib.training.profiles import LLM_MODELS, PROFILES, Profile, ProfileName, profile

NAMES = ("ci", "cpu", "gpu", "paper")
# fields that are not sizes, or need not grow from ci to paper (ci prunes in coarse groups)
_NOT_GROWING = ("name", "modadd_train_frac", "modadd_lr", "modadd_weight_decay", "batch_size",
                "mnist_epochs", "prune_chunk", "resnet18", "mnist_lams", "mnist_ks", "llm_lams",
                "llm_model")


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


def test_the_profiles_and_their_order():
    assert get_args(ProfileName) == NAMES


def test_sizes_grow_from_ci_to_paper():
    for field in dataclasses.fields(Profile):
        if field.name in _NOT_GROWING:
            continue
        sizes = [getattr(PROFILES[n], field.name) for n in NAMES]
        sizes = [float("inf") if v is None else v for v in sizes]  # None: all of it
        assert sizes == sorted(sizes), field.name
    # ci takes more passes over far fewer digits: the images seen still grow
    seen = [PROFILES[n].mnist_train * PROFILES[n].mnist_epochs for n in NAMES]
    assert seen == sorted(seen)
    for name in ("mnist_lams", "mnist_ks", "llm_lams"):  # every sweep widens
        sweeps = [set(getattr(PROFILES[n], name)) for n in NAMES]
        assert all(a <= b for a, b in zip(sweeps, sweeps[1:], strict=False)), name


def test_values_are_sensible():
    for prof in PROFILES.values():
        assert _is_prime(prof.modadd_p)
        assert 0 < prof.modadd_train_frac < 1
    for name in ("gpu", "paper"):  # both: all of MNIST and CIFAR-10, grokking at p = 113
        prof = PROFILES[name]
        assert prof.mnist_train == 60_000 and prof.cifar_train == 50_000
        assert prof.modadd_p == 113 and prof.mnist_epochs == 10 and prof.resnet18
    # gpu fine-tunes GPT-2 briefly (a T4 within the hour); paper at the paper's scale
    gpu, paper = PROFILES["gpu"], PROFILES["paper"]
    assert 600 <= gpu.llm_steps <= 1000 and gpu.llm_batch * gpu.llm_seq_len <= 8 * 256
    assert paper.llm_steps >= 5000 and (paper.llm_batch, paper.llm_seq_len) == (16, 512)
    assert paper.text_chars is None and paper.llm_sweep_steps >= gpu.llm_sweep_steps
    # cpu uses all of the offline 5,000-image MNIST subset (4,000 train / 1,000 test)
    assert (PROFILES["cpu"].mnist_train, PROFILES["cpu"].mnist_test) == (4000, 1000)
    assert PROFILES["ci"].mnist_epochs <= 8 and PROFILES["ci"].mnist_train <= 1000
    # modular addition: the small profiles grok in hundreds of epochs thanks to strong weight
    # decay (tests/test_experiments.py checks that ci's models generalise); gpu keeps the
    # gentler recipe at the paper's p
    for name in ("ci", "cpu"):
        prof = PROFILES[name]
        assert prof.modadd_epochs <= 1000 and prof.modadd_weight_decay >= 3
    for name in ("gpu", "paper"):
        assert PROFILES[name].modadd_weight_decay == 1.0
        assert PROFILES[name].modadd_epochs >= 10_000
    for prof in PROFILES.values():  # the notebooks compare every sweep with its baseline
        assert prof.mnist_lams[0] == prof.llm_lams[0] == 0.0 and len(prof.llm_lams) >= 2


def test_progress_bars_only_in_the_gpu_and_paper_profiles():
    assert [profile(n).progress for n in NAMES] == [False, False, True, True]


def test_paper_profile_by_name_and_by_environment(monkeypatch):
    assert profile("paper") is PROFILES["paper"]
    monkeypatch.setenv("MODLIB_PROFILE", "paper")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profile().name == "paper"
    monkeypatch.delenv("MODLIB_PROFILE")
    assert profile().name == "gpu"  # never chosen automatically


@pytest.mark.parametrize("name", NAMES)
def test_the_command_line_accepts_every_profile(name):
    args = _parser().parse_args(["reproduce", "llm", "--profile", name])
    assert (args.experiment, args.profile) == ("llm", name)


def test_the_command_line_refuses_an_unknown_profile(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["reproduce", "mnist", "--profile", "tpu"])
    assert exit_info.value.code == 2
    assert "'ci', 'cpu', 'gpu', 'paper'" in capsys.readouterr().err


def test_profile_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["ci"].mnist_epochs = 3  # type: ignore[misc]


def test_profile_round_trips_through_a_dict_and_json():
    for prof in PROFILES.values():
        assert Profile(**dataclasses.asdict(prof)) == prof
        again = Profile(**json.loads(json.dumps(dataclasses.asdict(prof))))  # tuples -> lists
        assert again == prof and hash(again) == hash(prof)


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("laptop", ValueError,
         r"'name' must be one of \('ci', 'cpu', 'gpu', 'paper'\)\. Got 'laptop'\."),
        ("GPU", ValueError, r"'name' must be one of .* Got 'GPU'\."),
        ("", ValueError, r"'name' must be one of .* Got ''\."),
        (3, TypeError, r"'name' must be a str or None\. Got 3\."),
    ],
)
def test_bad_name(name, error, match):
    with pytest.raises(error, match=match):
        profile(name)


def test_bad_env_var(monkeypatch):
    monkeypatch.setenv("MODLIB_PROFILE", "tpu")
    with pytest.raises(ValueError, match=r"MODLIB_PROFILE must be one of \('ci', 'cpu', 'gpu', "
                       r"'paper'\)\. Got 'tpu'\."):
        profile()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"name": "big"}, ValueError,
         r"'name' must be one of \('ci', 'cpu', 'gpu', 'paper'\)\. Got 'big'\."),
        ({"mnist_train": 0}, ValueError, r"'mnist_train' must be an int >= 1 or None\. Got 0\."),
        ({"batch_size": 2.5}, TypeError, r"'batch_size' must be an int >= 1\. Got float 2\.5\."),
        ({"batch_size": None}, TypeError, r"'batch_size' must be an int >= 1\. Got None\."),
        ({"llm_steps": True}, TypeError, r"'llm_steps' must be an int >= 1\. Got bool True\."),
        ({"modadd_train_frac": 1.0}, ValueError,
         r"'modadd_train_frac' must be a finite real > 0 and < 1\. Got 1\.0\."),
        ({"modadd_lr": 0.0}, ValueError, r"'modadd_lr' must be a finite real > 0\. Got 0\.0\."),
        ({"modadd_weight_decay": "1"}, TypeError,
         r"'modadd_weight_decay' must be a finite real > 0\. Got str '1'\."),
        ({"modadd_lr": True}, TypeError, r"'modadd_lr' must be a finite real > 0\. Got bool True"),
        ({"n_shuffles": 0}, ValueError, r"'n_shuffles' must be an int >= 1\. Got 0\."),
        ({"resnet18": 1}, TypeError, r"'resnet18' must be True or False\. Got 1\."),
        ({"mnist_lams": (2.0, 20.0)}, ValueError,
         r"'mnist_lams' must be a non-empty tuple of increasing numbers that start with 0\.0 "
         r"\(the baseline\)\. Got \(2\.0, 20\.0\)\."),
        ({"llm_lams": (0.0, 20.0, 2.0)}, ValueError,
         r"'llm_lams' must be .* Got \(0\.0, 20\.0, 2\.0\)\."),
        ({"llm_lams": ()}, TypeError, r"'llm_lams' must be a non-empty tuple"),
        ({"llm_lams": 0.0}, TypeError, r"'llm_lams' must be a non-empty tuple .* Got float 0\.0\."),
        ({"llm_lams": (0.0, "2")}, TypeError, r"'llm_lams\[1\]' must be a finite real >= 0\. "
                                              r"Got str '2'\."),
        ({"mnist_ks": (0, 2)}, ValueError, r"'mnist_ks\[0\]' must be an int >= 1\. Got 0\."),
        ({"mnist_ks": (4, 2)}, ValueError, r"'mnist_ks' must be a non-empty tuple of increasing "
                                           r"ints >= 1\. Got \(4, 2\)\."),
        ({"mnist_ks": (2, 4.0)}, TypeError, r"'mnist_ks\[1\]' must be an int >= 1\. "
                                            r"Got float 4\.0\."),
    ],
)
def test_bad_profile_fields(change, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(PROFILES["ci"], **change)


def test_counts_that_mean_all_may_be_none():
    """Only the counts of data ("None: all") may be None; a size of a model or a run may not."""
    optional = {f.name for f in dataclasses.fields(Profile) if "None" in str(f.type)}
    assert optional == {"mnist_train", "mnist_test", "cifar_train", "cifar_test", "text_chars"}
    assert dataclasses.replace(PROFILES["ci"], mnist_train=None, text_chars=None).mnist_train \
        is None


# ---- the estimate of benchmarks/bench_gpu.py: the gpu profile fits a free Colab T4 -----------


@pytest.fixture(scope="module")
def bench_gpu():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # its dataclasses look their module up while executing
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["bench_gpu"]


def test_every_notebook_of_the_gpu_profile_fits_a_t4_by_the_estimate(bench_gpu):
    t4 = bench_gpu.GPUS["t4"]
    found = {nb.name[:2]: bench_gpu.estimate(nb, t4) for nb in bench_gpu.notebooks(
        PROFILES["gpu"])}
    assert sorted(found) == [f"0{i}" for i in range(9)]
    for name, e in found.items():
        assert e["total_s"] <= 60 * 60, (name, e)  # five seeds: within the hour
        assert e["peak_gb"] <= 12, (name, e)
    assert found["07"]["tflop"] > 1000  # GPT-2 is counted, not left out


def test_the_estimate_tells_the_profiles_apart(bench_gpu):
    t4, a100 = bench_gpu.GPUS["t4"], bench_gpu.GPUS["a100"]
    paper = {nb.name[:2]: nb for nb in bench_gpu.notebooks(PROFILES["paper"])}
    assert bench_gpu.estimate(paper["07"], t4)["total_s"] > 60 * 60  # too long for a T4 ...
    assert bench_gpu.estimate(paper["07"], t4)["peak_gb"] > 12  # ... and too large
    assert all(bench_gpu.estimate(nb, a100)["peak_gb"] <= 40 for nb in paper.values())
    # a DataLoader collating notebook 06's full batches every epoch would cost hours
    gpu = bench_gpu.notebooks(PROFILES["gpu"], collated_modadd=True)
    assert bench_gpu.estimate(gpu[6], t4)["total_s"] > 60 * 60


def test_the_benchmark_without_a_gpu(bench_gpu, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main([]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # one line: nothing to time here
    assert bench_gpu.main(["--dry-run", "--profile", "gpu"]) == 0
    out = capsys.readouterr().out
    assert "| 07 modular language models |" in out and "not a measurement" in out


def test_llm_model_is_checked_and_the_cpu_profile_fine_tunes_a_small_real_model():
    """GPT-2 small takes about 2 h of fine-tuning on a 2-core CPU (benchmarks/RESULTS.md): the
    cpu profile, which the published book runs with internet, takes the real Pythia-14m."""
    assert profile("cpu").llm_model == "pythia-14m"
    assert {profile(n).llm_model for n in ("ci", "gpu", "paper")} == {"gpt2"}
    with pytest.raises(ValueError, match=r"'llm_model' must be one of \('gpt2', 'pythia-70m', "
                                         r"'pythia-14m'\)\. Got 'gpt3'"):
        dataclasses.replace(profile("ci"), llm_model="gpt3")
    for name in LLM_MODELS:  # every language model of the course can be a profile's
        assert dataclasses.replace(profile("ci"), llm_model=name).llm_model == name
    with pytest.raises(ValueError, match=r"'llm_model' must be one of"):  # names, not aliases
        dataclasses.replace(profile("ci"), llm_model="pythia")
