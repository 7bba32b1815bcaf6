"""The command line and the experiments behind it, in the ci profile."""

import json
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
@pytest.mark.parametrize("argv,match", [
    (["reproduce", "imagenet"], "argument experiment: invalid choice: 'imagenet'"),
    (["reproduce", "mnist", "--k", "0"], "--k must be >= 1, got 0"),
    (["reproduce", "mnist", "--lam", "-1"], "--lam must be >= 0, got -1.0"),
    (["reproduce", "cifar", "--model", "paper"], "--model paper does not apply to cifar"),
    (["reproduce", "mnist", "--model", "pythia"], "--model pythia does not apply to mnist"),
    (["reproduce", "mnist", "--profile", "huge"], "argument --profile: invalid choice"),
])
def test_bad_flags_exit_nonzero_with_one_line(argv, match):
    proc = subprocess.run([sys.executable, "-m", "modlib", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_help_documents_results_json():
    proc = subprocess.run([sys.executable, "-m", "modlib", "reproduce", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for word in ("results.json", "clusterability_spectral", "--profile", "--model", "--lam"):
        assert word in proc.stdout


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="mnist", k=0), r"'k' must be an int >= 1. Got 0"),
    (dict(name="mnist", lam=-2.0), r"'lam' must be a finite real >= 0. Got -2.0"),
    (dict(name="xor"), r"'name' must be one of \('mnist', 'cifar', 'modadd', 'llm'\)"),
    (dict(name="cifar", model="paper"),
     r"'model' for cifar must be None \(cifar has one model\). Got 'paper'"),
    (dict(name="llm", model="paper"),
     r"'model' for llm must be one of \('gpt2', 'pythia', 'pythia-70m', 'pythia-14m'\)"),
    (dict(name="mnist", device="gpu0"), r"'device' must name a torch device"),
    pytest.param(dict(name="mnist", device="cuda"), r"no CUDA GPU is available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_reproduce_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        modlib.reproduce(**kwargs)


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
