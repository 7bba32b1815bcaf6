import importlib.util

import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, clusterability, layer_matrix, weight_layers
from modlib.training.models import MnistCNN, ModAddTransformer, PaperCifarCNN, PaperMLP, tiny_gpt2

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
if HAS_TRANSFORMERS:  # import at collection, so the first GPT-2 test does not pay for it
    from transformers import GPT2LMHeadModel
needs_transformers = pytest.mark.skipif(not HAS_TRANSFORMERS, reason="needs the [llm] extra")

MODADD_LINEARS = ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc_in", "mlp.fc_out", "unembed"]


def _expected_loss(loss: ClusterabilityLoss) -> float:
    """1 - the mean clusterability of the loss's layers, measured one by one."""
    values = [float(clusterability(layer_matrix(m).detach(), loss.partitions[n]))
              for n, m in loss.layers.items()]
    return 1 - sum(values) / len(values)


def small_modadd(**kwargs) -> ModAddTransformer:
    torch.manual_seed(0)
    return ModAddTransformer(**{"p": 11, "d_model": 32, "n_heads": 4, "d_mlp": 32, **kwargs})


def test_modadd_maps_three_tokens_to_p_logits():
    model = small_modadd()
    tokens = torch.tensor([[1, 2, 11], [10, 10, 11]])  # a b =
    assert model(tokens).shape == (2, 11)
    assert model.equals_token == 11 and model.embed.num_embeddings == 12


def test_modadd_defaults_are_the_papers():
    model = ModAddTransformer()
    assert model.p == 113 and model.n_ctx == 3
    assert model.attn.n_heads == 4 and model.attn.d_head == 32
    assert model.mlp.fc_in.weight.shape == (128, 128)
    assert model.unembed.weight.shape == (113, 128)
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())


def test_modadd_linears_are_weight_layers():
    assert list(weight_layers(small_modadd())) == MODADD_LINEARS


def test_modadd_attention_is_causal():
    model = small_modadd()
    x = torch.randn(2, 3, 32)
    y = x.clone()
    y[:, 2] += 1.0  # change only the last position
    with torch.no_grad():
        assert torch.allclose(model.attn(x)[:, :2], model.attn(y)[:, :2])
        assert not torch.allclose(model.attn(x)[:, 2], model.attn(y)[:, 2])


def test_clusterability_loss_on_modadd_default_layers_and_gradients():
    model = small_modadd()
    loss = ClusterabilityLoss(model, 4)
    # the default leaves out the first and last weight layer (attn.q and unembed)
    assert loss.layer_names == MODADD_LINEARS[1:-1]
    value = loss()
    assert float(value.detach()) == pytest.approx(_expected_loss(loss), abs=1e-6)
    value.backward()
    assert model.mlp.fc_in.weight.grad is not None and model.attn.q.weight.grad is None


def test_clusterability_loss_on_all_modadd_blocks_aligns_heads():
    model = small_modadd()
    loss = ClusterabilityLoss(model, 4, layers=MODADD_LINEARS[:-1])
    # k = n_heads: contiguous blocks of d_model are exactly the heads (d_head = 8)
    assert loss.partitions["attn.q"].rows.tolist() == torch.arange(32).div(8).long().tolist()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"p": 1}, ValueError, r"'p' must be an int >= 2\. Got 1\."),
    ({"p": 11.0}, TypeError, r"'p' must be an int >= 2\. Got float 11\.0\."),
    ({"d_mlp": 0}, ValueError, r"'d_mlp' must be an int >= 1\. Got 0\."),
    ({"n_heads": True}, TypeError, r"'n_heads' must be an int >= 1\. Got bool True\."),
    ({"d_model": 30}, ValueError, r"'d_model' must be a multiple of the number of heads 4\. "
                                  r"Got 30\."),
])
def test_modadd_rejects_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        small_modadd(**kwargs)


@pytest.mark.parametrize("tokens, error, match", [
    (torch.zeros(2, 3), TypeError, r"'tokens' must be an integer tensor\. Got Tensor of dtype "
                                   r"torch\.float32 and shape \(2, 3\)\."),
    ([[1, 2, 11]], TypeError, r"'tokens' must be an integer tensor\. Got list \[\[1, 2, 11\]\]\."),
    (torch.zeros(2, 4, dtype=torch.long), ValueError,
     r"'tokens' must have shape \(B, 3\)\. Got \(2, 4\)\."),
    (torch.zeros(3, dtype=torch.long), ValueError,
     r"'tokens' must have shape \(B, 3\)\. Got \(3,\)\."),
])
def test_modadd_rejects_bad_tokens(tokens, error, match):
    with pytest.raises(error, match=match):
        small_modadd()(tokens)


@pytest.mark.parametrize(("build", "kwargs", "error", "match"), [
    (MnistCNN, {"width": 0}, ValueError, r"'width' must be an int >= 1\. Got 0\."),
    (MnistCNN, {"width": 8.0}, TypeError, r"'width' must be an int >= 1\. Got float 8\.0\."),
    (MnistCNN, {"n_classes": 0}, ValueError, r"'n_classes' must be an int >= 1\. Got 0\."),
    (PaperMLP, {"hidden": "64"}, TypeError, r"'hidden' must be an int >= 1\. Got str '64'\."),
    (PaperCifarCNN, {"n_classes": -1}, ValueError, r"'n_classes' must be an int >= 1\. Got -1"),
])
def test_image_models_reject_bad_sizes(build, kwargs, error, match):
    with pytest.raises(error, match=match):
        build(**kwargs)


@needs_transformers
def test_tiny_gpt2_shapes_and_config():
    model = tiny_gpt2(40, n_layer=2, n_head=2, n_embd=16, n_positions=8)
    assert isinstance(model, GPT2LMHeadModel)
    assert model(torch.zeros(3, 8, dtype=torch.long)).logits.shape == (3, 8, 40)
    config = model.config
    assert (config.n_layer, config.n_head, config.n_embd, config.n_positions) == (2, 2, 16, 8)
    assert config.bos_token_id == config.eos_token_id == 39
    assert model.transformer.h[0].mlp.c_fc.weight.shape == (16, 64)  # Conv1D: (n_in, n_out)


@needs_transformers
def test_clusterability_loss_on_tiny_gpt2_default_layers():
    model = tiny_gpt2(40, n_layer=2, n_head=2, n_embd=16, n_positions=8)
    loss = ClusterabilityLoss(model, 4)
    # every Conv1D but the first (h.0.attn.c_attn); lm_head (the last, tied to wte) left out
    blocks = [f"transformer.h.{i}.{m}" for i in range(2)
              for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    assert loss.layer_names == blocks[1:]
    assert loss.partitions["transformer.h.0.mlp.c_fc"].shape == (64, 16)
    value = loss()
    value.backward()
    assert float(value.detach()) == pytest.approx(_expected_loss(loss), abs=1e-6)
    assert model.transformer.h[0].mlp.c_fc.weight.grad is not None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"vocab_size": 0}, ValueError, r"'vocab_size' must be an int >= 1\. Got 0\."),
    ({"n_layer": 1.5}, TypeError, r"'n_layer' must be an int >= 1\. Got float"),
    ({"n_embd": 10}, ValueError, r"'n_embd' must be a multiple of the number of heads 4\. "
                                 r"Got 10\."),
])
def test_tiny_gpt2_rejects_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny_gpt2(**{"vocab_size": 40, **kwargs})
