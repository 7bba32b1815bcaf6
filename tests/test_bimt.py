"""Brain-inspired modular training: the connection cost, the swaps, fit and reproduce."""

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

import modlib
from modlib import BIMTLoss, ClusterabilityLoss
from modlib.training.models import MnistCNN, ModAddTransformer
from modlib.training.train import TrainConfig, fit
from tests.nets import ConvNet
from tests.test_train import _loader, _model


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(),
                         nn.Linear(8, 3))


def test_the_cost_is_the_weighted_length_of_every_connection():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    bimt = BIMTLoss(net, gap=0.5)
    assert bimt.sizes == [3, 4, 2] and bimt.hidden_sizes == [4]
    expected = 0.0
    for layer in (net[0], net[2]):
        n_out, n_in = layer.weight.shape
        for i in range(n_out):
            for j in range(n_in):
                dx = (i + 0.5) / n_out - (j + 0.5) / n_in
                w = float(layer.weight[i, j].detach())
                expected += abs(w) * math.sqrt(dx * dx + 0.25)
    assert bimt.connection_cost() == pytest.approx(expected, rel=1e-5)
    cost = bimt()
    cost.backward()  # differentiable: the gradient of |W| d is sign(W) d
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_channels_and_their_flattened_maps_are_one_neuron_each():
    net = ConvNet()  # conv 1 -> 3 channels of 4 x 4, fc1 48 -> 12, fc2 12 -> 3
    bimt = BIMTLoss(net)
    assert bimt.layer_names == ["conv", "fc1", "fc2"]
    assert bimt.sizes == [1, 3, 12, 3] and bimt.groups == [1, 16, 1]


def _small_cnn():
    """conv (3 channels) -> ReLU -> 2 x 2 max-pool -> flatten -> fc 12 -> 5 -> 2."""
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2))


def _trained(model, x, steps=3):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return opt


def _clone(model, opt):
    twin = copy.deepcopy(model)
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-2)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # not sharing 'step' tensors
    return twin, twin_opt


CHAINS = [
    pytest.param(lambda: _mlp(), None, (16, 6), id="mlp"),
    pytest.param(_small_cnn, None, (8, 1, 4, 4), id="conv-then-flattened"),
    pytest.param(lambda: MnistCNN(width=4), None, (4, 1, 28, 28), id="mnist-cnn"),
    pytest.param(lambda: ModAddTransformer(7, d_model=8, n_heads=2, d_mlp=12),
                 ["mlp.fc_in", "mlp.fc_out"], None, id="transformer-mlp"),
]


@pytest.mark.parametrize("make,layers,shape", CHAINS)
def test_swaps_keep_the_function_and_the_optimiser_state_with_it(make, layers, shape):
    torch.manual_seed(0)
    model = make()
    x = torch.randint(0, 8, (16, 3)) if shape is None else torch.randn(shape)
    opt = _trained(model, x)
    twin, twin_opt = _clone(model, opt)
    bimt = BIMTLoss(model, layers)
    before = bimt.connection_cost()
    assert bimt.swap(opt) > 0  # a random network has connections to shorten
    assert bimt.connection_cost() < before
    with torch.no_grad():
        torch.testing.assert_close(model(x), twin(x), atol=1e-5, rtol=1e-5)
    # one more step on each: the same function only if AdamW's moments moved with the weights
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    with torch.no_grad():
        torch.testing.assert_close(model(x), twin(x), atol=1e-5, rtol=1e-4)


def test_swaps_undo_a_scrambled_order():
    """Hidden neurons wired in reverse: the swaps find the order of the shortest wiring."""
    net = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(4).flip(0))  # hidden i reads input 3 - i
        net[2].weight.copy_(torch.eye(4).flip(1))  # output j reads hidden 3 - j
    bimt = BIMTLoss(net, gap=0.1)
    assert bimt.swap() == 2
    assert torch.equal(net[0].weight, torch.eye(4)) and torch.equal(net[2].weight, torch.eye(4))
    assert bimt.swap() == 0  # nothing left to shorten
    assert bimt.connection_cost() == pytest.approx(8 * 0.1)


BAD = [
    pytest.param(lambda: BIMTLoss([1, 2]), TypeError, r"'model' must be a torch.nn.Module",
                 id="model"),
    pytest.param(lambda: BIMTLoss(ModAddTransformer(7, d_model=8, n_heads=2, d_mlp=12)),
                 ValueError, r"has layers other than Linear and Conv2d with parameters "
                             r"\(\['embed'.*may not form one chain. Name the chain with 'layers'",
                 id="transformer-default"),
    pytest.param(lambda: BIMTLoss(_mlp(), ["4", "0"]), ValueError,
                 r"'layers' must form a chain, each layer taking the previous one's outputs: "
                 r"'0' takes 6 inputs, but '4' gives 3 outputs", id="not-a-chain"),
    pytest.param(lambda: BIMTLoss(_mlp(), ["0", "9"]), ValueError,
                 r"'layers' names layers that are not in the model: \['9'\]", id="unknown"),
    pytest.param(lambda: BIMTLoss(_mlp(), ["0", "0"]), ValueError,
                 r"'layers' names a layer twice", id="twice"),
    pytest.param(lambda: BIMTLoss(_mlp(), ["1"]), TypeError,
                 r"BIMT places the neurons of Linear and Conv2d layers; layer '1' is ReLU",
                 id="relu"),
    pytest.param(lambda: BIMTLoss(_mlp(), "0"), TypeError,
                 r"'layers' must be a list of layer names. Got str", id="layers-str"),
    pytest.param(lambda: BIMTLoss(nn.Sequential(nn.ReLU())), ValueError,
                 r"no Linear or Conv2d layer", id="no-layers"),
    pytest.param(lambda: BIMTLoss(_mlp(), gap=0), ValueError,
                 r"'gap' must be a finite real > 0. Got 0", id="gap-0"),
    pytest.param(lambda: BIMTLoss(_mlp(), gap=float("nan")), ValueError,
                 r"'gap' must be a finite real > 0. Got nan", id="gap-nan"),
    pytest.param(lambda: BIMTLoss(_mlp(), swap_every=0), ValueError,
                 r"'swap_every' must be an int >= 1. Got 0", id="swap-every-0"),
    pytest.param(lambda: BIMTLoss(_mlp(), swap_every=2.5), TypeError,
                 r"'swap_every' must be an int >= 1. Got float 2.5", id="swap-every-float"),
]


@pytest.mark.parametrize("call,error,match", BAD)
def test_bad_arguments_are_refused_in_one_message(call, error, match):
    with pytest.raises(error, match=match):
        call()




def test_fit_trains_with_the_cost_and_swaps_on_schedule():
    plain, model = _model(), _model()
    cfg = TrainConfig(epochs=2, lr=3e-3, lam=1e-3)
    fit(plain, _loader(), config=dataclasses.replace(cfg, lam=0.0), progress=False)
    bimt = BIMTLoss(model, swap_every=4)
    hist = fit(model, _loader(), config=cfg, loss=bimt, eval_loader=_loader(),
               progress=False)
    assert [row["step"] for row in hist.steps if "swaps" in row] == [3, 7, 11, 15]
    assert all("connection_cost" in row and "clusterability" not in row for row in hist.steps)
    assert hist.epochs[-1]["connection_cost"] == pytest.approx(bimt.connection_cost())
    assert hist.epochs[-1]["accuracy"] > 0.9
    assert bimt.connection_cost() < BIMTLoss(plain).connection_cost()


def test_fit_refuses_a_bimt_loss_of_another_model():
    with pytest.raises(ValueError, match=r"'loss' was built for another model"):
        fit(_model(), _loader(), loss=BIMTLoss(_model()), progress=False)


def test_resume_with_swaps_is_bit_identical_and_keeps_to_its_loss(tmp_path):
    straight = _model()
    cfg = TrainConfig(epochs=2, lam=1e-3)
    fit(straight, _loader(), config=cfg, loss=BIMTLoss(straight, swap_every=3),
        progress=False)
    first = _model()
    fit(first, _loader(), config=dataclasses.replace(
        cfg, epochs=1, checkpoint_dir=str(tmp_path)), loss=BIMTLoss(first, swap_every=3),
        progress=False)
    resumed = _model()
    with pytest.warns(UserWarning, match="with epochs=2"):
        fit(resumed, _loader(), config=cfg, loss=BIMTLoss(resumed, swap_every=3),
            resume=tmp_path / "last.pt", progress=False)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    other = _model()
    with pytest.raises(ValueError, match=r"it was trained with a BIMT loss on layers "
                                         r"\['fc1', 'fc2', 'fc3', 'fc4'\] \(gap 0.2, swaps every 3 "
                                         r"steps\), but 'loss' is a clusterability loss"):
        fit(other, _loader(), config=cfg, loss=ClusterabilityLoss(other, 4),
            resume=tmp_path / "last.pt", progress=False)


def _seed_result(seed):
    run = lambda acc, c, cost, t: {  # noqa: E731
        "accuracy": acc, "clusterability": c, "clusterability_spectral": c + 0.1,
        "chance_level_spectral": 0.26, "connection_cost": cost, "seconds_per_step": t}
    return {"seed": seed, "baseline": run(0.95, 0.25, 100.0, 0.010),
            "modular": run(0.94, 0.99, 60.0, 0.012),
            "bimt": run(0.94 + 0.001 * seed, 0.40, 30.0 + seed, 0.0125)}


def test_summaries_compare_the_bimt_run_with_the_baseline():
    numbers = modlib.experiments.summarize([_seed_result(s) for s in range(3)])["numbers"]
    assert numbers["bimt_connection_cost_ratio"]["mean"] == pytest.approx(0.31)
    assert numbers["bimt_connection_cost_ratio"]["finding"]
    assert numbers["bimt_step_time_ratio"]["mean"] == pytest.approx(1.25)
    assert numbers["bimt_spectral_above_chance"]["mean"] == pytest.approx(0.24)
    assert numbers["modular_spectral_above_chance"]["mean"] == pytest.approx(0.83)
    assert numbers["bimt_accuracy_difference"]["mean"] == pytest.approx(-0.009)
    plain = modlib.experiments.summarize([{k: v for k, v in _seed_result(s).items()
                                           if k != "bimt"} for s in range(3)])["numbers"]
    assert not any(name.startswith("bimt") or "connection_cost" in name for name in plain)


def _tiny(name):
    ci = modlib.profile("ci")
    if name == "mnist":
        return dataclasses.replace(ci, mnist_train=256, mnist_test=256, mnist_epochs=2,
                                   width=4)
    return dataclasses.replace(ci, modadd_p=13, modadd_epochs=60)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "modadd"])
def test_reproduce_trains_a_bimt_model_beside_the_others(name, tmp_path, monkeypatch):
    import modlib.course.experiments as experiments

    monkeypatch.setenv("MODLIB_CACHE", str(tmp_path / "cache"))
    plain = modlib.reproduce(name, profile=_tiny(name), seeds=2, progress=False)
    trained = []

    def counting_fit(model, *args, loss=None, **kwargs):
        trained.append(type(loss).__name__)
        return fit(model, *args, loss=loss, **kwargs)

    monkeypatch.setattr(experiments, "fit", counting_fit)
    result = modlib.reproduce(name, profile=_tiny(name), seeds=2, progress=False,
                              method="bimt", out=tmp_path / "out")
    r = result.results
    # the runs without BIMT come from the cached plain run: only BIMT trains, once a seed
    assert trained == ["BIMTLoss", "BIMTLoss"]
    assert r["reused"] == sorted(experiments._runs(plain))
    for one, before in zip(r["seeds"], plain.results["seeds"], strict=True):
        assert all(one[run] == before[run] for run in experiments._runs(plain))
    assert torch.equal(next(result.baseline.model.parameters()),
                       next(plain.baseline.model.parameters()))
    assert r["method"] == "bimt" and r["bimt_lam"] == experiments.BIMT_LAMS[name]
    assert r["bimt_layers"] == (["conv1", "conv2", "fc1", "fc2", "fc3"] if name == "mnist"
                                else ["mlp.fc_in", "mlp.fc_out"])
    assert result.bimt is not None and (tmp_path / "out" / "bimt.pt").exists()
    rounds = [row["swaps"] for row in result.bimt.history.steps if "swaps" in row]
    steps = len(result.bimt.history.steps)  # a round every steps // 20 steps (at least 1)
    assert len(rounds) == steps // max(1, steps // experiments._BIMT_ROUNDS)
    for one in r["seeds"]:
        for run in ("baseline", "modular", "bimt"):
            assert one[run]["connection_cost"] > 0 and one[run]["seconds_per_step"] > 0
        assert one["bimt"]["connection_cost"] < one["baseline"]["connection_cost"]
    for key in ("bimt_connection_cost_ratio", "bimt_step_time_ratio",
                "bimt_spectral_above_chance", "modular_spectral_above_chance"):
        assert r["summary"]["numbers"][key]["n"] == 2
    # the runs of a seed start from one initialisation and see the same first batch
    first_loss = {run: getattr(result, run).history.steps[0]["task_loss"]
                  for run in ("baseline", "modular", "bimt")}
    assert len(set(first_loss.values())) == 1, first_loss

    def no_training(*args, **kwargs):
        pytest.fail("an identical run was trained again")

    monkeypatch.setattr(experiments, "fit", no_training)
    again = modlib.reproduce(name, profile=_tiny(name), seeds=2, progress=False, method="bimt")
    assert again.results == r and again.bimt is not None
    with pytest.raises(pytest.fail.Exception, match="trained again"):  # another λ: not reused
        modlib.reproduce(name, profile=_tiny(name), seeds=2, progress=False, method="bimt",
                         bimt_lam=2 * r["bimt_lam"])
    if name == "modadd":  # without the cache every run trains
        trained.clear()
        monkeypatch.setattr(experiments, "fit", counting_fit)
        modlib.reproduce(name, profile=_tiny(name), seeds=1, progress=False, method="bimt",
                         cache=False)
        assert trained == ["ClusterabilityLoss", "ClusterabilityLoss", "BIMTLoss"]
