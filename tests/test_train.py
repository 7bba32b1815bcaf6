import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modlib import ClusterabilityLoss
from modlib.training import precision as mprecision
from modlib.training.models import PaperMLP
from modlib.training.train import History, TrainConfig, amp_plan, evaluate, fit, load_checkpoint


def _blobs(n=256, seed=0):
    """Four Gaussian blobs in 784 dimensions: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(4, (n,), generator=g)
    centres = torch.randn(4, 784, generator=g)
    X = centres[y] + 0.5 * torch.randn(n, 784, generator=g)
    return TensorDataset(X, y)


def _loader(seed=0):
    return DataLoader(_blobs(), batch_size=32, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _model():
    torch.manual_seed(0)
    return PaperMLP(hidden=32, n_classes=4)


def test_fit_learns_and_records_history():
    model = _model()
    hist = fit(model, _loader(), config=TrainConfig(epochs=2, lr=3e-3), eval_loader=_loader(),
               progress=False)
    assert len(hist.steps) == 16 and len(hist.epochs) == 2
    assert hist.epochs[-1]["accuracy"] > 0.9
    assert hist.column("task_loss", per="steps")[-1] < hist.column("task_loss", per="steps")[0]


def test_fit_with_clusterability_loss_makes_layers_modular():
    model = _model()
    loss = ClusterabilityLoss(model, 4)
    cfg = TrainConfig(epochs=6, lr=5e-3, lam=20.0, lam_warmup_steps=8)
    hist = fit(model, _loader(), config=cfg, loss=loss, eval_loader=_loader(), progress=False)
    assert hist.steps[0]["lam"] == pytest.approx(20.0 / 8)  # warm-up
    assert hist.steps[-1]["lam"] == 20.0
    assert "layers" in hist.steps[0] and "layers" not in hist.steps[1]
    assert min(hist.epochs[-1]["layers"].values()) > 0.9
    assert hist.epochs[-1]["accuracy"] > 0.9


@pytest.mark.parametrize("batch_size,per_epoch_bars", [(32, True), (256, False)])
def test_progress_bars_per_epoch_only_when_an_epoch_has_several_batches(
        batch_size, per_epoch_bars, capsys):
    loader = DataLoader(_blobs(), batch_size=batch_size)  # 256 examples: 8 batches, or 1
    fit(_model(), loader, config=TrainConfig(epochs=2))
    err = capsys.readouterr().err
    assert "epochs" in err
    assert ("epoch 1" in err) is per_epoch_bars


def test_same_seed_same_result():
    a, b = _model(), _model()
    fit(a, _loader(), config=TrainConfig(epochs=1), progress=False)
    fit(b, _loader(), config=TrainConfig(epochs=1), progress=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_is_bit_identical(tmp_path):
    straight = _model()
    loss = ClusterabilityLoss(straight, 4)
    cfg = TrainConfig(epochs=2, checkpoint_dir=str(tmp_path / "a"))
    fit(straight, _loader(), config=cfg, loss=loss, progress=False)

    first = _model()
    cfg1 = TrainConfig(epochs=1, checkpoint_dir=str(tmp_path / "b"))
    fit(first, _loader(), config=cfg1, loss=ClusterabilityLoss(first, 4), progress=False)
    resumed = _model()
    with pytest.warns(UserWarning, match=r"with epochs=2; the checkpoint was written with "
                                         r"epochs=1\."):
        hist = fit(resumed, _loader(), config=TrainConfig(epochs=2),
                   loss=ClusterabilityLoss(resumed, 4), resume=tmp_path / "b" / "last.pt",
                   progress=False)
    assert len(hist.epochs) == 2 and len(hist.steps) == 16
    for pa, pb in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_checkpoint_holds_config_and_loads_with_weights_only(tmp_path):
    model = _model()
    hist = fit(model, _loader(), config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path)),
               progress=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["config"]["epochs"] == 1 and ckpt["epoch"] == 1 and ckpt["step"] == 8
    assert TrainConfig.from_dict(ckpt["config"]) == TrainConfig(epochs=1,
                                                                checkpoint_dir=str(tmp_path))
    assert History(**ckpt["history"]) == hist
    assert list(tmp_path.iterdir()) == [tmp_path / "last.pt"]  # no temporary files left


def test_nan_loss_stops_with_the_step_named():
    model = _model()
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"became nan at step 0 \(epoch 0\)"):
        fit(model, _loader(), progress=False)


def test_max_steps_and_language_model_task():
    vocab, T = 11, 8
    tokens = torch.randint(vocab, (64, T + 1), generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Embedding(vocab, 16), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, vocab))
    cfg = TrainConfig(task="lm", epochs=5, max_steps=3)
    hist = fit(model, DataLoader(tokens, batch_size=16), config=cfg,
               eval_loader=DataLoader(tokens, batch_size=16), progress=False)
    assert len(hist.steps) == 3 and len(hist.epochs) == 1
    assert math.isclose(hist.epochs[0]["perplexity"], math.exp(hist.epochs[0]["eval_loss"]),
                        rel_tol=1e-5)


def test_evaluate_accuracy():
    X = torch.eye(3)
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    assert evaluate(model, [(X, torch.tensor([0, 1, 2]))])["accuracy"] == 1.0
    assert evaluate(model, [(X, torch.tensor([0, 1, 1]))])["accuracy"] == pytest.approx(2 / 3)


def test_evaluate_runs_in_eval_mode_and_restores_each_modules_mode():
    torch.manual_seed(0)
    frozen = nn.Linear(4, 4)
    model = nn.Sequential(frozen, nn.Dropout(0.9), nn.Linear(4, 2))
    model.train()
    frozen.eval()  # a frozen part inside a model being trained keeps its own mode
    X, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model.eval()(X), y).item()  # no dropout
    model.train()
    frozen.eval()
    assert evaluate(model, [(X, y)])["eval_loss"] == pytest.approx(expected, rel=1e-6)
    assert model.training and model[1].training and not frozen.training
    with pytest.raises(ValueError, match="yielded no data"):
        evaluate(model, [])
    assert model.training and not frozen.training  # restored on an error too


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(task="regress"), ValueError,
     r"'task' must be one of \('classify', 'lm'\)\. Got 'regress'\."),
    (dict(epochs=0), ValueError, r"'epochs' must be an int >= 1\. Got 0\."),
    (dict(epochs=2.0), TypeError, r"'epochs' must be an int >= 1\. Got float 2\.0\."),
    (dict(lam=-1.0), ValueError, r"'lam' must be a finite real >= 0\. Got -1\.0\."),
    (dict(lr=0), ValueError, r"'lr' must be a finite real > 0\. Got 0\.0\."),
    (dict(lr=float("nan")), ValueError, r"'lr' must be a finite real > 0\. Got nan\."),
    (dict(weight_decay=-0.1), ValueError, r"'weight_decay' must be a finite real >= 0\."),
    (dict(betas=(0.9, 1.0)), ValueError, r"'betas\[1\]' must be a finite real >= 0 and < 1\. "
                                         r"Got 1\.0\."),
    (dict(betas=(0.9,)), ValueError, r"'betas' must be a pair \(beta1, beta2\)\. Got \(0\.9,\)"),
    (dict(lam_warmup_steps=-1), ValueError, r"'lam_warmup_steps' must be an int >= 0\. Got -1"),
    (dict(clip_grad=0.0), ValueError, r"'clip_grad' must be a finite real > 0 or None\. "
                                      r"Got 0\.0\."),
    (dict(max_steps=0), ValueError, r"'max_steps' must be an int >= 1 or None\. Got 0\."),
    (dict(seed=-1), ValueError, r"'seed' must be an int >= 0\. Got -1\."),
    (dict(log_every=True), TypeError, r"'log_every' must be an int >= 1\. Got bool True\."),
    (dict(epochs=2.5), TypeError, r"'epochs' must be an int >= 1\. Got float 2\.5\."),
    (dict(clip_grad=-1.0), ValueError, r"'clip_grad' must be a finite real > 0 or None\. "
                                       r"Got -1\.0\."),
    (dict(clip_grad=float("inf")), ValueError, r"'clip_grad' must be a finite real > 0 or None"),
    (dict(lam=float("inf")), ValueError, r"'lam' must be a finite real >= 0\. Got inf\."),
    (dict(lr="1e-3"), TypeError, r"'lr' must be a finite real > 0\. Got str '1e-3'\."),
    (dict(max_steps=2.0), TypeError, r"'max_steps' must be an int >= 1 or None\."),
    (dict(betas=0.9), TypeError, r"'betas' must be a pair \(beta1, beta2\)\. Got float 0\.9\."),
    (dict(betas=(0.9, float("nan"))), ValueError, r"'betas\[1\]' must be a finite real"),
    (dict(checkpoint_dir=3), TypeError, r"'checkpoint_dir' must be a folder \(str or path\) or "
                                        r"None\. Got 3\."),
    (dict(checkpoint_dir=""), ValueError, r"'checkpoint_dir' must be a folder"),
])
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_config_is_normalised_and_checked_again_by_fit(tmp_path):
    cfg = TrainConfig(betas=[0.8, 0.9], checkpoint_dir=tmp_path, clip_grad=2)
    assert cfg.betas == (0.8, 0.9) and cfg.checkpoint_dir == str(tmp_path)
    assert isinstance(cfg.clip_grad, float)
    cfg.clip_grad = -1.0  # changed after it was made: gradient ascent, were it not refused
    model = _model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"'clip_grad' must be a finite real > 0 or None"):
        fit(model, _loader(), config=cfg, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _tokens_loader():
    return DataLoader(torch.randint(11, (8, 5)), batch_size=4)


@pytest.mark.parametrize(("loader", "task", "match"), [
    (DataLoader(TensorDataset(torch.randn(4, 784)), batch_size=2), "classify",
     r"'train_loader' must yield batches \(X, y\) of two tensors .* Got a list of 1 items "
     r"\(Tensor of dtype torch\.float32 and shape \(2, 784\)\)\."),
    ([(torch.randn(4, 784), [0, 1, 2, 3])], "classify",
     r"'train_loader' must yield batches \(X, y\) .* Got a tuple of 2 items \(Tensor .*, "
     r"list \[0, 1, 2, 3\]\)"),
    ([(torch.randn(4, 784), torch.tensor([0, 1, 2]))], "classify",
     r"'train_loader' must yield batches \(X, y\) of two tensors with the same number of "
     r"samples"),
    ([torch.randn(4, 784)], "classify", r"'train_loader' must yield batches \(X, y\)"),
    ([torch.randn(4, 6)], "lm", r"'train_loader' must yield token blocks: integer tensors "
                                r"\(B, T \+ 1\) with T >= 1 \(task='lm'\)\. Got Tensor of dtype "
                                r"torch\.float32"),
    ([torch.randint(11, (4,))], "lm", r"'train_loader' must yield token blocks"),
])
def test_a_batch_that_is_not_what_the_task_needs_is_refused(loader, task, match):
    with pytest.raises(ValueError, match=match):
        fit(_model(), loader, config=TrainConfig(task=task), progress=False)


def test_a_bad_eval_batch_names_the_eval_loader():
    with pytest.raises(ValueError, match=r"'eval_loader' must yield batches \(X, y\)"):
        fit(_model(), _loader(), eval_loader=[torch.randn(4, 784)], progress=False)
    with pytest.raises(ValueError, match=r"'loader' must yield batches \(X, y\)"):
        evaluate(_model(), [torch.randn(4, 784)])


@pytest.mark.parametrize("kwargs", [
    dict(train_loader=DataLoader(TensorDataset(torch.randn(0, 784),
                                               torch.zeros(0, dtype=torch.long)))),
    dict(train_loader=DataLoader(_blobs(n=8), batch_size=16, drop_last=True)),
    dict(train_loader=[]),
])
def test_an_empty_loader_is_refused_before_training(kwargs):
    model = _model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"'train_loader' is empty: it yields no batches"):
        fit(model, **kwargs, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_an_iterable_loader_that_yields_nothing_is_refused():
    with pytest.raises(ValueError, match=r"'train_loader' yielded no batches in epoch 1"):
        fit(_model(), iter([]), progress=False)
    with pytest.raises(ValueError, match=r"'eval_loader' is empty"):
        fit(_model(), _loader(), eval_loader=[], progress=False)
    with pytest.raises(TypeError, match=r"'train_loader' must be a DataLoader .* Got 3\."):
        fit(_model(), 3, progress=False)


def test_a_loss_layer_replaced_after_the_loss_was_built_is_named():
    model = _model()
    loss = ClusterabilityLoss(model, 4)
    model.fc3 = nn.Linear(32, 32, bias=False)  # fc2 is still the model's, fc3 is not
    with pytest.raises(ValueError, match=r"'loss' layer 'fc3' is no longer a module of 'model': "
                                         r"model\.fc3 was replaced after the loss was built\."):
        fit(model, _loader(), loss=loss, progress=False)


def test_a_loss_layer_reshaped_after_the_loss_was_built_is_named():
    model = _model()
    loss = ClusterabilityLoss(model, 4)
    model.fc2.weight = nn.Parameter(torch.randn(32, 16))  # same module, other shape
    with pytest.raises(ValueError, match=r"'loss' layer 'fc2' has weights of shape \(32, 16\) now, "
                                         r"but the loss was built for \(32, 32\)"):
        fit(model, _loader(), loss=loss, progress=False)


def test_other_errors():
    with pytest.raises(ValueError, match=r"Unknown TrainConfig fields: \['nope'\]"):
        TrainConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match=r"'loss' was built for another model"):
        fit(_model(), _loader(), loss=ClusterabilityLoss(_model(), 4), progress=False)
    with pytest.raises(ValueError, match=r"'loader' yielded no data"):
        evaluate(_model(), [])
    with pytest.raises(TypeError, match=r"'model' must be a torch\.nn\.Module\. Got str 'mlp'\."):
        fit("mlp", _loader())
    with pytest.raises(TypeError, match=r"'config' must be a TrainConfig or None\. Got dict "
                                        r".*; build one with TrainConfig\(\*\*config\)\."):
        fit(_model(), _loader(), config={"epochs": 1})
    with pytest.raises(TypeError, match=r"'loss' must be a ClusterabilityLoss or BIMTLoss of "
                                        r"'model' or None\. Got float 0\.5\."):
        fit(_model(), _loader(), loss=0.5)
    with pytest.raises(TypeError, match=r"'d' must be a dict of TrainConfig fields"):
        TrainConfig.from_dict([("epochs", 1)])
    with pytest.raises(TypeError, match=r"'progress' must be True or False\. Got 0\."):
        fit(_model(), _loader(), progress=0)
    with pytest.raises(ValueError, match=r"'task' must be one of \('classify', 'lm'\)\."):
        evaluate(_model(), [], task="regress")


def test_world_size_and_main_process_follow_the_launcher(monkeypatch):
    from modlib.training.train import is_main_process, world_size

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert world_size() == 1 and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert world_size() == 4 and not is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        world_size()


def test_fit_uses_a_given_accelerator():
    class Recorder:  # the part of accelerate.Accelerator that fit uses
        is_main_process = is_local_main_process = True

        def __init__(self):
            self.prepared, self.backwards = False, 0

        def prepare(self, *objects):
            self.prepared = True
            return objects

        def backward(self, loss):
            self.backwards += 1
            loss.backward()

    torch.manual_seed(0)
    X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    loader = DataLoader(TensorDataset(X, y), batch_size=8)
    acc = Recorder()
    fit(nn.Linear(4, 2), loader, config=TrainConfig(epochs=2), accelerator=acc, progress=False)
    assert acc.prepared and acc.backwards == 8


# ---- mixed precision: amp_plan and the fp16 / bf16 / fp32 paths of fit ----------------------


@pytest.mark.parametrize(("device", "precision", "capability", "expected"), [
    ("cpu", "auto", None, "fp32"),
    ("cuda", "auto", (7, 5), "fp16"),  # T4: no bfloat16 tensor cores
    ("cuda", "auto", (7, 0), "fp16"),  # V100
    ("cuda", "auto", (8, 0), "bf16"),  # A100
    ("cuda", "auto", (9, 0), "bf16"),  # H100
    ("cuda:1", "auto", (8, 6), "bf16"),
    ("cpu", "fp16", None, "fp16"),  # forced: kept as asked
    ("cpu", "bf16", None, "bf16"),
    ("cuda", "fp32", (8, 0), "fp32"),
    ("cuda", "fp16", (9, 0), "fp16"),
    ("cuda", "bf16", (8, 0), "bf16"),
])
def test_amp_plan_for_each_device_and_capability(device, precision, capability, expected):
    assert amp_plan(device, precision, capability=capability) == expected


def test_the_precision_logic_lives_in_its_own_module_and_train_re_exports_it():
    import modlib

    assert modlib.train.amp_plan is mprecision.amp_plan is modlib.precision.amp_plan
    assert modlib.train.Precision is mprecision.Precision
    assert mprecision.grad_scaler(torch.device("cpu"), "fp32") is None
    assert isinstance(mprecision.grad_scaler(torch.device("cpu"), "fp16"), torch.amp.GradScaler)
    with mprecision.autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with mprecision.autocast(torch.device("cpu"), "fp16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.float16


def test_amp_plan_asks_a_cuda_device_for_its_capability(monkeypatch):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda device=None: asked.append(device) or (7, 5))
    assert amp_plan(torch.device("cuda", 0)) == "fp16" and len(asked) == 1
    assert amp_plan("cpu") == "fp32" and amp_plan("cuda", "fp16") == "fp16"
    assert len(asked) == 1  # neither the CPU nor a forced fp16 needs the answer


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(device="cuda", precision="bf16", capability=(7, 5)),
     r"'precision' 'bf16' needs a GPU of compute capability >= 8.0 .* this one has 7.5"),
    (dict(device="cpu", precision="fp8"),
     r"'precision' must be one of \('auto', 'bf16', 'fp16', 'fp32'\). Got 'fp8'"),
])
def test_amp_plan_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        amp_plan(**kwargs)


def test_precision_in_the_config_and_in_old_checkpoints():
    with pytest.raises(ValueError, match=r"'precision' must be one of .* Got 'half'"):
        TrainConfig(precision="half")
    assert TrainConfig().precision == "auto"
    assert TrainConfig.from_dict({"amp": True}).precision == "auto"  # saved before 'precision'
    assert TrainConfig.from_dict({"amp": False, "epochs": 2}) == TrainConfig(precision="fp32",
                                                                             epochs=2)


@pytest.fixture
def scaler_calls(monkeypatch):
    """Every GradScaler call and every gradient clipping (with the norm it saw), in order."""
    calls = []

    class Spy(torch.amp.GradScaler):
        def scale(self, outputs):
            calls.append("scale")
            return super().scale(outputs)

        def unscale_(self, optimizer):
            calls.append("unscale_")
            return super().unscale_(optimizer)

        def step(self, optimizer, *args, **kwargs):
            calls.append("step")
            return super().step(optimizer, *args, **kwargs)

        def update(self, new_scale=None):
            calls.append(("update", self.get_scale()))
            return super().update(new_scale)

    clip = torch.nn.utils.clip_grad_norm_

    def spy_clip(parameters, max_norm, *args, **kwargs):
        norm = clip(parameters, max_norm, *args, **kwargs)
        calls.append(("clip", float(norm)))
        return norm

    monkeypatch.setattr(torch.amp, "GradScaler", Spy)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy_clip)
    return calls


def _trains(model, hist):
    losses = hist.column("task_loss", per="steps")
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert hist.epochs[-1]["accuracy"] > 0.9


def test_fp16_scales_the_loss_and_unscales_before_clipping(scaler_calls):
    model = _model()
    loss = ClusterabilityLoss(model, 4)
    cfg = TrainConfig(epochs=3, lr=3e-3, lam=2.0, precision="fp16", clip_grad=1.0)
    hist = fit(model, _loader(), config=cfg, loss=loss, eval_loader=_loader(), progress=False)
    _trains(model, hist)
    per_step = [c if isinstance(c, str) else c[0] for c in scaler_calls[:5]]
    assert per_step == ["scale", "unscale_", "clip", "step", "update"]
    assert len(scaler_calls) == 5 * len(hist.steps)
    scales = [c[1] for c in scaler_calls if c[0] == "update"]
    norms = [c[1] for c in scaler_calls if c[0] == "clip"]
    assert min(scales) >= 1024  # the loss was scaled up by thousands ...
    assert max(norms) < 100  # ... and the clipped gradients were the unscaled ones


def test_fp16_without_clipping_still_unscales_through_the_scaler(scaler_calls):
    model = _model()
    cfg = TrainConfig(epochs=3, lr=3e-3, precision="fp16", clip_grad=None)
    _trains(model, fit(model, _loader(), config=cfg, eval_loader=_loader(), progress=False))
    assert scaler_calls[:3] == ["scale", "unscale_", "step"] and scaler_calls[3][0] == "update"
    assert not any(c[0] == "clip" for c in scaler_calls if isinstance(c, tuple))


@pytest.mark.parametrize("precision", ["bf16", "fp32", "auto"])
def test_bf16_fp32_and_auto_on_the_cpu_train_without_a_scaler(precision, monkeypatch):
    def no_scaler(*args, **kwargs):
        raise AssertionError("a GradScaler outside fp16")

    monkeypatch.setattr(torch.amp, "GradScaler", no_scaler)
    model, autocast_seen = _model(), []
    model.register_forward_hook(
        lambda m, i, o: autocast_seen.append((torch.is_autocast_enabled("cpu"), o.dtype)))
    cfg = TrainConfig(epochs=3, lr=3e-3, precision=precision)
    _trains(model, fit(model, _loader(), config=cfg, eval_loader=_loader(), progress=False))
    expected = (True, torch.bfloat16) if precision == "bf16" else (False, torch.float32)
    assert set(autocast_seen[:8]) == {expected}  # the first epoch's 8 training batches ...
    assert set(autocast_seen[8:16]) == {(False, torch.float32)}  # ... its evaluation: fp32


def test_auto_on_the_cpu_is_exactly_fp32():
    a, b = _model(), _model()
    fit(a, _loader(), config=TrainConfig(epochs=1), progress=False)
    fit(b, _loader(), config=TrainConfig(epochs=1, precision="fp32"), progress=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_clusterability_loss_stays_float32_outside_autocast(precision):
    seen = []

    class Watched(ClusterabilityLoss):
        def forward(self):
            out = super().forward()
            seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
            return out

    model = _model()
    fit(model, _loader(), config=TrainConfig(epochs=1, precision=precision),
        loss=Watched(model, 4), progress=False)
    assert set(seen) == {(False, torch.float32)}
    with torch.autocast("cpu", dtype=torch.bfloat16):  # even if called inside autocast
        assert Watched(model, 4)().dtype == torch.float32


def test_fp16_checkpoint_holds_the_scaler_and_resumes_bit_identically(tmp_path):
    straight = _model()
    fit(straight, _loader(), config=TrainConfig(epochs=2, precision="fp16"),
        loss=ClusterabilityLoss(straight, 4), progress=False)
    first = _model()
    cfg1 = TrainConfig(epochs=1, precision="fp16", checkpoint_dir=str(tmp_path))
    fit(first, _loader(), config=cfg1, loss=ClusterabilityLoss(first, 4), progress=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    scale = ckpt["scaler"]["scale"]  # 2 ** 16 at the start, halved at each overflow, not grown
    assert scale <= 2.0**16 and math.log2(scale).is_integer()  # within 2000 steps
    assert ckpt["config"]["precision"] == "fp16"
    resumed = _model()
    with pytest.warns(UserWarning, match="epochs=2"):
        fit(resumed, _loader(), config=TrainConfig(epochs=2, precision="fp16"),
            loss=ClusterabilityLoss(resumed, 4), resume=tmp_path / "last.pt", progress=False)
    for pa, pb in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)
    fit(first, _loader(), config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path)),
        progress=False)
    assert load_checkpoint(tmp_path / "last.pt")["scaler"] is None  # fp32: nothing to scale


def test_fit_leaves_no_gradients_behind():
    model = _model()
    fit(model, _loader(), config=TrainConfig(epochs=1), progress=False)
    assert all(p.grad is None for p in model.parameters())


def test_an_accelerator_with_its_own_mixed_precision_autocasts_and_clips_itself(monkeypatch):
    class Recorder:  # accelerate launch --mixed_precision fp16: Accelerate scales the loss
        is_main_process = is_local_main_process = True
        mixed_precision = "fp16"

        def __init__(self):
            self.clipped = 0

        def prepare(self, *objects):
            return objects

        def backward(self, loss):
            loss.backward()

        def clip_grad_norm_(self, parameters, max_norm):
            self.clipped += 1
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def no_scaler(*args, **kwargs):
        raise AssertionError("a second GradScaler beside Accelerate's")

    monkeypatch.setattr(torch.amp, "GradScaler", no_scaler)
    acc = Recorder()
    fit(_model(), _loader(), config=TrainConfig(epochs=1, precision="fp16"), accelerator=acc,
        progress=False)
    assert acc.clipped == 8

