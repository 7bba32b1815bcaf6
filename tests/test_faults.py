"""Nothing lost, everything refused up front: damaged files, killed writers, shared caches.

Checkpoints of ``fit`` and the cache of ``pretrained`` are written atomically with a user's usual
permissions, and a file that cannot be used is refused with one ValueError that names it and says
what to do. The baselines of the zoo are not trained here: a fake recipe stands in for them, so
that these tests exercise the cache itself in seconds.
"""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import modlib
from modlib import ClusterabilityLoss
from modlib.training import sources, zoo
from modlib.training.models import MnistCNN, PaperMLP
from modlib.training.profiles import profile
from modlib.training.train import TrainConfig, fit, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and signals")


def _loader(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(4, (n,), generator=g)
    X = torch.randn(4, 784, generator=g)[y] + 0.5 * torch.randn(n, 784, generator=g)
    return DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _model(hidden=16):
    torch.manual_seed(0)
    return PaperMLP(hidden=hidden, n_classes=4)


@pytest.fixture
def checkpoint(tmp_path):
    """A real checkpoint of one epoch of training, with a clusterability loss of k=4."""
    model = _model()
    fit(model, _loader(), config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path / "run")),
        loss=ClusterabilityLoss(model, 4), progress=False)
    return tmp_path / "run" / "last.pt"


def _one_line_naming(path, *remedy):
    """A regex for the one message that names ``path`` and says what to do."""
    return re.escape(f"The checkpoint {path} cannot be used: ") + ".*" + ".*".join(
        re.escape(r) for r in remedy)


# ---- damaged and foreign files -----------------------------------------------------------


def _empty(path):
    path.write_bytes(b"")


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 64)


def _plain_state_dict(path):
    torch.save(_model().state_dict(), path)


def _without_history(path):
    ckpt = torch.load(path, weights_only=True)
    del ckpt["history"]
    torch.save(ckpt, path)


def _a_list(path):
    torch.save([torch.zeros(3)], path)


def _bad_config(path):
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["lr"] = -1.0
    torch.save(ckpt, path)


def _newer_format(path):
    ckpt = torch.load(path, weights_only=True)
    ckpt["format"] = 99
    torch.save(ckpt, path)


DAMAGES = {
    "empty": (_empty, "it is empty (0 bytes)"),
    "truncated": (_truncated, "torch.load cannot read it"),
    "garbage": (_garbage, "torch.load cannot read it"),
    "plain state_dict": (_plain_state_dict, "it holds a plain state_dict (tensors "
                                            "['fc1.weight', 'fc2.weight'"),
    "no history": (_without_history, "it lacks the entries ['history']"),
    "a list": (_a_list, "it holds a list, not the dict of a checkpoint"),
    "bad config": (_bad_config, "its 'config' entry is not a valid TrainConfig ('lr' must be"),
    "newer format": (_newer_format, "it was written by a newer modlib (checkpoint format 99"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_message(checkpoint, damage):
    spoil, problem = DAMAGES[damage]
    spoil(checkpoint)
    expected = _one_line_naming(checkpoint, problem, "Delete it and train from the start")
    with pytest.raises(ValueError, match=expected) as info:
        load_checkpoint(checkpoint)
    assert len(str(info.value).splitlines()) == 1
    model = _model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=expected):  # resume: refused before any change
        fit(model, _loader(), config=TrainConfig(epochs=2), loss=ClusterabilityLoss(model, 4),
            resume=checkpoint, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_missing_checkpoint_or_a_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"no checkpoint at {tmp_path}/x.pt")):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(ValueError, match=re.escape(f"The checkpoint {tmp_path} cannot be used: "
                                                   "it is a folder, not a file.")):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_the_previous_format_still_resumes(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt["format"] == 2 and ckpt["loss"] == {"k": 4, "layers": ["fc2", "fc3"]}
    del ckpt["format"], ckpt["loss"]  # as format 1 wrote them
    torch.save(ckpt, checkpoint)
    model = _model()
    hist = fit(model, _loader(), config=TrainConfig(epochs=1), loss=ClusterabilityLoss(model, 4),
               resume=checkpoint, progress=False)
    assert len(hist.epochs) == 1


# ---- resuming with another config, model or loss ----------------------------------------


@pytest.mark.parametrize(("change", "match"), [
    (dict(config=TrainConfig(epochs=2, lr=1e-2)),
     r"it was trained with lr=0\.001, but 'config' has lr=0\.01\. Resume with the checkpoint's "
     r"values"),
    (dict(config=TrainConfig(epochs=2, lam=0.0, clip_grad=None, precision="fp16")),
     r"it was trained with lam=20\.0, clip_grad=1\.0, precision='auto', but 'config' has "
     r"lam=0\.0, clip_grad=None, precision='fp16'"),
    (dict(hidden=32),
     r"it was written for another model: shapes differ: fc1\.weight \(16, 784\) there, "
     r"\(32, 784\) here, fc2\.weight"),
    (dict(k=2),
     r"it was trained with a clusterability loss of k=4 on layers \['fc2', 'fc3'\], but 'loss' "
     r"is a clusterability loss of k=2"),
    (dict(k=None),
     r"it was trained with a clusterability loss of k=4 .*, but 'loss' is no clusterability "
     r"loss\. Resume with the loss it was trained with"),
])
def test_resuming_with_another_config_model_or_loss_is_refused(checkpoint, change, match):
    model = _model(change.get("hidden", 16))
    k = change.get("k", 4)
    loss = None if k is None else ClusterabilityLoss(model, k)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=re.escape(f"The checkpoint {checkpoint} cannot be used: ")
                       + match):
        fit(model, _loader(), config=change.get("config", TrainConfig(epochs=2)), loss=loss,
            resume=checkpoint, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_resuming_with_more_epochs_or_another_seed_is_warned_field_by_field(checkpoint, tmp_path):
    model = _model()
    cfg = TrainConfig(epochs=3, seed=7, checkpoint_dir=str(tmp_path / "elsewhere"))
    with pytest.warns(UserWarning) as record:
        hist = fit(model, _loader(), config=cfg, loss=ClusterabilityLoss(model, 4),
                   resume=checkpoint, progress=False)
    said = sorted(str(w.message) for w in record)
    assert said == [f"Resuming from {checkpoint} with epochs=3; the checkpoint was written with "
                    "epochs=1.",
                    f"Resuming from {checkpoint} with seed=7; the checkpoint was written with "
                    "seed=0."]  # checkpoint_dir may differ without a word
    assert len(hist.epochs) == 3
    assert load_checkpoint(tmp_path / "elsewhere" / "last.pt")["epoch"] == 3


# ---- an interrupted fit ------------------------------------------------------------------


class _Breaks:
    """A loader that raises in the middle of its second pass."""

    def __init__(self, loader):
        self.loader, self.passes = loader, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        for i, batch in enumerate(self.loader):
            if self.passes == 2 and i == 2:
                raise RuntimeError("the data server went away")
            yield batch


def test_an_interrupted_fit_leaves_the_last_checkpoint_loadable(tmp_path):
    model = _model()
    cfg = TrainConfig(epochs=3, checkpoint_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="the data server went away"):
        fit(model, _Breaks(_loader()), config=cfg, loss=ClusterabilityLoss(model, 4),
            progress=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    resumed = _model()
    hist = fit(resumed, _loader(), config=cfg, loss=ClusterabilityLoss(resumed, 4),
               resume=tmp_path / "last.pt", progress=False)
    assert [row["epoch"] for row in hist.epochs] == [1, 2, 3] and len(hist.steps) == 12


# ---- atomic writes: permissions, failures, killed writers ---------------------------------


@posix_only
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoints_and_cache_entries_get_the_users_usual_mode(tmp_path, monkeypatch, fake_recipe,
                                                                umask, mode):
    old = os.umask(umask)
    try:
        fit(_model(), _loader(), config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path / "c")),
            progress=False)
        modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    finally:
        os.umask(old)
    (entry,) = (tmp_path / "cache" / "pretrained").iterdir()
    assert (tmp_path / "c" / "last.pt").stat().st_mode & 0o777 == mode
    assert entry.stat().st_mode & 0o777 == mode


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = sources.save_atomic({"step": 1}, tmp_path / "last.pt")

    def breaks(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # even an interrupt leaves no temporary file behind

    monkeypatch.setattr(torch, "save", breaks)
    with pytest.raises(KeyboardInterrupt):
        sources.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(path, weights_only=True) == {"step": 1}


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@posix_only
def test_temporary_files_of_dead_writers_go_those_of_live_ones_stay(tmp_path):
    path = tmp_path / "last.pt"
    host = sources._HOST
    dead = tmp_path / f"last.pt.{host}.{_dead_pid()}.0123abcd.tmp"
    live = tmp_path / f"last.pt.{host}.{os.getpid()}.0123abcd.tmp"  # being written right now
    other_host = tmp_path / f"last.pt.{host}x.{_dead_pid()}.0123abcd.tmp"  # on a shared disk
    other_file = tmp_path / f"first.pt.{host}.{_dead_pid()}.0123abcd.tmp"
    for tmp in (dead, live, other_host, other_file):
        tmp.write_bytes(b"half")
    sources.save_atomic({"step": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["last.pt", live.name, other_host.name, other_file.name])


KILLED_WRITER = textwrap.dedent("""
    import sys
    import torch
    from torch import nn
    from modlib.training.train import TrainConfig, fit

    torch.manual_seed(0)
    model = nn.Linear(2048, 2048)  # 16 MB of weights: checkpoints of about 50 MB
    data = [(torch.randn(1, 2048), torch.zeros(1, dtype=torch.long))]
    fit(model, data, config=TrainConfig(epochs=10**6, checkpoint_dir=sys.argv[1]),
        progress=False)
""")


def _wait_for(condition, what, proc=None, polls=30_000):
    """Poll until ``condition()``, every 10 ms; fail (not hang) if it has not come after
    ``polls`` polls or the writer dies."""
    for _ in range(polls):
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the writer exited ({proc.returncode}) before {what}: "
                        f"{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.01)
    pytest.fail(f"gave up waiting for {what}")


def _env(**extra):
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "MODLIB_PROFILE": "ci", **extra}


@posix_only
@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_last_checkpoint_whole(tmp_path):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(folder)], env=_env(),
                            stderr=subprocess.PIPE)
    try:
        final = folder / "last.pt"

        def writing_again():  # a checkpoint is there and the next one is half written
            tmps = list(folder.glob("last.pt.*.tmp")) if folder.exists() else []
            return final.exists() and any(t.exists() and t.stat().st_size > 0 for t in tmps)

        _wait_for(writing_again, "a second checkpoint being written", proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    ckpt = load_checkpoint(final)  # whole: the old checkpoint or the new one, never half
    assert ckpt["epoch"] >= 1 and ckpt["model"]["weight"].shape == (2048, 2048)
    # the next successful write of the same file removes the killed writer's temporary file
    fit(nn.Linear(2048, 2048), [(torch.randn(1, 2048), torch.zeros(1, dtype=torch.long))],
        config=TrainConfig(epochs=1, checkpoint_dir=str(folder)), progress=False)
    assert [p.name for p in folder.iterdir()] == ["last.pt"]
    assert load_checkpoint(final)["epoch"] == 1


# ---- the cache of pretrained models ------------------------------------------------------


def _fake_image_model(name, prof, progress):
    """What zoo._image_model returns, without the training: an untrained model of the recipe."""
    model = MnistCNN(width=prof.width) if name == "mnist-cnn" else PaperMLP()
    init = {"width": prof.width} if name == "mnist-cnn" else {}
    return model, {"source": "fake", "metrics": {"accuracy": 0.5}, "stand_in": False,
                   "init": init}


@pytest.fixture
def fake_recipe(tmp_path, monkeypatch):
    """A cache in tmp_path and a recipe that builds the model without training it; counts
    the models it built."""
    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "cache"))
    built = []

    def fake(name, prof, progress):
        built.append((name, prof))
        return _fake_image_model(name, prof, progress)

    monkeypatch.setattr(zoo, "_image_model", fake)
    return built


def _entry(name="mnist-mlp", prof=None):
    prof = prof or profile("ci")
    return zoo._cache_path(zoo._cache_key(name, prof), prof.name)


CACHE_DAMAGES = {
    "empty": (_empty, "it is empty (0 bytes)"),
    "truncated": (_truncated, "torch.load cannot read it"),
    "garbage": (_garbage, "torch.load cannot read it"),
    "plain state_dict": (lambda p: torch.save(PaperMLP().state_dict(), p),
                         "it holds a plain state_dict (tensors ['fc1.weight'"),
    "a dict of other things": (lambda p: torch.save({"weights": [1.0]}, p),
                               "it lacks the entries ['state_dict', 'meta'] of a cached model "
                               "(it holds ['weights'])"),
    "other settings": (lambda p: _rewrite_meta(p, key={"name": "mnist-mlp"}),
                       "it was written for other settings (differing: ['batch_size'"),
    "other model": (lambda p: _rewrite_state(p, MnistCNN(width=2).state_dict()),
                    "its weights do not fit a mnist-mlp model (RuntimeError"),
}


def _rewrite_meta(path, **meta):
    saved = torch.load(path, weights_only=True)
    saved["meta"].update(meta)
    torch.save(saved, path)


def _rewrite_state(path, state):
    saved = torch.load(path, weights_only=True)
    saved["state_dict"] = state
    torch.save(saved, path)


@pytest.mark.parametrize("damage", CACHE_DAMAGES)
def test_a_damaged_or_foreign_cache_entry_is_refused_then_retrained(fake_recipe, damage):
    modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    path = _entry()
    spoil, problem = CACHE_DAMAGES[damage]
    spoil(path)
    expected = (re.escape(f"The cached model {path} cannot be used: ") + ".*"
                + re.escape(problem) + ".*" + re.escape(
                    "Delete it, or call pretrained('mnist-mlp', retrain=True) to train it again."))
    with pytest.raises(ValueError, match=expected) as info:
        modlib.pretrained("mnist-mlp", profile="ci", progress=False)
    assert len(str(info.value).splitlines()) == 1
    assert len(fake_recipe) == 1  # refused: not silently trained again
    again = modlib.pretrained("mnist-mlp", profile="ci", progress=False, retrain=True)
    assert len(fake_recipe) == 2 and again.metrics == {"accuracy": 0.5}
    modlib.pretrained("mnist-mlp", profile="ci", progress=False)  # loads again
    assert len(fake_recipe) == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_custom_profile_of_the_same_name_gets_its_own_cache_entry(fake_recipe):
    ci = profile("ci")
    narrow = dataclasses.replace(ci, width=2)  # today's poison: same name, other model
    first = modlib.pretrained("mnist-cnn", profile="ci", progress=False)
    other = modlib.pretrained("mnist-cnn", profile=narrow, progress=False)
    assert len(fake_recipe) == 2  # trained for the custom profile, not taken from 'ci'
    assert first.model.conv1.out_channels == ci.width and other.model.conv1.out_channels == 2
    assert modlib.pretrained("mnist-cnn", profile="ci", progress=False
                             ).model.conv1.out_channels == ci.width
    assert modlib.pretrained("mnist-cnn", profile=narrow, progress=False
                             ).model.conv1.out_channels == 2
    assert len(fake_recipe) == 2  # each from its own entry
    names = sorted(p.name for p in (_entry("mnist-cnn").parent).iterdir())
    assert len(names) == 2 and all(re.fullmatch(r"mnist-cnn-ci-v1-[0-9a-f]{8}\.pt", n)
                                   for n in names)


@pytest.mark.parametrize(("name", "field", "value", "same"), [
    ("mnist-cnn", "width", 2, False),
    ("mnist-mlp", "mnist_epochs", 1, False),
    ("mnist-mlp", "batch_size", 32, False),
    ("cifar-cnn", "cifar_train", 10, False),
    ("pythia-70m", "llm_steps", 1, False),
    ("pythia-70m", "text_chars", None, False),
    ("mnist-mlp", "width", 2, True),  # the MLP has no width: the same model, the same entry
    ("mnist-mlp", "llm_steps", 1, True),
])
def test_the_cache_key_covers_every_size_that_shapes_the_model(name, field, value, same):
    ci = profile("ci")
    changed = dataclasses.replace(ci, **{field: value})
    assert (_entry(name, changed) == _entry(name, ci)) is same
    assert zoo._cache_key(name, ci)["seed"] == 0 and zoo._cache_key(name, ci)["format"] == 2


SHARED_CACHE_USER = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path

    import modlib
    from modlib.training import zoo
    sys.path.insert(0, sys.argv[2])
    from test_faults import _fake_image_model

    ready = Path(sys.argv[1])
    (ready / f"ready-{sys.argv[3]}").touch()
    for _ in range(30_000):  # both processes start on the cache together (at most ~300 s)
        if len(list(ready.glob("ready-*"))) == 2:
            break
        time.sleep(0.01)
    zoo._image_model = _fake_image_model
    for i in range(10):  # write, read, write ... the same entry as the other process
        pt = modlib.pretrained("mnist-cnn", profile="ci", progress=False, retrain=i % 2 == 0)
        assert pt.model.conv1.out_channels == modlib.profile("ci").width
    print("ok")
""")


@pytest.mark.slow
def test_two_processes_share_one_cache(tmp_path):
    cache = tmp_path / "cache"
    env = _env(MODLIB_CACHE=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", SHARED_CACHE_USER, str(tmp_path),
                               str(ROOT / "tests"), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
        assert out.decode().strip() == "ok"
    entries = list((cache / "pretrained").iterdir())
    assert [p.name for p in entries] == [_entry("mnist-cnn").name]
    saved = torch.load(entries[0], weights_only=True)
    assert saved["meta"]["key"] == zoo._cache_key("mnist-cnn", profile("ci"))
