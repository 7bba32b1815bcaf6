import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modlib import ClusterabilityLoss
from modlib.models import PaperMLP
from modlib.train import History, TrainConfig, evaluate, fit, load_checkpoint


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
               disable=True)
    assert len(hist.steps) == 16 and len(hist.epochs) == 2
    assert hist.epochs[-1]["accuracy"] > 0.9
    assert hist.column("task_loss", per="steps")[-1] < hist.column("task_loss", per="steps")[0]


def test_fit_with_clusterability_loss_makes_layers_modular():
    model = _model()
    loss = ClusterabilityLoss(model, 4)
    cfg = TrainConfig(epochs=6, lr=5e-3, lam=20.0, lam_warmup_steps=8)
    hist = fit(model, _loader(), config=cfg, loss=loss, eval_loader=_loader(), disable=True)
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
    fit(a, _loader(), config=TrainConfig(epochs=1), disable=True)
    fit(b, _loader(), config=TrainConfig(epochs=1), disable=True)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_is_bit_identical(tmp_path):
    straight = _model()
    loss = ClusterabilityLoss(straight, 4)
    cfg = TrainConfig(epochs=2, checkpoint_dir=str(tmp_path / "a"))
    fit(straight, _loader(), config=cfg, loss=loss, disable=True)

    first = _model()
    cfg1 = TrainConfig(epochs=1, checkpoint_dir=str(tmp_path / "b"))
    fit(first, _loader(), config=cfg1, loss=ClusterabilityLoss(first, 4), disable=True)
    resumed = _model()
    hist = fit(resumed, _loader(), config=TrainConfig(epochs=2),
               loss=ClusterabilityLoss(resumed, 4), resume=tmp_path / "b" / "last.pt", disable=True)
    assert len(hist.epochs) == 2 and len(hist.steps) == 16
    for pa, pb in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_checkpoint_holds_config_and_loads_with_weights_only(tmp_path):
    model = _model()
    fit(model, _loader(), config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path)),
        disable=True)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["config"]["epochs"] == 1 and ckpt["epoch"] == 1 and ckpt["step"] == 8
    assert TrainConfig.from_dict(ckpt["config"]) == TrainConfig(epochs=1,
                                                                checkpoint_dir=str(tmp_path))
    assert isinstance(History(**ckpt["history"]), History)
    assert list(tmp_path.iterdir()) == [tmp_path / "last.pt"]  # no temporary files left


def test_nan_loss_stops_with_the_step_named():
    model = _model()
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"became nan at step 0 \(epoch 0\)"):
        fit(model, _loader(), disable=True)


def test_max_steps_and_language_model_task():
    vocab, T = 11, 8
    tokens = torch.randint(vocab, (64, T + 1), generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Embedding(vocab, 16), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, vocab))
    cfg = TrainConfig(task="lm", epochs=5, max_steps=3)
    hist = fit(model, DataLoader(tokens, batch_size=16), config=cfg,
               eval_loader=DataLoader(tokens, batch_size=16), disable=True)
    assert len(hist.steps) == 3 and len(hist.epochs) == 1
    assert math.isclose(hist.epochs[0]["perplexity"], math.exp(hist.epochs[0]["eval_loss"]),
                        rel_tol=1e-5)


def test_evaluate_accuracy():
    X = torch.eye(3)
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    assert evaluate(model, [(X, torch.tensor([0, 1, 2]))])["accuracy"] == 1.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(task="regress"), r"'task' must be one of \('classify', 'lm'\). Got 'regress'"),
    (dict(epochs=0), r"'epochs' must be >= 1. Got 0"),
    (dict(lam=-1.0), r"'lam' must be >= 0 and 'lr' > 0. Got lam=-1.0"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_other_errors():
    with pytest.raises(ValueError, match=r"Unknown TrainConfig fields: \['nope'\]"):
        TrainConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match=r"'loss' was built for another model"):
        fit(_model(), _loader(), loss=ClusterabilityLoss(_model(), 4), disable=True)
    with pytest.raises(ValueError, match=r"'loader' yielded no data"):
        evaluate(_model(), [])


def test_world_size_and_main_process_follow_the_launcher(monkeypatch):
    from modlib.train import is_main_process, world_size

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
    fit(nn.Linear(4, 2), loader, config=TrainConfig(epochs=2), accelerator=acc, disable=True)
    assert acc.prepared and acc.backwards == 8
