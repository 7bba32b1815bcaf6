import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, Partition, clusterability, layer_matrix, spectral_cocluster
from modlib.models import MnistCNN, PaperMLP


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
    (dict(k="4"), TypeError, r"'k' must be an int. Got str"),
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
    with pytest.raises(TypeError, match=r"'model' must be an nn.Module. Got dict"):
        ClusterabilityLoss({}, 4)
