"""The command line and the experiments behind it, in the ci profile."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import modlib
from modlib.__main__ import main


@pytest.fixture(scope="module")
def mnist_ci(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist")
    with pytest.MonkeyPatch.context() as mp:  # an empty cache: this run trains
        mp.setenv("MODLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert main(["reproduce", "mnist", "--profile", "ci", "--out", str(out), "--quiet"]) == 0
    return out  # how long it takes is measured in benchmarks/, never asserted in a test


@pytest.mark.slow
def test_mnist_ci_meets_its_targets(mnist_ci):
    out = mnist_ci
    r = json.loads((out / "results.json").read_text())
    assert r["experiment"] == "mnist" and r["profile"] == "ci" and r["k"] == 4 and r["lam"] == 20
    assert r["data"] in ("mnist", "mnist-5k-offline")
    assert r["model"] == f"course CNN (MnistCNN, width {modlib.profile('ci').width})"
    base, mod = r["baseline"], r["modular"]
    assert base["clusterability"] <= 1 / 4 + 0.1
    assert mod["clusterability"] >= 0.95
    # little cost, read over the seeds (as notebook 03 does), not on one seed's accuracies
    assert r["summary"]["numbers"]["modular_accuracy_difference"]["mean"] >= -0.05
    assert mod["clusterability_spectral"] >= 0.95
    for run in (base, mod):
        assert {"accuracy", "clusterability", "clusterability_spectral", "layers"} <= set(run)


@pytest.mark.slow
def test_mnist_ci_writes_figures(mnist_ci):
    out = mnist_ci
    for name in ("weights_baseline.png", "weights_modular.png", "curves.png", "ablation.png"):
        assert (out / name).stat().st_size > 5_000


@pytest.mark.slow
def test_mnist_ci_measures_specialization_and_circuits(mnist_ci):
    out = mnist_ci
    r = json.loads((out / "results.json").read_text())
    for run in ("baseline", "modular"):
        m = r[run]
        assert len(m["ablation_drop"]) == 4 and len(m["ablation_drop"][0]) == 10
        # the stored score is the one its own stored drops give
        drop = torch.tensor(m["ablation_drop"])
        assert m["specialization"] == pytest.approx(modlib.interp.specialization(drop), abs=1e-6)
        assert 0 < m["circuit_size"] < 1 and m["circuit_label"] == 0
    # the modular model's circuit for digit 0 lives mostly inside its clusters
    assert r["modular"]["circuit_inside_share"] > r["baseline"]["circuit_inside_share"]


@pytest.mark.slow
def test_mnist_ci_trains_two_seeds_and_summarises_them(mnist_ci):
    r = json.loads((mnist_ci / "results.json").read_text())
    assert r["n_seeds"] == modlib.profile("ci").seeds == 2
    assert [one["seed"] for one in r["seeds"]] == [0, 1]
    first, second = r["seeds"]
    assert first["modular"] == r["modular"] and first["sparse_control"] == r["sparse_control"]
    # each seed is its own initialisation and batches: its numbers differ
    assert first["baseline"]["eval_loss"] != second["baseline"]["eval_loss"]
    numbers = r["summary"]["numbers"]
    assert r["summary"]["n_seeds"] == 2 and "Student-t interval" in r["summary"]["method"]
    acc = numbers["modular_accuracy"]
    values = [one["modular"]["accuracy"] for one in r["seeds"]]
    assert acc["mean"] == pytest.approx(sum(values) / 2) and acc["n"] == 2
    assert acc["low"] <= min(values) <= max(values) <= acc["high"]
    for name in ("modular_accuracy_difference", "modular_circuit_size_ratio",
                 "modular_circuit_size_ratio_pruning", "modular_specialization_above_control",
                 "modular_vs_sparse_control_circuit_size_ratio", "sparse_control_accuracy"):
        assert name in numbers, name
    assert numbers["modular_circuit_size_ratio"]["null"] == 1.0
    assert numbers["modular_accuracy_difference"]["null"] == 0.0
    assert numbers["modular_clusterability"]["low"] > 0.9  # two seeds, still a tight interval


@pytest.mark.slow
def test_mnist_ci_sparse_control_is_as_sparse_as_the_modular_model_without_modules(mnist_ci):
    r = json.loads((mnist_ci / "results.json").read_text())
    for one in r["seeds"]:
        base, mod, sparse = one["baseline"], one["modular"], one["sparse_control"]
        assert mod["near_zero_share"] > base["near_zero_share"] + 0.3  # the loss sparsifies
        assert sparse["near_zero_share"] == pytest.approx(mod["near_zero_share"], abs=0.05)
        assert sparse["clusterability"] < 0.4 < 0.9 < mod["clusterability"]  # no modules
        for run in (base, mod, sparse):  # both circuit measures, on the same layers
            assert run["circuit_layers"] == ["fc2", "fc3"]
            assert 0 < run["circuit_size_pruning"] < 1 and 0 < run["circuit_size"] < 1
    assert (mnist_ci / "sparse_control.pt").stat().st_size > 1_000


@pytest.mark.slow
def test_paper_mlp_and_cifar_keys(tmp_path):
    result = modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False)
    assert result.results["layers"] == ["fc2"]
    assert result.modular.metrics["clusterability"] > 0.9


@pytest.mark.slow
def test_help_documents_results_json():
    proc = subprocess.run([sys.executable, "-m", "modlib", "reproduce", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for word in ("results.json", "clusterability_spectral", "--profile", "--model", "--lam",
                 "baseline.pt", "modular.pt"):
        assert word in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name,metric", [("cifar", "accuracy"), ("modadd", "accuracy"),
                                         ("llm", "perplexity")])
def test_other_experiments_run_in_the_ci_profile(name, metric, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "cache"))
    titles = {}
    savefig = Figure.savefig

    def record(fig, path, **kwargs):
        titles[Path(path).name] = fig.get_suptitle()
        return savefig(fig, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    result = modlib.reproduce(name, profile="ci", seeds=1, out=tmp_path / name, progress=False)
    r = json.loads((tmp_path / name / "results.json").read_text())
    assert r == json.loads(json.dumps(result.results))
    used = f"{r['model']} on {r['data']}"  # every figure says which model and data were used
    assert set(titles) >= {"weights_baseline.png", "weights_modular.png", "curves.png"}
    assert all(used in title for title in titles.values()), titles
    for run in ("baseline", "modular"):
        assert metric in r[run] and 0 <= r[run]["clusterability"] <= 1
    assert r["modular"]["clusterability"] > r["baseline"]["clusterability"]
    assert r["seeds"][0]["modular"] == r["modular"] and r["summary"]["n_seeds"] == 1
    assert ("sparse_control" in r) is (name == "cifar")  # the image experiments have one
    if name == "cifar":
        assert r["paper"]["modular"]["accuracy"] == 0.660  # the authors' number, beside ours
        assert "standin" in r["data"] or r["data"] == "cifar10"
        assert r["model"] == "authors' CIFAR CNN (PaperCifarCNN)"
    if name == "modadd":  # the ci profile is small, but both models grok
        p = modlib.profile("ci").modadd_p
        assert r["model"] == f"one-layer transformer (ModAddTransformer, p={p})"
        assert r["data"] == f"modular-addition-p{p}"
        assert min(r["baseline"]["accuracy"], r["modular"]["accuracy"]) >= 0.9
        assert r["modular"]["clusterability"] >= 0.9
    if name == "llm":
        assert "loss" in r["modular"] and "eval_loss" not in r["modular"]
        assert r["data"] in ("wikitext-2", "pydoc-topics-offline")
        assert r["model"] in ("gpt2", "tiny GPT-2 stand-in (offline)")
        stand_in = r["model"] != "gpt2"  # the stand-in's own tokenizer is bytes
        assert r["tokenizer"] == ({"name": "bytes", "vocab_size": 257} if stand_in
                                  else {"name": "gpt2", "vocab_size": 50257})


@pytest.mark.slow
def test_every_run_sees_the_same_batches():
    # two runs with the same λ from the same initialisation must be identical
    a, b = modlib.sweep("mnist", lams=[0.0, 0.0], profile="ci", seeds=1, progress=False)
    assert a["accuracy"] == b["accuracy"] and a["clusterability"] == b["clusterability"]


@pytest.mark.parametrize(("model", "profile_name", "expected"), [
    (None, "ci", "gpt2"), (None, "cpu", "pythia-14m"), ("pythia", "ci", "pythia-70m"),
    ("pythia-70m", "cpu", "pythia-70m"), ("pythia-14m", "ci", "pythia-14m"),
    ("gpt2", "cpu", "gpt2"),
])
def test_llm_model_names_map_to_the_pretrained_model(monkeypatch, model, profile_name, expected):
    """Which pretrained model reproduce("llm") asks for: the option, else the profile's."""
    import modlib.training.zoo

    asked = []

    def stop(name, **kwargs):
        asked.append(name)
        raise RuntimeError("stop here")

    monkeypatch.setattr(modlib.zoo, "pretrained", stop)
    with pytest.raises(RuntimeError, match="stop here"):
        modlib.reproduce("llm", profile=profile_name, model=model, progress=False)
    assert asked == [expected]


# Bad arguments are refused before any work: no set-up, no training, no folder created.

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
ROOT_WRITES_ANYWHERE = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                                          reason="permissions do not bind the superuser")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a set-up or a training run starts."""
    import modlib.course.experiments as experiments

    def started(*args, **kwargs):
        pytest.fail("work started before the arguments were checked")

    monkeypatch.setattr(experiments, "fit", started)
    monkeypatch.setattr(experiments, "_setup", started)


def _existing_file(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    return tmp_path / "taken"


def _under_a_file(tmp_path):
    return _existing_file(tmp_path) / "results"


def _under_read_only(tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    return tmp_path / "locked" / "results"


REPRODUCE_BAD = [  # (arguments, environment, exception, message)
    pytest.param(dict(name="mnist", seeds=0), {}, ValueError,
                 r"'seeds' must be an int >= 1. Got 0\.", id="seeds-0"),
    pytest.param(dict(name="mnist", seeds="3"), {}, TypeError,
                 r"'seeds' must be an int >= 1. Got str '3'\.", id="seeds-str"),
    pytest.param(dict(name="xor"), {}, ValueError,
                 r"'name' must be one of \('mnist', 'cifar', 'modadd', 'llm'\). Got 'xor'\.",
                 id="name"),
    pytest.param(dict(name=None), {}, ValueError, r"'name' must be one of .*\. Got None\.",
                 id="name-none"),
    pytest.param(dict(name="cifar", model="paper"), {}, ValueError,
                 r"'model' for cifar must be None \(cifar has one model\). Got 'paper'",
                 id="model"),
    pytest.param(dict(name="llm", model="paper"), {}, ValueError,
                 r"'model' for llm must be one of "
                 r"\('gpt2', 'pythia', 'pythia-70m', 'pythia-14m'\)",
                 id="model-llm"),
    pytest.param(dict(name="mnist", k=0), {}, ValueError, r"'k' must be an int >= 1. Got 0\.",
                 id="k-0"),
    pytest.param(dict(name="mnist", k=2.0), {}, TypeError,
                 r"'k' must be an int >= 1. Got float 2.0\.", id="k-float"),
    pytest.param(dict(name="mnist", k=True), {}, TypeError,
                 r"'k' must be an int >= 1. Got bool True\.", id="k-bool"),
    pytest.param(dict(name="mnist", lam=-2.0), {}, ValueError,
                 r"'lam' must be a finite real >= 0. Got -2.0\.", id="lam-neg"),
    pytest.param(dict(name="mnist", lam=float("nan")), {}, ValueError,
                 r"'lam' must be a finite real >= 0. Got nan\.", id="lam-nan"),
    pytest.param(dict(name="mnist", lam=float("inf")), {}, ValueError,
                 r"'lam' must be a finite real >= 0. Got inf\.", id="lam-inf"),
    pytest.param(dict(name="mnist", lam="20"), {}, TypeError,
                 r"'lam' must be a finite real >= 0. Got str '20'\.", id="lam-str"),
    pytest.param(dict(name="mnist", seed=1.5), {}, TypeError, r"'seed' must be an int. Got float",
                 id="seed"),
    pytest.param(dict(name="mnist", method="magic"), {}, ValueError,
                 r"'method' must be one of \('clusterability', 'bimt'\). Got 'magic'\.",
                 id="method"),
    pytest.param(dict(name="mnist", method=None), {}, TypeError,
                 r"'method' must be one of \('clusterability', 'bimt'\). Got None\.",
                 id="method-none"),
    pytest.param(dict(name="llm", method="bimt"), {}, ValueError,
                 r"method='bimt' is available for \['mnist', 'modadd'\], not 'llm'\.",
                 id="method-llm"),
    pytest.param(dict(name="mnist", bimt_lam=0.1), {}, ValueError,
                 r"'bimt_lam' is for method='bimt'; method is 'clusterability'", id="bimt-lam"),
    pytest.param(dict(name="modadd", method="bimt", bimt_lam=float("nan")), {}, ValueError,
                 r"'bimt_lam' must be a finite real >= 0. Got nan\.", id="bimt-lam-nan"),
    pytest.param(dict(name="mnist", progress="yes"), {}, TypeError,
                 r"'progress' must be True or False. Got str 'yes'\.", id="progress"),
    pytest.param(dict(name="mnist", profile="huge"), {}, ValueError,
                 r"'profile' must be one of \('ci', 'cpu', 'gpu', 'paper'\). Got 'huge'\.",
                 id="profile"),
    pytest.param(dict(name="mnist", profile=3), {}, TypeError,
                 r"'profile' must be one of .*, a Profile or None. Got 3\.", id="profile-int"),
    pytest.param(dict(name="mnist"), {"MODLIB_PROFILE": "huge"}, ValueError,
                 r"environment variable MODLIB_PROFILE must be one of", id="profile-env"),
    pytest.param(dict(name="mnist", device="gpu0"), {}, ValueError,
                 r"'device' must name a torch device such as 'cpu' or 'cuda'. Got 'gpu0'\.",
                 id="device"),
    pytest.param(dict(name="mnist", device="meta"), {}, ValueError,
                 r"'device' must be a CPU, CUDA or MPS device. Got 'meta'\.", id="device-meta"),
    pytest.param(dict(name="mnist", device="cuda"), {}, ValueError,
                 r"'device' is CUDA, but no CUDA GPU is available here", marks=NO_CUDA,
                 id="device-cuda"),
    pytest.param(dict(name="mnist", out=_existing_file), {}, ValueError,
                 r"'out' must be a folder. Got '.*taken', an existing file\.", id="out-file"),
    pytest.param(dict(name="mnist", out=_under_a_file), {}, ValueError,
                 r"'out' must be a folder that can be created and written to. "
                 r"Got '.*taken/results': ", id="out-under-file"),
    pytest.param(dict(name="mnist", out=_under_read_only), {}, ValueError,
                 r"'out' must be a folder that can be created and written to. "
                 r"Got '.*locked/results': Permission denied", marks=ROOT_WRITES_ANYWHERE,
                 id="out-read-only"),
    pytest.param(dict(name="mnist", out=""), {}, ValueError,
                 r"'out' must be a folder path. Got an empty string\.", id="out-empty"),
    pytest.param(dict(name="mnist", out=3), {}, TypeError,
                 r"'out' must be a folder path \(a str or os.PathLike\). Got 3\.", id="out-int"),
]


@pytest.mark.parametrize("kwargs,env,error,match", REPRODUCE_BAD)
def test_reproduce_refuses_bad_arguments_before_any_work(kwargs, env, error, match, tmp_path,
                                                         monkeypatch, no_work):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kwargs = {"out": tmp_path / "fresh", "progress": False, **kwargs}
    if callable(kwargs["out"]):
        kwargs["out"] = kwargs["out"](tmp_path)
    with pytest.raises(error, match=match):
        modlib.reproduce(**kwargs)
    assert not (tmp_path / "fresh").exists()  # the folder is checked last, by creating it


SWEEP_BAD = [  # (arguments, exception, message)
    pytest.param(dict(name="mnist", seeds=0), ValueError, r"'seeds' must be an int >= 1. Got 0",
                 id="seeds-0"),
    pytest.param(dict(name="mnist", seeds=2.0), TypeError,
                 r"'seeds' must be an int >= 1. Got float 2.0", id="seeds-float"),
    pytest.param(dict(name="mnistt"), ValueError,
                 r"'name' must be one of \('mnist', 'cifar', 'modadd', 'llm'\). Got 'mnistt'\.",
                 id="name"),
    pytest.param(dict(name="cifar", model="paper"), ValueError,
                 r"'model' for cifar must be None", id="model"),
    pytest.param(dict(name="mnist", ks=[]), ValueError,
                 r"'ks' must be a non-empty sequence of ints >= 1. Got list \[\]\.", id="ks-empty"),
    pytest.param(dict(name="mnist", ks=4), TypeError,
                 r"'ks' must be a non-empty sequence of ints >= 1. Got 4\.", id="ks-scalar"),
    pytest.param(dict(name="mnist", ks=[2, 0]), ValueError, r"'ks\[1\]' must be an int >= 1. "
                 r"Got 0\.", id="ks-0"),
    pytest.param(dict(name="mnist", ks=[2.5]), TypeError,
                 r"'ks\[0\]' must be an int >= 1. Got float 2.5\.", id="ks-float"),
    pytest.param(dict(name="mnist", lams=()), ValueError,
                 r"'lams' must be a non-empty sequence of finite reals >= 0. Got tuple \(\)\.",
                 id="lams-empty"),
    pytest.param(dict(name="mnist", lams=20.0), TypeError,
                 r"'lams' must be a non-empty sequence of finite reals >= 0. Got float 20.0\.",
                 id="lams-scalar"),
    pytest.param(dict(name="mnist", lams="20"), TypeError,
                 r"'lams' must be a non-empty sequence of finite reals >= 0. Got str '20'\.",
                 id="lams-str"),
    pytest.param(dict(name="mnist", lams=[1.0, float("nan")]), ValueError,
                 r"'lams\[1\]' must be a finite real >= 0. Got nan\.", id="lams-nan"),
    pytest.param(dict(name="mnist", lams=[float("inf")]), ValueError,
                 r"'lams\[0\]' must be a finite real >= 0. Got inf\.", id="lams-inf"),
    pytest.param(dict(name="mnist", lams=[-1.0]), ValueError,
                 r"'lams\[0\]' must be a finite real >= 0. Got -1.0\.", id="lams-neg"),
    pytest.param(dict(name="mnist", seed="0"), TypeError, r"'seed' must be an int. Got str '0'",
                 id="seed"),
    pytest.param(dict(name="mnist", progress=1), TypeError,
                 r"'progress' must be True or False. Got 1\.", id="progress"),
    pytest.param(dict(name="mnist", profile="huge"), ValueError,
                 r"'profile' must be one of \('ci', 'cpu', 'gpu', 'paper'\). Got 'huge'\.",
                 id="profile"),
    pytest.param(dict(name="mnist", device="gpu0"), ValueError,
                 r"'device' must name a torch device", id="device"),
]


@pytest.mark.parametrize("kwargs,error,match", SWEEP_BAD)
def test_sweep_refuses_bad_arguments_before_any_work(kwargs, error, match, no_work):
    with pytest.raises(error, match=match):
        modlib.sweep(**{"progress": False, **kwargs})


# A finished training run is never lost.

@pytest.fixture(scope="module")
def llm_cache(tmp_path_factory):
    """One cache for this module's language-model runs: the offline stand-in is made once."""
    return tmp_path_factory.mktemp("cache")


LLM_KEYS = {"experiment", "profile", "model", "data", "tokenizer", "k", "lam", "seed", "n_seeds",
            "seconds", "device", "processes", "layers", "baseline", "modular", "seeds"}


def _record_trained(monkeypatch):
    """Record each model that fit() trained, as its state dict right after training."""
    import modlib.course.experiments as experiments

    trained, fit = [], experiments.fit

    def recording_fit(model, *args, **kwargs):
        history = fit(model, *args, **kwargs)
        trained.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return history

    monkeypatch.setattr(experiments, "fit", recording_fit)
    return trained


@pytest.mark.parametrize("step,words,complete", [
    ("measure", "analysis of seed 0", False),
    pytest.param("_figures", "figures", True, marks=pytest.mark.slow),
])
def test_a_failure_after_training_keeps_the_models_and_results(step, words, complete, tmp_path,
                                                               monkeypatch, llm_cache):
    import modlib.course.experiments as experiments

    monkeypatch.setenv("MODLIB_CACHE", str(llm_cache))
    trained = _record_trained(monkeypatch)
    boom = OSError("disk on fire")

    def fail(*args, **kwargs):
        raise boom

    monkeypatch.setattr(experiments, step, fail)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError) as info:
        modlib.reproduce("llm", profile="ci", k=2, lam=5.0, seeds=1, out=out, progress=False,
                         cache=False)
    message = str(info.value)
    assert f"training finished and was saved to {out} " in message
    assert "(baseline.pt, modular.pt, results.json)" in message
    assert f"the {words} failed: OSError: disk on fire" in message
    assert info.value.__cause__ is boom
    assert len(trained) == 2  # the baseline, then the modular model
    for run, state in zip(("baseline", "modular"), trained, strict=True):
        saved = torch.load(out / f"{run}.pt")
        assert saved.keys() == state.keys()
        assert all(torch.equal(saved[key], state[key]) for key in state)
    r = json.loads((out / "results.json").read_text())
    assert set(r) == LLM_KEYS | ({"summary"} if complete else set())
    assert (r["experiment"], r["k"], r["lam"]) == ("llm", 2, 5.0)
    assert ("clusterability" in r["modular"]) is complete  # measured before the figures failed
    assert not list(out.glob(".*"))  # no probe or half-written file left behind


@pytest.mark.slow
def test_an_interrupted_analysis_of_mnist_keeps_the_models(tmp_path, monkeypatch):
    """The cluster ablation and circuits (image classifiers) fail: the models are on disk."""
    import modlib.course.experiments as experiments

    def fail(*args, **kwargs):
        raise KeyError("no circuit")

    monkeypatch.setattr(experiments, "_interpret", fail)
    with pytest.raises(RuntimeError, match=r"saved to .*mnist \(baseline.pt, modular.pt, "
                                           r"sparse_control.pt, results.json\); the analysis of "
                                           r"seed 0 failed: KeyError"):
        modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, out=tmp_path / "mnist",
                         progress=False, cache=False)  # trained here, not read from the cache
    from modlib.training.models import PaperMLP
    from modlib.training.zoo import LABELS

    PaperMLP().load_state_dict(torch.load(tmp_path / "mnist" / "modular.pt"))  # strict: all keys
    r = json.loads((tmp_path / "mnist" / "results.json").read_text())
    assert r["model"] == LABELS["mnist-mlp"] and r["modular"] == {}


def test_a_successful_run_saves_models_and_the_same_results(tmp_path, monkeypatch, llm_cache):
    monkeypatch.setenv("MODLIB_CACHE", str(llm_cache))
    out = tmp_path / "run"
    result = modlib.reproduce("llm", profile="ci", k=2, seeds=1, out=out, progress=False)
    r = json.loads((out / "results.json").read_text())
    assert set(r) == LLM_KEYS | {"summary"} and r == json.loads(json.dumps(result.results))
    assert r["seeds"] == [{"seed": 0, "baseline": r["baseline"], "modular": r["modular"]}]
    for run in ("baseline", "modular"):
        saved = torch.load(out / f"{run}.pt")
        model = getattr(result, run).model
        assert all(torch.equal(saved[k], v.cpu()) for k, v in model.state_dict().items())
        assert {"perplexity", "loss", "clusterability", "layers"} <= set(r[run])
    assert not list(out.glob(".*"))


@pytest.mark.slow
def test_sweep_builds_partitions_for_each_k(monkeypatch, llm_cache):
    monkeypatch.setenv("MODLIB_CACHE", str(llm_cache))
    rows = modlib.sweep("llm", ks=[2, 4], lams=[5.0], profile="ci", seeds=1, progress=False)
    assert [(row["k"], row["lam"]) for row in rows] == [(2, 5.0), (4, 5.0)]
    # each run's training partitions have its own k: their chance level is about 1/k
    assert rows[0]["chance_level"] == pytest.approx(1 / 2, abs=0.05)
    assert rows[1]["chance_level"] == pytest.approx(1 / 4, abs=0.05)


SUMMARIZE_BAD = [  # (call, exception, message): the summaries of several seeds
    pytest.param(lambda: modlib.experiments.summarize([]), ValueError, r"'seeds' is empty",
                 id="summarize-empty"),
    pytest.param(lambda: modlib.experiments.summarize({"baseline": {}}), TypeError,
                 r"'seeds' must be a sequence of per-seed results \(dicts\). Got dict",
                 id="summarize-dict"),
    pytest.param(lambda: modlib.experiments.summarize([{"baseline": {"accuracy": 0.9}}]),
                 ValueError, r"'seeds\[0\]' must hold the 'modular' metrics, with 'accuracy'",
                 id="summarize-no-modular"),
    pytest.param(lambda: modlib.experiments.summarize([3]), TypeError,
                 r"'seeds\[0\]' must be a dict with 'baseline' and 'modular'", id="summarize-int"),
    pytest.param(lambda: modlib.experiments.summarize([{}], metric="loss"), ValueError,
                 r"'metric' must be one of \('accuracy', 'perplexity'\). Got 'loss'",
                 id="summarize-metric"),
    pytest.param(lambda: modlib.core.stats.group_seeds([]), ValueError, r"'rows' is empty",
                 id="group-empty"),
    pytest.param(lambda: modlib.core.stats.group_seeds("rows"), TypeError,
                 r"'rows' must be a list of dicts", id="group-str"),
    pytest.param(lambda: modlib.core.stats.group_seeds([{"k": 4, "lam": 1.0}], ["accuracy"]),
                 ValueError, r"'rows\[0\]' must hold the keys \['k', 'lam', 'accuracy'\]. "
                 r"Missing: \['accuracy'\]", id="group-missing"),
    pytest.param(lambda: modlib.core.stats.group_seeds([{"k": 4, "lam": 1.0}], "accuracy"),
                 TypeError, r"'keys' must be a non-empty sequence of str. Got str",
                 id="group-keys-str"),
    pytest.param(lambda: modlib.core.stats.group_seeds([{"k": 4, "lam": 1.0}], [3]),
                 TypeError, r"'keys\[0\]' must be a str", id="group-keys-int"),
]


@pytest.mark.parametrize("call,error,match", SUMMARIZE_BAD)
def test_summaries_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _one_seed(seed, base_acc, mod_acc, base_circuit=0.1, mod_circuit=0.05):
    run = {"clusterability": 0.25, "clusterability_spectral": 0.3, "chance_level_spectral": 0.26,
           "specialization": 0.5, "specialization_control": 0.45}
    return {"seed": seed,
            "baseline": {**run, "accuracy": base_acc, "circuit_size": base_circuit,
                         "circuit_size_pruning": None},
            "modular": {**run, "clusterability": 0.99, "accuracy": mod_acc,
                        "circuit_size": mod_circuit, "circuit_size_pruning": None}}


def test_summarize_calls_a_finding_only_when_the_interval_excludes_no_effect():
    clear = modlib.experiments.summarize([_one_seed(s, 0.97, 0.95 + s / 1000) for s in range(3)])
    noisy = modlib.experiments.summarize([_one_seed(0, 0.97, 0.99), _one_seed(1, 0.97, 0.94),
                                          _one_seed(2, 0.97, 0.96)])
    diff = clear["numbers"]["modular_accuracy_difference"]
    assert diff["finding"] and diff["high"] < 0 and diff["null"] == 0.0
    assert not noisy["numbers"]["modular_accuracy_difference"]["finding"]
    ratio = clear["numbers"]["modular_circuit_size_ratio"]
    assert ratio["mean"] == pytest.approx(0.5) and ratio["null"] == 1.0
    assert ratio["low"] == ratio["high"] == pytest.approx(0.5)  # no spread: a zero-width interval
    assert ratio["finding"]
    # a number no seed measured is left out, not summarised as NaN
    assert "modular_circuit_size_ratio_pruning" not in clear["numbers"]
    assert clear["seeds"] == [0, 1, 2] and clear["n_seeds"] == 3


def test_summarize_leaves_out_undefined_values():
    seeds = [_one_seed(s, 0.97, 0.96) for s in range(3)]
    seeds[1]["modular"]["specialization"] = float("nan")  # nothing to score in that seed
    iv = modlib.experiments.summarize(seeds)["numbers"]["modular_specialization_above_control"]
    assert iv["n"] == 2 and iv["mean"] == pytest.approx(0.05)


def test_group_seeds_gives_one_interval_per_grid_point():
    rows = [{"seed": s, "k": k, "lam": lam, "accuracy": 0.9 + s / 100 + lam / 1000}
            for s in range(3) for k in (2, 4) for lam in (0.0, 20.0)]
    groups = modlib.core.stats.group_seeds(rows, ["accuracy"])
    assert [(g["k"], g["lam"], g["n_seeds"]) for g in groups] == [
        (2, 0.0, 3), (2, 20.0, 3), (4, 0.0, 3), (4, 20.0, 3)]
    assert groups[1]["accuracy"].mean == pytest.approx(0.93)
    assert groups[1]["accuracy"].low < 0.92 and groups[1]["accuracy"].high > 0.94


def _summary(**numbers):
    from modlib.core.stats import mean_interval

    nulls = {"modular_clusterability": None}
    return {"summary": {"numbers": {
        name: mean_interval(values, null=nulls.get(name, 1.0 if "ratio" in name else 0.0)
                            ).to_dict() for name, values in numbers.items()}}}


@pytest.mark.parametrize("name,values,verdict", [
    ("modular_clusterability", [0.99, 0.995, 0.998], "holds"),
    ("modular_clusterability", [0.7, 0.95, 0.99], "not shown"),
    ("modular_accuracy_difference", [-0.02, 0.01, 0.0], "holds"),  # no measurable cost
    ("modular_accuracy_difference", [-0.005, -0.006, -0.004], "holds"),  # measurable, small
    ("modular_accuracy_difference", [-0.05, -0.06, -0.055], "contradicted"),
    ("modular_circuit_size_ratio", [0.4, 0.5, 0.45], "holds"),
    ("modular_circuit_size_ratio", [0.4, 1.5, 0.9], "not shown"),
    ("modular_circuit_size_ratio", [1.4, 1.5, 1.45], "reversed"),
    ("modular_circuit_size_ratio", [0.5], "not shown"),  # one seed: no interval
    ("modular_specialization_above_control", [0.2, 0.25, 0.3], "holds"),
    ("modular_specialization_above_control", [-0.2, -0.25, -0.3], "reversed"),
])
def test_claims_read_each_number_against_its_interval(name, values, verdict):
    (claim,) = modlib.experiments.claims(_summary(**{name: values}))
    assert claim.number == name and claim.verdict == verdict
    assert str(claim).strip().startswith(verdict) and claim.value.format() in str(claim)


def test_little_cost_in_perplexity_is_relative_to_the_baseline():
    small = _summary(baseline_perplexity=[20.0, 21.0, 19.0],
                     modular_perplexity_difference=[0.5, 0.6, 0.55])
    large = _summary(baseline_perplexity=[5.0, 5.1, 4.9],
                     modular_perplexity_difference=[0.5, 0.6, 0.55])
    assert [c.verdict for c in modlib.experiments.claims(small)] == ["holds"]
    assert [c.verdict for c in modlib.experiments.claims(large)] == ["contradicted"]


@pytest.mark.parametrize("results,error,match", [
    ([], TypeError, r"'results' must be a dict, as reproduce\(...\).results. Got list"),
    ({"experiment": "mnist"}, ValueError,
     r"'results' must hold a 'summary' with 'numbers', as reproduce writes. "
     r"Got the keys \['experiment'\]"),
])
def test_claims_refuse_results_without_a_summary(results, error, match):
    with pytest.raises(error, match=match):
        modlib.experiments.claims(results)


@pytest.mark.slow
def test_an_identical_run_is_reused_from_the_cache(tmp_path, monkeypatch):
    import modlib.course.experiments as experiments

    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "cache"))
    first = modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False)
    (stored,) = (tmp_path / "cache" / "runs").glob("mnist-*.pt")

    def no_training(*args, **kwargs):
        pytest.fail("an identical run was trained again")

    monkeypatch.setattr(experiments, "fit", no_training)
    again = modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False,
                             out=tmp_path / "out")
    assert again.results == first.results
    for run in ("baseline", "modular", "sparse_control"):
        a, b = getattr(first, run), getattr(again, run)
        assert all(torch.equal(v, b.model.state_dict()[key])
                   for key, v in a.model.state_dict().items())
        assert a.history.epochs == b.history.epochs
    assert again.partitions.keys() == first.partitions.keys()
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == first.results
    assert (tmp_path / "out" / "sparse_control.pt").exists()
    # other arguments, cache=False, or changed library source: trained again
    for kwargs in (dict(seed=1), dict(cache=False)):
        with pytest.raises(pytest.fail.Exception, match="trained again"):
            modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False,
                             **kwargs)
    monkeypatch.setattr(experiments, "_source_hash", lambda: "edited")
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False)
    monkeypatch.undo()
    # a damaged cache file is not an error: a warning, and the run is trained again
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "cache"))
    stored.write_bytes(b"not a run")
    with pytest.warns(UserWarning, match="cached run"):
        modlib.reproduce("mnist", profile="ci", model="paper", seeds=1, progress=False)
    assert stored.stat().st_size > 1_000  # replaced by the new run


def test_said_once_prints_each_line_once_even_when_the_body_fails(capsys):
    seen = set()
    with modlib.experiments.said_once(seen):
        print("modlib.data: offline")
        print("first seed only")
    with pytest.raises(KeyError), modlib.experiments.said_once(seen):
        print("modlib.data: offline")
        print("said before the failure")
        raise KeyError("x")
    assert capsys.readouterr().out.splitlines() == [
        "modlib.data: offline", "first seed only", "said before the failure"]
    with pytest.raises(TypeError, match="'seen' must be a set of the lines already printed"):
        with modlib.experiments.said_once([]):
            pass
