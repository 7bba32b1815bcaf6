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
    assert base["accuracy"] - mod["accuracy"] <= 0.02
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
def test_paper_mlp_and_cifar_keys(tmp_path):
    result = modlib.reproduce("mnist", profile="ci", model="paper", progress=False)
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
    result = modlib.reproduce(name, profile="ci", out=tmp_path / name, progress=False)
    r = json.loads((tmp_path / name / "results.json").read_text())
    assert r == json.loads(json.dumps(result.results))
    used = f"{r['model']} on {r['data']}"  # every figure says which model and data were used
    assert set(titles) >= {"weights_baseline.png", "weights_modular.png", "curves.png"}
    assert all(used in title for title in titles.values()), titles
    for run in ("baseline", "modular"):
        assert metric in r[run] and 0 <= r[run]["clusterability"] <= 1
    assert r["modular"]["clusterability"] > r["baseline"]["clusterability"]
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
    a, b = modlib.sweep("mnist", lams=[0.0, 0.0], profile="ci", progress=False)
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


LLM_KEYS = {"experiment", "profile", "model", "data", "tokenizer", "k", "lam", "seed", "seconds",
            "device", "processes", "layers", "baseline", "modular"}


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
    ("measure", "analysis", False),
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
        modlib.reproduce("llm", profile="ci", k=2, lam=5.0, out=out, progress=False)
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
    assert set(r) == LLM_KEYS
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
                                           r"results.json\); the analysis failed: KeyError"):
        modlib.reproduce("mnist", profile="ci", model="paper", out=tmp_path / "mnist",
                         progress=False)
    from modlib.training.models import PaperMLP
    from modlib.training.zoo import LABELS

    PaperMLP().load_state_dict(torch.load(tmp_path / "mnist" / "modular.pt"))  # strict: all keys
    r = json.loads((tmp_path / "mnist" / "results.json").read_text())
    assert r["model"] == LABELS["mnist-mlp"] and r["modular"] == {}


def test_a_successful_run_saves_models_and_the_same_results(tmp_path, monkeypatch, llm_cache):
    monkeypatch.setenv("MODLIB_CACHE", str(llm_cache))
    out = tmp_path / "run"
    result = modlib.reproduce("llm", profile="ci", k=2, out=out, progress=False)
    r = json.loads((out / "results.json").read_text())
    assert set(r) == LLM_KEYS and r == json.loads(json.dumps(result.results))
    for run in ("baseline", "modular"):
        saved = torch.load(out / f"{run}.pt")
        model = getattr(result, run).model
        assert all(torch.equal(saved[k], v.cpu()) for k, v in model.state_dict().items())
        assert {"perplexity", "loss", "clusterability", "layers"} <= set(r[run])
    assert not list(out.glob(".*"))


@pytest.mark.slow
def test_sweep_builds_partitions_for_each_k(monkeypatch, llm_cache):
    monkeypatch.setenv("MODLIB_CACHE", str(llm_cache))
    rows = modlib.sweep("llm", ks=[2, 4], lams=[5.0], profile="ci", progress=False)
    assert [(row["k"], row["lam"]) for row in rows] == [(2, 5.0), (4, 5.0)]
    # each run's training partitions have its own k: their chance level is about 1/k
    assert rows[0]["chance_level"] == pytest.approx(1 / 2, abs=0.05)
    assert rows[1]["chance_level"] == pytest.approx(1 / 4, abs=0.05)
