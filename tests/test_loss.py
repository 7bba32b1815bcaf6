import copy

import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, Partition, clusterability, layer_matrix, spectral_cocluster
from modlib.core.loss import _equal_blocks, _inside_share
from modlib.core.partition import contiguous_partition
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
    shares = [_plain_share(block[n].weight.T, loss.partitions[n]) for n in loss.layer_names]
    torch.testing.assert_close(loss().detach(), 1 - torch.stack(shares).detach().mean())


def test_masks_follow_the_model_device():
    model = PaperMLP()
    loss = ClusterabilityLoss(model, 4)
    model.to(torch.float64)
    value = loss()
    shares = [_plain_share(getattr(model, n).weight, loss.partitions[n]) for n in ("fc2", "fc3")]
    assert value.dtype == torch.float64 and loss.mask_a0.dtype == torch.float64
    torch.testing.assert_close(value, 1 - (shares[0] + shares[1]) / 2, rtol=1e-12, atol=0)
    if torch.cuda.is_available():
        model.cuda()
        assert loss().device.type == "cuda"
        torch.testing.assert_close(loss().cpu(), value, rtol=1e-12, atol=0)


def test_all_zero_layer_gives_no_nan():
    model = PaperMLP()
    with torch.no_grad():
        model.fc2.weight.zero_()
    loss = ClusterabilityLoss(model, 4)
    fc3 = _plain_share(model.fc3.weight, loss.partitions["fc3"])
    torch.testing.assert_close(loss(), 1 - (0 + fc3) / 2)  # fc2 counts as 0, not NaN


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loss_on_cuda_and_moving_the_loss_module():
    torch.manual_seed(0)
    model = MnistCNN()
    expected = float(ClusterabilityLoss(model, 4)().detach())
    model.cuda()
    loss = ClusterabilityLoss(model, 4).cuda()
    assert loss().device.type == "cuda"
    assert float(loss().detach()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", ["blocks", "random"])
def test_cuda_values_and_gradients_equal_the_cpu(kind, dtype):
    grads = {}
    for device in ("cpu", "cuda"):
        model, parts = _three_layers(kind)
        model.to(device, dtype)
        loss = ClusterabilityLoss(model, 3, partitions=parts)
        value = loss()
        value.backward()
        grads[device] = [value.detach()] + [model[n].weight.grad for n in parts]
    tol = {} if dtype != torch.bfloat16 else dict(rtol=1.6e-2, atol=1e-6)
    for cpu, cuda in zip(grads["cpu"], grads["cuda"], strict=True):
        assert cuda.device.type == "cuda"
        torch.testing.assert_close(cuda.cpu(), cpu, **tol)


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


def _three_layers(kind, k=3):
    """A Conv2d, a Linear and a Conv1D (stored (n_in, n_out)), with their partitions.

    ``kind="blocks"``: contiguous blocks, equal on each stored second dim (conv in-channels, fc
    inputs, Conv1D outputs), so every layer takes the fast path; ``"random"``: random labels,
    the general path.
    """
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = nn.ModuleDict({"conv": nn.Conv2d(6, 8, 3), "fc": nn.Linear(12, 10),
                           "c_fc": Conv1D(9, 5)})  # Conv1D(n_out, n_in) stores (n_in, n_out)
    shapes = {"conv": (8, 6), "fc": (10, 12), "c_fc": (9, 5)}
    if kind == "blocks":
        parts = {n: contiguous_partition(*s, k) for n, s in shapes.items()}
    else:
        parts = {n: _random_partition(*s, k, seed) for seed, (n, s) in enumerate(shapes.items())}
    return model, parts


def _reference(model, parts):
    """1 − mean of the plain formula on float64 copies of the weights, and its gradients."""
    weights = [model[n].weight.detach().double().requires_grad_() for n in parts]
    matrices = [W.T if n == "c_fc" else W for n, W in zip(parts, weights, strict=True)]
    ref = 1 - sum(_plain_share(W, p) for W, p in zip(matrices, parts.values(), strict=True)) / 3
    return ref.detach(), torch.autograd.grad(ref, weights)


def _fast_layers(loss):
    """The layers whose second stored dim is equal blocks: their mask has no second factor."""
    return [n for i, n in enumerate(loss.layer_names) if getattr(loss, f"mask_b{i}") is None]


@pytest.mark.parametrize("kind", ["blocks", "random"])
def test_each_layer_takes_the_fast_path_exactly_on_equal_blocks(kind):
    model, parts = _three_layers(kind)
    loss = ClusterabilityLoss(model, 3, partitions=parts)
    assert _fast_layers(loss) == (["conv", "fc", "c_fc"] if kind == "blocks" else [])


class _LossOf(nn.Module):
    """The loss as a module over the model, so that ``functional_call`` can swap its weights."""

    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self):
        return self.loss()


@pytest.mark.parametrize("kind", ["blocks", "random"])
def test_loss_passes_gradcheck_in_float64_on_linear_conv_and_hf_conv1d(kind):
    model, parts = _three_layers(kind)
    model.double()
    wrapped = _LossOf(model, ClusterabilityLoss(model, 3, partitions=parts))
    weights = tuple(model[n].weight.detach().clone().requires_grad_() for n in parts)

    def loss_of(*ws):  # gradcheck's inputs stand in for the model's weights during one call
        names = [f"model.{n}.weight" for n in parts]
        return torch.func.functional_call(wrapped, dict(zip(names, ws, strict=True)), ())

    assert torch.autograd.gradcheck(loss_of, weights)


@pytest.mark.parametrize("kind", ["blocks", "random"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_loss_equals_the_naive_formula_for_each_weight_dtype(dtype, kind):
    model, parts = _three_layers(kind)
    model.to(dtype)
    loss = ClusterabilityLoss(model, 3, partitions=parts)
    value = loss()
    value.backward()
    ref, ref_grads = _reference(model, parts)  # exact, on the same (rounded) weights
    assert value.dtype == torch.float32  # summed in float32 whatever the weights
    torch.testing.assert_close(value.double(), ref, rtol=1e-6, atol=1e-7)
    # a gradient within rounding to the weights' dtype of the exact one
    rtol = {torch.float32: 1e-5, torch.float16: 2 ** -10, torch.bfloat16: 2 ** -7}[dtype]
    for name, g in zip(parts, ref_grads, strict=True):
        W = model[name].weight
        assert W.grad.dtype == dtype, name
        torch.testing.assert_close(W.grad.double(), g, rtol=rtol, atol=1e-7, msg=name)


@pytest.mark.parametrize("kind", ["blocks", "random"])
def test_channels_last_conv_weights_give_the_same_value_and_gradient(kind):
    model, parts = _three_layers(kind)
    model.to(memory_format=torch.channels_last)  # the conv weight is no longer contiguous
    assert not model["conv"].weight.is_contiguous()
    loss = ClusterabilityLoss(model, 3, partitions=parts)
    loss().backward()
    ref, ref_grads = _reference(model, parts)
    torch.testing.assert_close(loss().detach().double(), ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model["conv"].weight.grad.double(), ref_grads[0], rtol=1e-5,
                               atol=1e-7)


def test_conv1d_orientation_decides_the_path():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = nn.ModuleDict({"c_fc": Conv1D(9, 6)})  # stored (6, 9): its second dim is the rows
    gen = torch.Generator().manual_seed(0)
    blocks9, blocks6 = contiguous_partition(9, 6, 3).rows, contiguous_partition(6, 9, 3).rows
    for rows, cols, fast in [(blocks9, torch.randint(3, (6,), generator=gen), True),
                             (torch.randint(3, (9,), generator=gen), blocks6, False)]:
        part = Partition(rows, cols, 3)
        loss = ClusterabilityLoss(model, 3, partitions={"c_fc": part})
        assert _fast_layers(loss) == (["c_fc"] if fast else [])
        ref = 1 - _plain_share(model["c_fc"].weight.T, part)
        torch.testing.assert_close(loss(), ref)


def test_unequal_contiguous_blocks_take_the_general_path():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 10), nn.Linear(10, 7), nn.Linear(7, 4))
    loss = ClusterabilityLoss(model, 3, layers=["1"])
    assert loss.partitions["1"].cols.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert not _equal_blocks(loss.partitions["1"].cols, 3) and _fast_layers(loss) == []
    torch.testing.assert_close(loss(), 1 - _plain_share(model[1].weight, loss.partitions["1"]))


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize("shape", [(5, 6), (4, 6, 2, 2)])
def test_inside_share_passes_gradcheck_in_float64(shape, path):
    W = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    part = _random_partition(shape[0], shape[1], 3, seed=1)
    A, B = _factors(part)
    if path == "fast":  # random rows, the columns as 3 equal blocks
        B = None
        part = Partition(part.rows, contiguous_partition(shape[0], shape[1], 3).cols, 3)
    assert torch.autograd.gradcheck(lambda W: _inside_share(W, A, B), (W,))
    torch.testing.assert_close(_inside_share(W, A, B), _plain_share(W, part))


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize("shape,k", [((6, 6), 2), ((17, 9), 3), ((64, 200), 4), ((8, 4, 3, 3), 4),
                                     ((12, 1, 1, 1), 1)])
def test_inside_share_equals_the_plain_formula(shape, k, path):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(2), requires_grad=True)
    part = _random_partition(shape[0], shape[1], k, seed=3)
    A, B = _factors(part, torch.float32)
    if path == "fast":
        part = Partition(part.rows, contiguous_partition(shape[0], shape[1], k).cols, k)
        B = None
    value = _inside_share(W, A, B)
    (grad,) = torch.autograd.grad(3 * value, W)
    ref = _plain_share(W, part)
    (ref_grad,) = torch.autograd.grad(3 * ref, W)
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(12, 8), (8, 12, 3, 3)])
def test_fast_and_general_paths_agree_on_equal_blocks(shape, dtype):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    W.requires_grad_()
    part = contiguous_partition(shape[0], shape[1], 4)
    sum_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    A, B = _factors(part, sum_dtype)
    results = []
    for b in (None, B):
        value = _inside_share(W, A, b)
        (grad,) = torch.autograd.grad(value, W)
        assert value.dtype == sum_dtype and grad.dtype == dtype
        results.append((value, grad))
    (fast, fast_grad), (general, general_grad) = results
    torch.testing.assert_close(fast, general)
    tol = {torch.float16: 2 ** -10, torch.bfloat16: 2 ** -7}.get(dtype)
    torch.testing.assert_close(fast_grad, general_grad, rtol=tol, atol=tol and 1e-6)


def test_loss_gradients_equal_the_plain_formula_on_linear_conv_and_hf_conv1d():
    model, parts = _three_layers("random")
    loss = ClusterabilityLoss(model, 3, partitions=parts)
    loss().backward()
    ref, ref_grads = _reference(model, parts)
    torch.testing.assert_close(loss().detach().double(), ref, rtol=1e-6, atol=1e-7)
    for name, g in zip(parts, ref_grads, strict=True):
        torch.testing.assert_close(model[name].weight.grad.double(), g, rtol=1e-5, atol=1e-7,
                                   msg=name)


def test_the_closed_form_gradient_is_not_differentiated_twice():
    W = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    A, _ = _factors(_random_partition(4, 6, 2, seed=0))
    (grad,) = torch.autograd.grad(_inside_share(W, A), W, create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad.sum().backward()  # an error, not a silently wrong second derivative


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


@pytest.mark.parametrize("path", ["fast", "general"])
def test_all_zero_layer_counts_as_zero_with_zero_gradient(path):
    W = torch.zeros(4, 6, requires_grad=True)
    A, B = _factors(_random_partition(4, 6, 2, seed=0), torch.float32)
    value = _inside_share(W, A, None if path == "fast" else B)
    (1e6 * value).backward()  # a large weight on the loss must not overflow 0 · (2g/S) into NaN
    assert float(value.detach()) == 0.0 and torch.equal(W.grad, torch.zeros_like(W))
    model = PaperMLP()
    with torch.no_grad():
        model.fc2.weight.zero_()
    loss = ClusterabilityLoss(model, 4)
    assert loss.clusterability()["fc2"] == 0.0
    loss().backward()
    assert torch.equal(model.fc2.weight.grad, torch.zeros_like(model.fc2.weight))


@pytest.mark.parametrize("path", ["fast", "general"])
def test_nan_weights_give_nan_not_a_silent_zero(path):
    W = torch.ones(4, 6)
    W[0, 0] = float("nan")
    A, B = _factors(_random_partition(4, 6, 2, seed=0), torch.float32)
    assert torch.isnan(_inside_share(W, A, None if path == "fast" else B))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [2, 5])  # 2: equal blocks (fast path); 5: uneven (general path)
def test_half_precision_layer_whose_squares_overflow_half_gives_a_finite_loss(dtype, k):
    model = nn.Sequential(nn.Linear(8, 20), nn.Linear(20, 20), nn.Linear(20, 2))
    with torch.no_grad():
        model[1].weight.fill_(30.0)  # sum of W² = 400 · 900 = 360,000 > 65,504
    model = model.to(dtype)
    if dtype == torch.float16:  # float16 sums overflow at 65,504; bfloat16 ones do not
        assert not torch.isfinite(model[1].weight.square().sum())
    loss = ClusterabilityLoss(model, k, layers=["1"])
    value = loss()
    value.backward()
    reference = ClusterabilityLoss(copy.deepcopy(model).float(), k, layers=["1"])()
    assert torch.isfinite(value) and torch.isfinite(model[1].weight.grad).all()
    torch.testing.assert_close(value, reference)


def test_a_layer_reshaped_after_the_loss_was_built_is_named_at_the_next_call():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3))
    loss = ClusterabilityLoss(model, 2)
    float(loss())  # fine as built
    model[1].weight = nn.Parameter(torch.ones(8, 6))
    with pytest.raises(ValueError, match=r"Layer '1' has changed since the loss was built"):
        loss()
    with pytest.raises(ValueError, match=r"Layer '1' has changed"):
        loss.clusterability()


def test_no_layer_to_cluster_is_refused_when_the_loss_is_built():
    with pytest.raises(ValueError, match=r"'layers' is empty"):
        ClusterabilityLoss(PaperMLP(), 4, layers=[])
