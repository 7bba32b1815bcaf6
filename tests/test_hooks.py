"""Tests of modlib.hooks: every change to a model is undone, also when the block raises; masks
act on exactly what they name; replaying a frozen prefix gives the full forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modlib.hooks import (
    capture,
    capture_once,
    eval_mode,
    forward_hooks,
    frozen_prefix,
    masked_weights,
    record,
    replace_forward,
    zero_outputs,
)
from tests.nets import ConvNet, CountingConv, Twice


def _n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))


@pytest.fixture
def convnet() -> tuple[ConvNet, torch.Tensor]:
    torch.manual_seed(0)
    return ConvNet(CountingConv).eval(), torch.randn(24, 1, 4, 4)


# --- eval_mode and forward_hooks ---------------------------------------------------------------


def test_eval_mode_restores_each_modules_own_mode_even_when_the_body_raises():
    model = _mlp().train()
    model[2].eval()  # a mixed state: a frozen last layer in a model being trained
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        assert not any(m.training for m in model.modules())
        raise RuntimeError("inside the block")
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_forward_hooks_run_inside_and_are_removed_even_when_the_body_raises():
    model = _mlp()
    seen = []
    for pre in (False, True):
        with pytest.raises(RuntimeError), forward_hooks(
                {"0": model[0], "2": model[2]},
                lambda name, module: lambda *args: seen.append(name), pre=pre):
            assert _n_hooks(model) == 2
            model(torch.zeros(1, 3))
            raise RuntimeError("inside the block")
        assert _n_hooks(model) == 0
    assert seen == ["0", "2", "0", "2"]


def test_forward_hooks_registered_before_a_failing_one_are_removed():
    model = _mlp()

    def make_hook(name, module):
        if name == "2":
            raise ValueError("no hook for this one")
        return lambda *args: None

    with pytest.raises(ValueError, match="no hook"), forward_hooks(
            {"0": model[0], "2": model[2]}, make_hook):
        pass
    assert _n_hooks(model) == 0


def test_a_forward_hook_may_replace_the_output():
    model = _mlp()
    X = torch.randn(4, 3)
    with forward_hooks({"2": model[2]}, lambda n, m: lambda mod, i, out: out + 1.0):
        shifted = model(X)
    torch.testing.assert_close(shifted, model(X) + 1.0)


# --- record, capture, capture_once -------------------------------------------------------------


def test_record_keeps_the_last_forward_of_each_named_module():
    model = _mlp()
    X = torch.randn(4, 3)
    with record(model, ["0", "2"]) as acts:
        model(X[:1])
        out = model(X)
    assert acts["0"].shape == (4, 5) and torch.equal(acts["2"], out.detach())
    torch.testing.assert_close(acts["0"], model[0](X).detach())
    assert not acts["2"].requires_grad
    with record(model, "2", detach=False) as acts:
        model(X)
    assert acts["2"].requires_grad
    assert _n_hooks(model) == 0


def test_record_refuses_a_name_that_is_not_a_module():
    with pytest.raises(ValueError, match=r"'names' names layers that are not in the model: "
                                         r"\['fc'\]. Known: \['0', '1', '2'\]"):
        record(_mlp(), ["fc"]).__enter__()


def test_capture_returns_every_call_with_its_input_and_output():
    model = nn.Sequential(nn.Linear(3, 4))
    inputs = [torch.randn(2, 3), torch.randn(5, 3)]
    with capture({"fc": model[0]}) as seen:
        outs = [model(x) for x in inputs]
    assert [(tuple(x.shape), tuple(y.shape)) for x, y in seen["fc"]] == [((2, 3), (2, 4)),
                                                                         ((5, 3), (5, 4))]
    for (x, y), want_x, want_y in zip(seen["fc"], inputs, outs, strict=True):
        assert torch.equal(x, want_x) and torch.equal(y, want_y)
    assert _n_hooks(model) == 0


def test_capture_once_gives_the_layers_input_and_refuses_a_shared_layer():
    model = _mlp()
    X = torch.randn(6, 3)
    out, calls = capture_once(model, {"2": model[2]}, X)
    torch.testing.assert_close(calls["2"][0], torch.relu(model[0](X)))
    assert torch.equal(calls["2"][1], out) and out.shape == (6, 2)
    twice = Twice()
    with pytest.raises(ValueError, match=r"Layer 'fc' ran 2 times in one forward pass"):
        capture_once(twice, {"fc": twice.fc}, torch.zeros(1, 2))
    assert _n_hooks(twice) == 0


# --- zero_outputs and masked_weights -----------------------------------------------------------


def test_zero_outputs_zeroes_exactly_the_named_units_and_is_undone():
    model = _mlp()
    X = torch.randn(8, 3) + 2.0
    full = model[0](X).detach()
    units = torch.tensor([True, False, True, False, False])
    with zero_outputs({"0": model[0]}, {"0": units}), record(model, ["0"]) as acts:
        masked = model(X)
    assert (acts["0"][:, units] == 0).all()
    assert torch.equal(acts["0"][:, ~units], full[:, ~units])
    want = model[2](torch.relu(full.masked_fill(units, 0)))
    torch.testing.assert_close(masked, want)
    assert not torch.allclose(model(X), masked)  # the mask changed the output ...
    torch.testing.assert_close(model(X), model[2](torch.relu(full)))  # ... and is gone
    assert _n_hooks(model) == 0


def test_zero_outputs_zeroes_conv_channels_and_is_undone_after_an_exception():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    X = torch.randn(2, 1, 5, 5)
    with pytest.raises(RuntimeError), zero_outputs(
            {"c": conv}, {"c": torch.tensor([False, True, False, True])}):
        out = conv(X)
        raise RuntimeError("inside the block")
    assert (out[:, [1, 3]] == 0).all() and torch.equal(out[:, [0, 2]], conv(X)[:, [0, 2]])
    assert _n_hooks(conv) == 0


@pytest.mark.parametrize("units, error, match", [
    ({}, ValueError, r"'units' must be a dict with one mask per module"),
    ({"0": torch.ones(5)}, TypeError, r"'units\['0'\]' must be a bool tensor"),
    ({"0": torch.ones(1, 5, dtype=torch.bool)}, ValueError, r"must be 1-D \(n_out,\)"),
])
def test_zero_outputs_errors(units, error, match):
    model = _mlp()
    with pytest.raises(error, match=match):
        zero_outputs({"0": model[0]}, units).__enter__()
    assert _n_hooks(model) == 0


def test_masked_weights_changes_the_output_and_restores_the_weights_exactly():
    model = _mlp()
    X = torch.randn(4, 3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    clean = model(X).detach()
    keep = torch.ones(2, 5, dtype=torch.bool)
    keep[0, 1] = False
    with pytest.raises(RuntimeError), masked_weights({"2": model[2]}, {"2": keep}):
        assert model[2].weight[0, 1] == 0 and model[2].weight[1, 1] == before["2.weight"][1, 1]
        h = torch.relu(model[0](X))
        want = clean[:, 0] - h[:, 1] * before["2.weight"][0, 1]
        torch.testing.assert_close(model(X)[:, 0], want)
        raise RuntimeError("inside the block")
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])
    assert torch.equal(model(X), clean)


def test_masked_weights_refuses_a_mask_of_another_shape():
    model = _mlp()
    with pytest.raises(ValueError, match=r"'keep\['2'\]' must be a mask of the weight's shape "
                                         r"\(2, 5\)"):
        masked_weights({"2": model[2]}, {"2": torch.ones(5, 2, dtype=torch.bool)}).__enter__()
    with pytest.raises(ValueError, match=r"'keep' names modules that are not in 'modules'"):
        masked_weights({"2": model[2]}, {"0": torch.ones(5, 3)}).__enter__()


# --- replace_forward ---------------------------------------------------------------------------


def test_replace_forward_is_undone_even_when_the_body_raises():
    model = _mlp()
    X = torch.randn(3, 3)
    clean = model(X).detach()
    with pytest.raises(RuntimeError), replace_forward(model[2], lambda x: torch.zeros(len(x), 2)):
        assert torch.equal(model(X), torch.zeros(3, 2))
        raise RuntimeError("inside the block")
    assert "forward" not in vars(model[2]) and torch.equal(model(X), clean)


def test_replace_forward_restores_a_forward_set_before():
    fc = nn.Linear(2, 2)
    own = lambda x: torch.ones(len(x), 2)  # noqa: E731
    fc.forward = own
    with replace_forward(fc, lambda x: torch.zeros(len(x), 2)):
        assert torch.equal(fc(torch.randn(1, 2)), torch.zeros(1, 2))
    assert fc.forward is own


# --- frozen_prefix -----------------------------------------------------------------------------


def test_replay_gives_the_same_forward_and_is_undone(convnet):
    model, X = convnet
    with torch.no_grad():
        want = model(X)
        with frozen_prefix(model, [model.fc1], X):
            CountingConv.calls = 0
            for _ in range(3):  # the in-place mul_ would double a stored output each time
                assert torch.equal(model(X), want)
            assert CountingConv.calls == 0
            model.fc1.weight.mul_(0.5)  # a change from the cut on is seen
            assert not torch.allclose(model(X), want)
            model.fc1.weight.mul_(2.0)
        assert all("forward" not in vars(m) for m in model.modules())
        assert _n_hooks(model) == 0
        CountingConv.calls = 0
        assert torch.equal(model(X), want) and CountingConv.calls == 1


def test_replay_computes_the_later_calls_of_a_shared_module(convnet):
    model, X = convnet
    with torch.no_grad():
        want = model(X)
        with frozen_prefix(model, [model.fc1], X):
            model.fc1.bias.add_(-100.0)  # every fc1 output < 0: the shared ReLU's second call is 0
            got = model(X)
            model.fc1.bias.add_(100.0)
    torch.testing.assert_close(got, model.fc2.bias.expand_as(want))


def test_replay_is_undone_after_an_exception(convnet):
    model, X = convnet
    with pytest.raises(RuntimeError, match="boom"), frozen_prefix(model, [model.fc2], X):
        raise RuntimeError("boom")
    assert all("forward" not in vars(m) for m in model.modules())
    assert _n_hooks(model) == 0
