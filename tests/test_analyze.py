"""``modlib.course.analyze`` and ``python -m modlib analyze``: any model, each layer scored.

Every kind of model it takes, offline and on tiny models: a module saved with
``torch.save(model)`` (the course's MnistCNN and the shared test nets), a torchvision name
(randomly initialised), a Hugging Face folder and Hub id from ``tests/hub_fixture.py`` (the real
on-disk format). The shuffled-weights p-value tells a planted-module layer from a random one.
The command line's refusals (status 2, one line) are in ``tests/test_cli.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import modlib  # noqa: E402
import modlib.course.analyze as analyze  # noqa: E402
from modlib.__main__ import main  # noqa: E402
from modlib.core.toy import planted_matrix  # noqa: E402
from modlib.course.analyze import (  # noqa: E402
    LayerReport,
    ModelAnalysis,
    analyze_model,
    load_any,
    out_folder,
    plot_analysis,
    save_analysis,
)
from modlib.training.models import MnistCNN  # noqa: E402
from tests.badinput import assert_every_name_has_a_row, assert_refused, row_ids  # noqa: E402
from tests.nets import ConvNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "shape", "clusterability", "chance_level", "excess", "p_value", "null"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def planted_net() -> nn.Sequential:
    """Layer '0': 4 planted, hidden modules (60, 40); layer '2': random weights (40, 60)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 60), nn.ReLU(), nn.Linear(60, 40))
    with torch.no_grad():
        net[0].weight.copy_(planted_matrix(60, 40, 4, noise=0.3, seed=0).W)
    return net


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- the library ----------------------------------------------------------------------------

def test_planted_modules_are_significant_and_random_weights_are_not():
    result = analyze_model(planted_net(), k=4, n_shuffles=19, progress=False)
    planted, random = result.layers
    assert (planted.name, planted.shape, random.name, random.shape) == ("0", (60, 40),
                                                                       "2", (40, 60))
    assert planted.p_value == pytest.approx(1 / 20)  # the smallest p-value of 19 shuffles
    assert planted.excess > 0.4 and planted.clusterability > max(planted.null)
    assert random.p_value > 0.2 and random.excess < 0.2
    for r in result.layers:
        assert r.excess == pytest.approx(r.clusterability - r.chance_level)
        assert r.chance_level == pytest.approx(modlib.chance_level(r.partition))
        assert len(r.null) == 19 and r.partition.shape == r.shape


def test_the_same_seed_gives_the_same_report_and_no_shuffles_no_p_value():
    a = analyze_model(planted_net(), n_shuffles=3, seed=1, progress=False)
    b = analyze_model(planted_net(), n_shuffles=3, seed=1, progress=False)
    assert a.layers == b.layers
    none = analyze_model(planted_net(), n_shuffles=0, progress=False)
    assert [r.p_value for r in none.layers] == [None, None] and none.layers[0].null == []
    assert none.layers[0].clusterability == pytest.approx(
        analyze_model(planted_net(), n_shuffles=3, progress=False).layers[0].clusterability)


def test_the_scales_null_passes_planted_modules_and_reports_itself(tmp_path):
    shuffled = analyze_model(planted_net(), n_shuffles=19, progress=False)
    scaled = analyze_model(planted_net(), n_shuffles=19, progress=False, null="scales")
    assert (shuffled.null, scaled.null) == ("shuffle", "scales")
    assert scaled.layers[0].p_value == pytest.approx(1 / 20)  # planted modules pass it too
    for a, b in zip(shuffled.layers, scaled.layers, strict=True):  # same partition, other null
        assert (a.clusterability, a.excess, a.partition) == (b.clusterability, b.excess,
                                                             b.partition)
        assert a.null != b.null and len(b.null) == 19
    assert scaled.table().splitlines()[0].endswith("k=4, 19 scale-matched copies per layer")
    saved = json.loads(save_analysis(scaled, tmp_path)["results"].read_text())
    assert saved["null"] == "scales" and "modlib.scale_matched" in saved["method"]
    assert "randomly permuted" in shuffled.to_dict()["method"]
    labels = [t.get_text() for t in plot_analysis(scaled).axes[0].get_legend().get_texts()]
    assert "scale-matched copies (range)" in labels


def test_layers_take_names_globs_and_module_names():
    net = MnistCNN(width=4)
    names = lambda layers: [r.name for r in analyze_model(  # noqa: E731
        net, k=2, layers=layers, n_shuffles=1, progress=False).layers]
    assert names(["fc*"]) == ["fc1", "fc2", "fc3"]
    assert names(["fc3", "conv2"]) == ["conv2", "fc3"]  # in model order
    seq = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    assert [r.name for r in analyze_model(seq, k=2, layers=["1"], n_shuffles=1,
                                          progress=False).layers] == ["1.0", "1.1"]


def test_layers_too_small_for_k_are_skipped_with_a_note_and_bad_ones_too():
    net = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8))
    with torch.no_grad():
        net[2].weight.zero_()
        net[3].weight[0, 0] = float("nan")
    result = analyze_model(net, k=4, n_shuffles=1, progress=False)
    assert [r.name for r in result.layers] == ["1"]
    assert result.skipped == {"0": "k=4 is larger than a side of its weight matrix (8, 2)",
                              "2": "its weights are all zero", "3": "it has NaN/Inf weights"}
    assert "skipped 0: k=4 is larger than a side" in result.table()


def test_float16_layers_are_measured_in_float32():
    net = planted_net().half()
    result = analyze_model(net, n_shuffles=1, progress=False)
    assert result.layers[0].excess > 0.4


def test_a_saved_module_loads_with_a_note_and_a_state_dict_is_refused(tmp_path, capsys):
    torch.save(ConvNet(), tmp_path / "net.pt")
    model, label = load_any(tmp_path / "net.pt")
    assert isinstance(model, ConvNet) and label == "net.pt (a saved ConvNet)"
    err = capsys.readouterr().err
    assert "weights_only=False" in err and "only files you trust" in err
    torch.save(ConvNet().state_dict(), tmp_path / "state.pt")
    with pytest.raises(ValueError, match=r"holds a state dict or checkpoint .*not a module\. "
                                         r"analyze needs the module itself"):
        load_any(str(tmp_path / "state.pt"))


def test_a_torchvision_name_is_randomly_initialised_unless_pretrained():
    model, label = load_any("squeezenet1_1")
    assert label == "squeezenet1_1 (torchvision, random initialisation: no pretrained weights)"
    result = analyze_model(model, layers=["features.3"], n_shuffles=2, progress=False,
                           label=label)
    assert [r.name for r in result.layers] == ["features.3.squeeze", "features.3.expand1x1",
                                               "features.3.expand3x3"]
    assert result.model == label


def test_a_hub_id_that_cannot_be_reached_is_one_sentence(monkeypatch):
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 would
    with pytest.raises(ValueError, match=r"^Cannot load 'resnet181': it is not a file, a folder "
                                         r"or a torchvision model name, and the Hugging Face Hub "
                                         r"cannot be reached \(offline mode .*\)\. Did you mean "
                                         r"'resnet18'\?$"):
        load_any("resnet181")


def test_out_folder_names_the_model(tmp_path):
    (tmp_path / "my model").mkdir()
    assert out_folder(tmp_path / "my model") == Path("results/analyze-my-model")
    assert out_folder("resnet18") == Path("results/analyze-resnet18")
    assert out_folder("a/b.pth") == Path("results/analyze-b")


def test_save_analysis_writes_results_and_figure(tmp_path):
    result = analyze_model(planted_net(), n_shuffles=2, progress=False, label="planted")
    paths = save_analysis(result, tmp_path / "out")
    saved = json.loads(paths["results"].read_text())
    assert saved["model"] == "planted" and saved["k"] == 4 and saved["n_shuffles"] == 2
    assert "spectral co-clustering" in saved["method"]
    assert [set(row) for row in saved["layers"]] == [KEYS, KEYS]
    assert saved["layers"][0]["shape"] == [60, 40]
    assert paths["figure"].stat().st_size > 1000
    fig = plot_analysis(result)
    y = {t.get_text(): t.get_position()[1] for t in fig.axes[0].get_yticklabels()}
    assert y["0"] > y["2"]  # the first layer on top


# --- the command line -----------------------------------------------------------------------

def test_cli_on_the_course_model_saved_to_pt(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(MnistCNN(width=4), tmp_path / "mnist.pt")
    out = tmp_path / "out"
    code, printed, err = _run(["analyze", str(tmp_path / "mnist.pt"), "--k", "4",
                               "--shuffles", "3", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    assert printed.startswith("mnist.pt (a saved MnistCNN): k=4, 3 shuffled copies per layer\n")
    assert "skipped conv1: k=4 is larger than a side of its weight matrix (4, 1)" in printed
    assert f"wrote {out / 'results.json'} and {out / 'clusterability.png'}" in printed
    saved = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in saved["layers"]] == ["conv2", "fc1", "fc2", "fc3"]
    assert saved["skipped"] == {"conv1": "k=4 is larger than a side of its weight matrix (4, 1)"}
    for row in saved["layers"]:
        assert set(row) == KEYS and len(row["null"]) == 3
        assert row["p_value"] in (0.25, 0.5, 0.75, 1.0)
        assert row["excess"] == pytest.approx(row["clusterability"] - row["chance_level"])
    assert (out / "clusterability.png").stat().st_size > 1000
    assert "%|" not in err  # --quiet: no progress bar


def test_cli_null_scales_and_a_bad_null(tmp_path, capsys):
    torch.save(planted_net(), tmp_path / "planted.pt")
    code, printed, _ = _run(["analyze", str(tmp_path / "planted.pt"), "--shuffles", "4",
                             "--null", "scales", "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0 and "4 scale-matched copies per layer" in printed.splitlines()[0]
    assert json.loads((tmp_path / "o" / "results.json").read_text())["null"] == "scales"
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(tmp_path / "planted.pt"), "--null", "rows"])
    assert exit_.value.code == 2
    assert "argument --null: invalid choice: 'rows'" in capsys.readouterr().err


def test_cli_shows_a_progress_bar_over_layers_unless_quiet(tmp_path, capsys):
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    torch.save(net, tmp_path / "seq.pt")
    code, _, err = _run(["analyze", str(tmp_path / "seq.pt"), "--shuffles", "1", "--out",
                         str(tmp_path / "a")], capsys)
    assert code == 0 and "layers: 100%" in err and "2/2" in err


def test_cli_default_out_and_layers_with_commas(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, printed, _ = _run(["analyze", "squeezenet1_1", "--layers",
                             "features.3.squeeze,classifier.*", "--shuffles", "0", "--quiet"],
                            capsys)
    assert code == 0
    out = tmp_path / "results" / "analyze-squeezenet1_1"
    saved = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in saved["layers"]] == ["features.3.squeeze", "classifier.1"]
    assert saved["model"].endswith("(torchvision, random initialisation: no pretrained weights)")
    assert [row["p_value"] for row in saved["layers"]] == [None, None]
    assert "random initialisation" in printed.splitlines()[0]


# --- Hugging Face: a local folder and a Hub id, in the real on-disk format ---------------------

@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    pytest.importorskip("datasets")
    from tests.hub_fixture import build_hf_home

    return build_hf_home(tmp_path_factory.mktemp("hf_home"))


def _snapshot(hf_home: Path, repo: str) -> Path:
    folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    return folder / "snapshots" / (folder / "refs" / "main").read_text()


def test_a_hugging_face_folder_float16_pythia(hf_home, tmp_path, capsys):
    folder = _snapshot(hf_home, "EleutherAI/pythia-70m")  # files link to ../../blobs, as cached
    model, label = load_any(folder)
    assert type(model).__name__ == "GPTNeoXModel" and "Hugging Face folder" in label
    assert "Loading weights" in capsys.readouterr().err  # transformers' bar, without --quiet
    code, printed, err = _run(["analyze", str(folder), "--layers", "layers.0.*", "--shuffles",
                               "2", "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 0 and err == ""  # --quiet: no bar, and no load report from transformers
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    shapes = {row["name"]: row["shape"] for row in saved["layers"]}
    assert shapes["layers.0.attention.query_key_value"] == [96, 32]
    assert shapes["layers.0.mlp.dense_h_to_4h"] == [128, 32]
    assert all(0 <= row["clusterability"] <= 1 for row in saved["layers"])


@pytest.mark.slow
def test_a_hub_id_from_the_cache_and_one_that_is_not_there(hf_home, tmp_path):
    """A fresh Python offline (HF_HUB_OFFLINE=1, read at import): gpt2 loads from the cache
    (GPT-2's Conv1D layers); an id that is not cached is one line and status 2."""
    code = f"""
import json
from modlib.__main__ import main
codes = []
for argv in (["analyze", "gpt2", "--shuffles", "2", "--out", {str(tmp_path / "gpt2")!r},
              "--quiet"],
             ["analyze", "nobody/nothing", "--out", {str(tmp_path / "none")!r}, "--quiet"]):
    try:
        codes.append(main(argv))
    except SystemExit as e:
        codes.append(e.code)
print(json.dumps(codes))
"""
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_CACHE", "TRANSFORMERS_CACHE", "HUGGINGFACE_HUB_CACHE")}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [0, 2]
    assert proc.stdout.startswith("gpt2 (Hugging Face Hub, GPT2Model): k=4")
    saved = json.loads((tmp_path / "gpt2" / "results.json").read_text())
    shapes = {row["name"]: row["shape"] for row in saved["layers"]}
    assert shapes["h.0.attn.c_attn"] == [96, 32] and shapes["h.1.mlp.c_proj"] == [32, 128]
    lines = proc.stderr.strip().splitlines()
    assert lines == ["modlib: error: Cannot load 'nobody/nothing': it is not a file, a folder or "
                     "a torchvision model name, and the Hugging Face Hub cannot be reached "
                     "(offline mode (HF_HUB_OFFLINE) and not in the cache). "
                     "(see python -m modlib --help)"]
    assert not (tmp_path / "none").exists()


# --- bad input: every public name refuses it up front ------------------------------------------

def _analysis() -> ModelAnalysis:
    return analyze_model(nn.Sequential(nn.Linear(4, 4)), k=2, n_shuffles=1, progress=False)


NET = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

CASES = [
    ("analyze_model", lambda: analyze_model("resnet18"), TypeError,
     r"'model' must be a torch.nn.Module. Got str 'resnet18'"),
    ("analyze_model", lambda: analyze_model(NET, k=1), ValueError,
     r"'k' must be an int >= 2. Got 1."),
    ("analyze_model", lambda: analyze_model(NET, k=2.0), TypeError,
     r"'k' must be an int >= 2. Got float 2.0."),
    ("analyze_model", lambda: analyze_model(NET, n_shuffles=-1), ValueError,
     r"'n_shuffles' must be an int >= 0. Got -1."),
    ("analyze_model", lambda: analyze_model(NET, seed=None), TypeError,
     r"'seed' must be an int. Got None."),
    ("analyze_model", lambda: analyze_model(NET, progress="no"), TypeError,
     r"'progress' must be True or False"),
    ("analyze_model", lambda: analyze_model(NET, null="scale"), ValueError,
     r"'null' must be one of \('shuffle', 'scales'\). Got 'scale'."),
    ("analyze_model", lambda: analyze_model(NET, label=3), TypeError,
     r"'label' must be a str or None. Got int 3."),
    ("analyze_model", lambda: analyze_model(NET, layers="0"), TypeError,
     r"'layers' must be a list of layer names. Got str '0'."),
    ("analyze_model", lambda: analyze_model(NET, layers=[]), ValueError,
     r"'layers' is empty: name at least one layer."),
    ("analyze_model", lambda: analyze_model(NET, layers=["fc*"]), ValueError,
     r"'layers' pattern 'fc\*' matches no weight layer of the model; its weight layers are "
     r"\['0', '2'\]."),
    ("analyze_model", lambda: analyze_model(NET, k=4, layers=["2"]), ValueError,
     r"No layer can be clustered at k=4: 2: k=4 is larger than a side of its weight matrix "
     r"\(3, 8\)."),
    ("analyze_model", lambda: analyze_model(nn.ReLU()), ValueError,
     r"'model' \(ReLU\) has no layer with a weight graph"),
    ("load_any", lambda: load_any(None), TypeError, r"'model' must be a model: .* Got None."),
    ("load_any", lambda: load_any(""), ValueError, r"'model' must be a model: .*empty string"),
    ("load_any", lambda: load_any("resnet18", pretrained=1), TypeError,
     r"'pretrained' must be True or False. Got 1."),
    ("load_any", lambda: load_any("resnet18", progress=None), TypeError,
     r"'progress' must be True or False. Got None."),
    ("load_any", lambda: load_any("no such model!"), ValueError,
     r"Unknown model 'no such model!': not a .pt/.pth file, a folder, a torchvision model name "
     r"\(torchvision.models.list_models\(\)\) or a Hugging Face Hub id."),
    ("load_any", lambda: load_any("/nonexistent/model.pt"), ValueError,
     r"'model' names no file or folder: '/nonexistent/model.pt' does not exist."),
    ("load_any", lambda: load_any(__file__), ValueError,
     r"'model' file .*test_analyze.py must be a .pt or .pth file written by torch.save\(model\)"),
    ("load_any", lambda: load_any(Path(__file__).parent), ValueError,
     r"'model' folder .*tests is not a Hugging Face model folder: it has no config.json."),
    ("load_any", lambda: load_any(Path(__file__).parent, pretrained=True), ValueError,
     r"'pretrained' applies to torchvision model names only; .* is a folder."),
    ("plot_analysis", lambda: plot_analysis({"layers": []}), TypeError,
     r"'analysis' must be a ModelAnalysis \(from analyze_model\). Got dict"),
    ("save_analysis", lambda: save_analysis(None, "out"), TypeError,
     r"'analysis' must be a ModelAnalysis \(from analyze_model\). Got None."),
    ("save_analysis", lambda: save_analysis(_analysis(), __file__), ValueError,
     r"'out' must be a folder. Got '.*test_analyze.py', an existing file."),
    ("save_analysis", lambda: save_analysis(_analysis(), 3), TypeError,
     r"'out' must be a folder path \(a str or os.PathLike\). Got 3."),
    ("out_folder", lambda: out_folder(None), TypeError, r"'model' must be a model: .* Got None."),
]
ALLOWED_WITHOUT_ROW = {"LayerReport", "ModelAnalysis"}  # result records (dataclasses)


@pytest.mark.parametrize("name, call, error, match", CASES, ids=row_ids(CASES))
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, match):
    assert_refused(call, error, match)


def test_every_public_name_has_a_bad_input_row():
    assert_every_name_has_a_row(CASES, set(analyze.__all__), ALLOWED_WITHOUT_ROW)
    for name in ALLOWED_WITHOUT_ROW:
        assert hasattr(getattr(analyze, name), "__dataclass_fields__"), name


def test_the_module_is_one_attribute_away():
    assert modlib.analyze is analyze and LayerReport.__module__ == "modlib.course.analyze"
