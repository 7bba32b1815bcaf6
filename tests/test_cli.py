"""The command line refuses every bad option before any training: status 2, one line on stderr."""

import os
import subprocess
import sys

import pytest
import torch

import modlib.__main__ as cli
import modlib.course.experiments as experiments
from modlib.__main__ import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
ROOT_WRITES_ANYWHERE = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                                          reason="permissions do not bind the superuser")


def _file(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    return str(tmp_path / "taken")


def _under_file(tmp_path):
    return f"{_file(tmp_path)}/results"


def _under_read_only(tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    return str(tmp_path / "locked" / "results")


# (options after "reproduce", extra environment, --out maker or None, words of the one line)
BAD = [
    pytest.param(["imagenet"], {}, None, "argument experiment: invalid choice: 'imagenet'",
                 id="experiment"),
    pytest.param(["mnist", "--k", "0"], {}, None, "--k must be >= 1, got 0", id="k-0"),
    pytest.param(["mnist", "--k", "-3"], {}, None, "--k must be >= 1, got -3", id="k-neg"),
    pytest.param(["mnist", "--k", "2.5"], {}, None, "argument --k: invalid int value: '2.5'",
                 id="k-float"),
    pytest.param(["mnist", "--lam", "-1"], {}, None, "--lam must be a finite real >= 0, got -1.0",
                 id="lam-neg"),
    pytest.param(["mnist", "--lam", "nan"], {}, None, "--lam must be a finite real >= 0, got nan",
                 id="lam-nan"),
    pytest.param(["mnist", "--lam", "inf"], {}, None, "--lam must be a finite real >= 0, got inf",
                 id="lam-inf"),
    pytest.param(["mnist", "--method", "magic"], {}, None,
                 "argument --method: invalid choice: 'magic'", id="method"),
    pytest.param(["cifar", "--method", "bimt"], {}, None,
                 "--method bimt applies to mnist and modadd, not cifar", id="method-cifar"),
    pytest.param(["mnist", "--bimt-lam", "0.1"], {}, None,
                 "--bimt-lam applies to --method bimt only", id="bimt-lam-alone"),
    pytest.param(["mnist", "--method", "bimt", "--bimt-lam", "-1"], {}, None,
                 "--bimt-lam must be a finite real >= 0, got -1.0", id="bimt-lam-neg"),
    pytest.param(["mnist", "--lam=-inf"], {}, None,
                 "--lam must be a finite real >= 0, got -inf", id="lam-neg-inf"),
    pytest.param(["mnist", "--lam", "lots"], {}, None, "argument --lam: invalid float value",
                 id="lam-word"),
    pytest.param(["mnist", "--seed", "x"], {}, None, "argument --seed: invalid int value: 'x'",
                 id="seed"),
    pytest.param(["mnist", "--seeds", "0"], {}, None, "--seeds must be >= 1, got 0",
                 id="seeds-0"),
    pytest.param(["mnist", "--seeds", "2.5"], {}, None,
                 "argument --seeds: invalid int value: '2.5'", id="seeds-float"),
    pytest.param(["cifar", "--model", "paper"], {}, None, "--model paper does not apply to cifar",
                 id="model-cifar"),
    pytest.param(["mnist", "--model", "pythia"], {}, None,
                 "--model pythia does not apply to mnist", id="model-mnist"),
    pytest.param(["mnist", "--profile", "huge"], {}, None, "argument --profile: invalid choice",
                 id="profile"),
    pytest.param(["mnist"], {"MODLIB_PROFILE": "huge"}, None,
                 "environment variable MODLIB_PROFILE must be one of", id="profile-env"),
    pytest.param(["mnist", "--device", "gpu0"], {}, None,
                 "'device' must name a torch device such as 'cpu' or 'cuda'. Got 'gpu0'.",
                 id="device-unknown"),
    pytest.param(["mnist", "--device", "meta"], {}, None,
                 "'device' must be a CPU, CUDA or MPS device. Got 'meta'.", id="device-meta"),
    pytest.param(["mnist", "--device", "cuda"], {}, None,
                 "'device' is CUDA, but no CUDA GPU is available here.", marks=NO_CUDA,
                 id="device-cuda"),
    pytest.param(["mnist"], {}, _file, "'out' must be a folder. Got '{out}', an existing file.",
                 id="out-file"),
    pytest.param(["mnist"], {}, _under_file,
                 "'out' must be a folder that can be created and written to. Got '{out}'",
                 id="out-under-file"),
    pytest.param(["mnist"], {}, _under_read_only,
                 "'out' must be a folder that can be created and written to. Got '{out}'",
                 marks=ROOT_WRITES_ANYWHERE, id="out-read-only"),
]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a set-up or a training run starts."""
    def started(*args, **kwargs):
        pytest.fail("work started before the arguments were checked")

    monkeypatch.setattr(experiments, "fit", started)
    monkeypatch.setattr(experiments, "_setup", started)


def _assert_refused_in_one_line(argv: list[str], words: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """``main(argv)`` exits with status 2 and one line on stderr, "modlib: error: ...words..."."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modlib: error: ")
    assert words in lines[0]


@pytest.mark.parametrize("args,env,make_out,words", BAD)
def test_bad_options_exit_2_with_one_line_before_training(args, env, make_out, words, tmp_path,
                                                          monkeypatch, capsys, no_training):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = make_out(tmp_path) if make_out else str(tmp_path / "fresh")
    _assert_refused_in_one_line(["reproduce", *args, "--out", out, "--quiet"],
                                words.format(out=out), capsys)
    if make_out is None:  # refused before --out was touched
        assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("args,method,bimt_lam", [
    ([], "clusterability", None),
    (["--method", "bimt"], "bimt", None),
    (["--method", "bimt", "--bimt-lam", "0.002"], "bimt", 0.002),
])
def test_method_and_bimt_lam_reach_reproduce(args, method, bimt_lam, tmp_path, monkeypatch):
    class Stop(Exception):
        pass

    seen = {}

    def stop(*a, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(cli, "reproduce", stop)
    with pytest.raises(Stop):
        main(["reproduce", "modadd", *args, "--out", str(tmp_path / "out"), "--quiet"])
    assert seen["method"] == method and seen["bimt_lam"] == bimt_lam


def test_good_out_is_created_and_left_empty(tmp_path, monkeypatch):
    """--out is checked by creating it and a probe file; the probe does not stay."""
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(experiments, "_setup", stop)
    out = tmp_path / "a" / "b"
    with pytest.raises(Stop):
        main(["reproduce", "mnist", "--profile", "ci", "--out", str(out), "--quiet"])
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_probe_that_cannot_be_written_is_refused(tmp_path, monkeypatch, capsys, no_training):
    """A folder that exists but refuses files (read-only, full) is refused up front."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(experiments.tempfile, "mkstemp", refuse)
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "mnist", "--out", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(
        f"modlib: error: 'out' must be a folder that can be created and written to. "
        f"Got '{tmp_path}': Permission denied.")


@pytest.mark.slow
@pytest.mark.parametrize("argv,match", [
    (["reproduce", "imagenet"], "argument experiment: invalid choice: 'imagenet'"),
    (["reproduce", "mnist", "--k", "0"], "--k must be >= 1, got 0"),
    (["reproduce", "mnist", "--lam", "nan"], "--lam must be a finite real >= 0, got nan"),
    (["reproduce", "mnist", "--device", "gpu0"], "'device' must name a torch device"),
    (["reproduce", "mnist", "--out", __file__], "an existing file"),
])
def test_bad_flags_exit_nonzero_with_one_line(argv, match):
    """The same, as a separate process: exit status 2, one line on stderr, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "modlib", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr


def test_seeds_reach_reproduce_and_the_summary_is_printed(tmp_path, monkeypatch, capsys):
    """--seeds goes to reproduce; each summary number prints as mean ± interval."""
    from modlib.core.stats import mean_interval

    seen = {}

    def fake_reproduce(name, **kwargs):
        seen.update(kwargs, name=name)
        numbers = {"modular_accuracy_difference": mean_interval([-0.01, -0.006, -0.008],
                                                                null=0.0).to_dict(),
                   "modular_accuracy": mean_interval([0.96, 0.97, 0.98]).to_dict()}
        results = {"experiment": name, "model": "m", "data": "d", "n_seeds": 3,
                   "summary": {"method": "mean and 95 % Student-t interval over seeds",
                               "numbers": numbers}}
        return experiments.ExperimentResult(None, None, {}, results)

    import modlib.__main__ as cli

    monkeypatch.setattr(cli, "reproduce", fake_reproduce)
    assert main(["reproduce", "mnist", "--seeds", "3", "--out", str(tmp_path), "--quiet"]) == 0
    assert seen["seeds"] == 3 and seen["name"] == "mnist"
    out = capsys.readouterr().out
    assert "mnist: m on d, 3 seed(s)" in out
    assert "modular_accuracy_difference" in out and "-0.008 ± 0.005  finding" in out
    assert "0.970 ± 0.025\n" in out  # no 'finding' where there is no value of no effect
    assert "holds: at little cost in accuracy (modular_accuracy_difference" in out


# --- python -m modlib analyze MODEL ---------------------------------------------------------

def _state_dict(tmp_path):
    torch.save(torch.nn.Linear(4, 4).state_dict(), tmp_path / "state.pt")
    return str(tmp_path / "state.pt")


def _text_file(tmp_path):
    (tmp_path / "model.txt").write_text("not a model")
    return str(tmp_path / "model.txt")


def _plain_folder(tmp_path):
    (tmp_path / "plain").mkdir()
    return str(tmp_path / "plain")


# (MODEL or a maker of it, options, --out maker or None, words of the one line)
ANALYZE_BAD = [
    pytest.param("squeezenet1_1", ["--k", "1"], None, "--k must be >= 2, got 1", id="k-1"),
    pytest.param("squeezenet1_1", ["--k", "2.5"], None, "argument --k: invalid int value: '2.5'",
                 id="k-float"),
    pytest.param("squeezenet1_1", ["--shuffles", "-1"], None, "--shuffles must be >= 0, got -1",
                 id="shuffles-neg"),
    pytest.param("no such model!", [], None, "Unknown model 'no such model!': not a .pt/.pth "
                 "file, a folder, a torchvision model name", id="model-unknown"),
    pytest.param("missing.pt", [], None, "'model' names no file or folder: 'missing.pt' does "
                 "not exist.", id="model-missing-file"),
    pytest.param(_state_dict, [], None, "holds a state dict or checkpoint (keys ['weight', "
                 "'bias']...), not a module. analyze needs the module itself", id="state-dict"),
    pytest.param(_text_file, [], None, "must be a .pt or .pth file written by torch.save(model)",
                 id="model-txt"),
    pytest.param(_plain_folder, [], None, "is not a Hugging Face model folder: it has no "
                 "config.json.", id="model-folder"),
    pytest.param(_state_dict, ["--pretrained"], None, "'pretrained' applies to torchvision "
                 "model names only", id="pretrained-file"),
    pytest.param("squeezenet1_1", ["--layers", "fc*"], None, "'layers' pattern 'fc*' matches no "
                 "weight layer of the model; its weight layers are ['features.0',", id="layers"),
    pytest.param("squeezenet1_1", ["--layers", "features.0"], None, "No layer can be clustered "
                 "at k=4: features.0: k=4 is larger than a side of its weight matrix (64, 3).",
                 id="no-layer-left"),
    pytest.param("squeezenet1_1", [], _file, "'out' must be a folder. Got '{out}', an existing "
                 "file.", id="out-file"),
    pytest.param("squeezenet1_1", [], _under_file, "'out' must be a folder that can be created "
                 "and written to. Got '{out}'", id="out-under-file"),
]


@pytest.mark.parametrize("model,args,make_out,words", ANALYZE_BAD)
def test_analyze_refuses_bad_input_with_status_2_and_one_line(model, args, make_out, words,
                                                              tmp_path, capsys):
    spec = model(tmp_path) if callable(model) else model
    out = make_out(tmp_path) if make_out else str(tmp_path / "fresh" / "out")
    _assert_refused_in_one_line(["analyze", spec, *args, "--out", out, "--quiet"],
                                words.format(out=out), capsys)
    assert not (tmp_path / "fresh").exists()  # no folder is left behind a refused command


def test_analyze_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--shuffles" in printed and "weights_only=False" in printed
