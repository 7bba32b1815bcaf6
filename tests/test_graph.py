import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from modlib import aligned_partitions, default_layers, layer_matrix, weight_layers
from modlib.training.models import MnistCNN, PaperMLP


def test_linear_is_its_weight_and_keeps_gradients():
    lin = nn.Linear(4, 3)
    W = layer_matrix(lin)
    assert W.shape == (3, 4) and W.requires_grad
    assert torch.equal(W, lin.weight)


def test_conv2d_is_kernel_norm():
    conv = nn.Conv2d(3, 5, 3)
    W = layer_matrix(conv)
    assert W.shape == (5, 3)
    assert torch.allclose(W[2, 1], conv.weight[2, 1].norm())
    assert (W >= 0).all()


def test_conv2d_zero_kernel_has_finite_gradient():
    conv = nn.Conv2d(2, 2, 3)
    with torch.no_grad():
        conv.weight[0, 1] = 0.0
    layer_matrix(conv).sum().backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_hf_conv1d_is_transposed():
    c = Conv1D(nf=6, nx=4)  # n_out=6, n_in=4; weight stored (4, 6)
    W = layer_matrix(c)
    assert W.shape == (6, 4)
    assert torch.equal(W, c.weight.T)


@pytest.mark.parametrize("module,match", [
    (nn.Embedding(4, 3), r"No weight graph for module of type Embedding. Supported: nn.Linear"),
    (nn.Conv2d(4, 4, 3, groups=2), r"Conv2d with groups > 1"),
    (nn.ReLU(), r"type ReLU"),
])
def test_unsupported_modules(module, match):
    with pytest.raises(TypeError, match=match):
        layer_matrix(module)


def test_weight_layers_and_default_choice():
    model = MnistCNN(width=8)
    assert list(weight_layers(model)) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    # conv1 has one input channel (< k): the first layer with both sides >= k is conv2
    assert default_layers(model, 4) == ["fc1", "fc2"]
    assert default_layers(PaperMLP(), 4) == ["fc2", "fc3"]


def test_default_layers_error_when_nothing_is_left():
    with pytest.raises(ValueError, match=r"No layer to cluster at k=2"):
        default_layers(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), 2)


def test_aligned_partitions_chain_and_flatten():
    model = MnistCNN(width=6)  # conv2 has 12 channels, fc1 takes 12*7*7 inputs
    parts = aligned_partitions(model, 4, ["conv2", "fc1", "fc2"])
    assert list(parts) == ["conv2", "fc1", "fc2"]
    # every fc1 input from channel c carries conv2's output label of channel c
    assert torch.equal(parts["fc1"].cols.view(12, 49), parts["conv2"].rows[:, None].expand(12, 49))
    assert torch.equal(parts["fc1"].rows, parts["fc2"].cols)


@pytest.mark.parametrize("layers,k,match", [
    (["nope"], 2, r"'layers' has names that are not Linear/Conv2d/Conv1D modules of the model: "
                  r"\['nope'\]"),
    (["fc3"], 20, r"'k'=20 is larger than a side of layer 'fc3' \(shape \(10, 32\)\)"),
])
def test_aligned_partitions_errors(layers, k, match):
    with pytest.raises(ValueError, match=match):
        aligned_partitions(MnistCNN(width=8), k, layers)
