import copy

import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, Partition, clusterability, layer_matrix, spectral_cocluster
from modlib.core.loss import _inside_share
from modlib.training.models import MnistCNN, PaperMLP


def test_value_is_one_minus_mean_clusterability():
    torch.manual_seed(0)
    model = PaperMLP()
    loss = ClusterabilityLoss(model, 4)
    values = loss.clusterability()
    assert list(values) == ["fc2", "fc3"]
    for name, part in loss.partitions.items():
        W = layer_matrix(getattr(model, name)).detach()
        assert values[name] == pytest.approx(float(clusterability(W, part)))
    assert float(loss().detach()) == pytest.approx(1 - sum(values.values()) / 2, rel=1e-6)


def test_holds_no_parameters_and_adds_nothing_to_a_checkpoint():
    loss = ClusterabilityLoss(PaperMLP(), 4)
    assert list(loss.parameters()) == [] and loss.state_dict() == {}


def test_minimising_it_alone_raises_clusterability():
    torch.manual_seed(0)
    model = MnistCNN(width=8)
    loss = ClusterabilityLoss(model, 4)
    before = loss.clusterability()
    assert all(v < 0.4 for v in before.values())  # near 1/k at initialisation
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        loss().backward()
        opt.step()
    after = loss.clusterability()
    assert all(after[n] > 0.95 for n in after), after


def test_conv_layers_and_flatten_alignment():
    model = MnistCNN(width=8)
    loss = ClusterabilityLoss(model, 4, layers=["conv2", "fc1"])
    assert loss.layer_names == ["conv2", "fc1"]
    fc1_cols = loss.partitions["fc1"].cols.view(16, 49)  # (channel, pixel)
    assert torch.equal(fc1_cols[:, 0], loss.partitions["conv2"].rows)
    value = loss()
    value.backward()
    assert model.conv2.weight.grad is not None and torch.isfinite(model.conv2.weight.grad).all()


def test_spectral_partitions_for_fine_tuning():
    model = PaperMLP()
    part = spectral_cocluster(model.fc2.weight.detach(), 4)
    loss = ClusterabilityLoss(model, 4, partitions={"fc2": part})
    assert loss.layer_names == ["fc2"] and loss.partitions["fc2"] == part
    both = ClusterabilityLoss(model, 4, layers=["fc3"], partitions={"fc2": part})
    assert both.layer_names == ["fc2", "fc3"]


def test_default_layers_of_a_transformer_style_block_with_hf_conv1d():
    from transformers.pytorch_utils import Conv1D

    block = nn.ModuleDict({"embed": nn.Linear(8, 16), "c_fc": Conv1D(64, 16),
                           "c_proj": Conv1D(16, 64), "head": nn.Linear(16, 8)})
    loss = ClusterabilityLoss(block, 4)
    assert loss.layer_names == ["c_fc", "c_proj"]
    assert loss.partitions["c_fc"].shape == (64, 16)
    assert 0 <= float(loss().detach()) <= 1


def test_masks_follow_the_model_device():
    model = PaperMLP()
    loss = ClusterabilityLoss(model, 4)
    model.to(torch.float64)
    assert float(loss().detach()) > 0
    if torch.cuda.is_available():
        model.cuda()
        assert loss().device.type == "cuda"


def test_all_zero_layer_gives_no_nan():
    model = PaperMLP()
    with torch.no_grad():
        model.fc2.weight.zero_()
    assert torch.isfinite(ClusterabilityLoss(model, 4)())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loss_on_cuda_and_moving_the_loss_module():
    model = MnistCNN().cuda()
    loss = ClusterabilityLoss(model, 4).cuda()
    assert loss().device.type == "cuda"


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(k=4, layers=["fc9"]), ValueError, r"not Linear/Conv2d/Conv1D modules of the model: "
                                            r"\['fc9'\]"),
    (dict(k=100, layers=["fc2"]), ValueError, r"'k'=100 is larger than a side of layer 'fc2'"),
    (dict(k=0), ValueError, r"'k' must be an int >= 1. Got 0"),
    (dict(k="4"), TypeError, r"'k' must be an int >= 1\. Got str"),
    (dict(k=4, partitions={"fc2": Partition(torch.zeros(64, dtype=torch.long),
                                            torch.zeros(64, dtype=torch.long), 2)}),
     ValueError, r"'partitions' entry 'fc2' has k=2 and shape \(64, 64\); layer 'fc2' needs k=4"),
    (dict(k=4, partitions={"fc2": Partition(torch.zeros(3, dtype=torch.long),
                                            torch.zeros(64, dtype=torch.long), 4)}),
     ValueError, r"shape \(3, 64\); layer 'fc2' needs k=4 and shape \(64, 64\)"),
])
def test_loss_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        ClusterabilityLoss(PaperMLP(), **kwargs)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match=r"'model' must be a torch.nn.Module. Got dict"):
        ClusterabilityLoss({}, 4)


# The closed-form autograd Function behind the loss, against the plain formula.

def _random_partition(n_out, n_in, k, seed):
    gen = torch.Generator().manual_seed(seed)
    return Partition(torch.randint(k, (n_out,), generator=gen),
                     torch.randint(k, (n_in,), generator=gen), k)


def _factors(part, dtype=torch.float64):
    rows, cols = (nn.functional.one_hot(x, part.k).to(dtype) for x in (part.rows, part.cols))
    return rows, cols


def _plain_share(W, part):
    """The formula as autograd sees it: W² (a conv kernel slice's sum of squares) inside / all."""
    W2 = W.square() if W.ndim == 2 else W.square().sum(dim=(2, 3))
    return (W2 * part.mask()).sum() / W2.sum()


@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 2, 2)])
def test_inside_share_passes_gradcheck_in_float64(shape):
    W = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    A, B = _factors(_random_partition(shape[0], shape[1], 3, seed=1))
    assert torch.autograd.gradcheck(lambda W: _inside_share(W, A, B), (W,))


@pytest.mark.parametrize("shape,k", [((6, 6), 2), ((17, 9), 3), ((64, 200), 4), ((8, 5, 3, 3), 4),
                                     ((12, 1, 1, 1), 1)])
def test_inside_share_equals_the_plain_formula(shape, k):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(2), requires_grad=True)
    part = _random_partition(shape[0], shape[1], k, seed=3)
    value = _inside_share(W, *_factors(part, torch.float32))
    (grad,) = torch.autograd.grad(3 * value, W)
    ref = _plain_share(W, part)
    (ref_grad,) = torch.autograd.grad(3 * ref, W)
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(grad, ref_grad)


def test_loss_gradients_equal_the_plain_formula_on_linear_conv_and_hf_conv1d():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = nn.ModuleDict({"conv": nn.Conv2d(6, 8, 3), "fc": nn.Linear(12, 10),
                           "c_fc": Conv1D(9, 5)})  # Conv1D(n_out, n_in) stores (n_in, n_out)
    parts = {"conv": _random_partition(8, 6, 3, 1), "fc": _random_partition(10, 12, 3, 2),
             "c_fc": _random_partition(9, 5, 3, 3)}
    loss = ClusterabilityLoss(model, 3, partitions=parts)
    loss().backward()
    weights = [model[n].weight for n in parts]
    matrices = [model["conv"].weight, model["fc"].weight, model["c_fc"].weight.T]
    ref = 1 - sum(_plain_share(W, p) for W, p in zip(matrices, parts.values(), strict=True)) / 3
    ref_grads = torch.autograd.grad(ref, weights)
    torch.testing.assert_close(loss().detach(), ref.detach())
    for W, g in zip(weights, ref_grads, strict=True):
        torch.testing.assert_close(W.grad, g)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_sum_in_float32(dtype):
    torch.manual_seed(0)
    model = MnistCNN(width=8).to(dtype)
    reference = copy.deepcopy(model).float()  # the same values, in float32
    values = {}
    for m in (model, reference):
        loss = ClusterabilityLoss(m, 4, layers=["conv2", "fc1"])
        value = loss()
        value.backward()
        values[m] = value
    assert values[model].dtype == torch.float32
    torch.testing.assert_close(values[model], values[reference])
    for name in ("conv2", "fc1"):
        W, W32 = getattr(model, name).weight, getattr(reference, name).weight
        assert W.grad.dtype == dtype and torch.isfinite(W.grad).all()
        torch.testing.assert_close(W.grad.float(), W32.grad, rtol=2e-2, atol=1e-6)


def test_all_zero_layer_counts_as_zero_with_zero_gradient():
    W = torch.zeros(4, 6, requires_grad=True)
    A, B = _factors(_random_partition(4, 6, 2, seed=0), torch.float32)
    value = _inside_share(W, A, B)
    (1e6 * value).backward()  # a large weight on the loss must not overflow 0 · (2g/S) into NaN
    assert float(value.detach()) == 0.0 and torch.equal(W.grad, torch.zeros_like(W))
    model = PaperMLP()
    with torch.no_grad():
        model.fc2.weight.zero_()
    loss = ClusterabilityLoss(model, 4)
    assert loss.clusterability()["fc2"] == 0.0
    loss().backward()
    assert torch.equal(model.fc2.weight.grad, torch.zeros_like(model.fc2.weight))


def test_nan_weights_give_nan_not_a_silent_zero():
    W = torch.ones(4, 6)
    W[0, 0] = float("nan")
    A, B = _factors(_random_partition(4, 6, 2, seed=0), torch.float32)
    assert torch.isnan(_inside_share(W, A, B))
