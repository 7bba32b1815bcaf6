import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, Partition, clusterability, layer_matrix, weight_layers
from modlib.analysis.llm import attention_layers, family, mlp_layers, spectral_partitions
from modlib.training.models import ModAddTransformer, PaperMLP, tiny_gpt2

transformers = pytest.importorskip("transformers")
# import the model classes at collection, so that no single test pays for it
from transformers import (  # noqa: E402
    GemmaConfig,
    GemmaForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
)

KINDS = ["gpt2", "gpt_neox", "llama", "gemma", "mistral"]
FAMILY = {"gpt2": "gpt2", "gpt_neox": "gpt_neox", "llama": "llama", "gemma": "llama",
          "mistral": "llama"}
# per family: block prefix, MLP in, MLP out, attention in, attention out (in model order)
NAMES = {
    "gpt2": ("transformer.h", ["mlp.c_fc"], ["mlp.c_proj"], ["attn.c_attn"], ["attn.c_proj"]),
    "gpt_neox": ("gpt_neox.layers", ["mlp.dense_h_to_4h"], ["mlp.dense_4h_to_h"],
                 ["attention.query_key_value"], ["attention.dense"]),
    "llama": ("model.layers", ["mlp.gate_proj", "mlp.up_proj"], ["mlp.down_proj"],
              ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
              ["self_attn.o_proj"]),
}


def tiny(kind: str, n_embd: int = 16) -> nn.Module:
    """A randomly initialised two-block causal LM of the given kind: d_model 16, d_mlp 64."""
    torch.manual_seed(0)
    if kind == "gpt2":
        return tiny_gpt2(40, n_layer=2, n_head=2, n_embd=n_embd, n_positions=16)
    common = {"vocab_size": 40, "hidden_size": n_embd, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 4 * n_embd,
              "max_position_embeddings": 16}
    if kind == "gpt_neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(**common))
    common["num_key_value_heads"] = 1
    if kind == "gemma":
        return GemmaForCausalLM(GemmaConfig(**common, head_dim=n_embd // 2))
    config, cls = {"llama": (LlamaConfig, LlamaForCausalLM),
                   "mistral": (MistralConfig, MistralForCausalLM)}[kind]
    return cls(config(**common))


def expected(kind: str, *parts: int) -> list[str]:
    prefix, *paths = NAMES[FAMILY[kind]]
    return [f"{prefix}.{i}.{p}" for i in range(2) for j in parts for p in paths[j]]


def same_up_to_relabelling(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("kind", KINDS)
def test_family_is_found_from_module_names(kind):
    assert family(tiny(kind)) == FAMILY[kind]


def test_family_is_found_under_another_prefix():
    wrapper = nn.ModuleDict({"language_model": tiny("llama")})
    assert family(wrapper) == "llama"
    assert mlp_layers(wrapper)[0] == "language_model.model.layers.0.mlp.gate_proj"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which, parts", [("in", (0,)), ("out", (1,)), ("both", (0, 1))])
def test_mlp_layers_in_model_order(kind, which, parts):
    assert mlp_layers(tiny(kind), which) == expected(kind, *parts)


@pytest.mark.parametrize("kind", ["gpt2", "gpt_neox", "llama"])
@pytest.mark.parametrize("which, parts", [("in", (2,)), ("out", (3,)), ("both", (2, 3))])
def test_attention_layers_in_model_order(kind, which, parts):
    assert attention_layers(tiny(kind), which) == expected(kind, *parts)


@pytest.mark.parametrize("kind", ["gpt2", "gpt_neox", "llama"])
def test_clusterability_loss_takes_mlp_layers(kind):
    model = tiny(kind)
    loss = ClusterabilityLoss(model, 4, layers=mlp_layers(model))
    assert loss.layer_names == mlp_layers(model)
    value = loss()
    value.backward()
    modules = weight_layers(model)
    shares = []
    for name, part in loss.partitions.items():  # W² inside the clusters over all of W², by hand
        W2 = layer_matrix(modules[name]).detach().square()
        inside = part.rows[:, None] == part.cols[None, :]
        shares.append(float(W2[inside].sum() / W2.sum()))
    assert float(value.detach()) == pytest.approx(1 - sum(shares) / len(shares), rel=1e-5)
    assert all(modules[n].weight.grad.abs().sum() > 0 for n in mlp_layers(model))


def test_spectral_partitions_default_to_mlp_in():
    model = tiny("gpt2")
    parts = spectral_partitions(model, 4, progress=False)
    assert list(parts) == mlp_layers(model)
    assert all(isinstance(p, Partition) and p.shape == (64, 16) for p in parts.values())


@pytest.mark.parametrize("kind", ["gpt2", "gpt_neox", "llama", "gemma"])
def test_mlp_out_columns_are_mlp_in_rows_in_every_block(kind):
    model = tiny(kind)
    parts = spectral_partitions(model, 4, mlp_layers(model, "both"), progress=False)
    assert list(parts) == mlp_layers(model, "both")
    for i in range(2):
        block = [p for n, p in parts.items() if f".{i}.mlp." in n]
        *ins, out = block
        assert all(torch.equal(out.cols, p.rows) for p in ins)
        assert all(p == ins[0] for p in ins)  # gate_proj and up_proj share one partition


def test_mlp_out_alone_still_uses_the_blocks_hidden_partition():
    model = tiny("gpt2")
    both = spectral_partitions(model, 4, mlp_layers(model, "both"), progress=False)
    out = spectral_partitions(model, 4, mlp_layers(model, "out"), progress=False)
    assert all(out[n] == both[n] for n in out)


def test_mlp_out_rows_join_the_cluster_holding_most_of_their_weight():
    model = tiny("gpt_neox")
    name = "gpt_neox.layers.1.mlp.dense_4h_to_h"
    part = spectral_partitions(model, 4, [name], progress=False)[name]
    W2 = layer_matrix(weight_layers(model)[name]).detach().square()  # (16, 64)
    mass = torch.stack([W2[:, part.cols == c].sum(1) for c in range(4)], 1)  # (16, 4)
    assert torch.equal(mass.gather(1, part.rows[:, None]).squeeze(1), mass.max(1).values)


def test_planted_modules_are_recovered_and_aligned():
    model = tiny("gpt2")
    g = torch.Generator().manual_seed(1)
    hidden = torch.randperm(64, generator=g) % 4  # planted labels of the 64 hidden neurons
    resid = torch.randperm(16, generator=g) % 4  # and of the 16 residual dimensions
    mlp = model.transformer.h[0].mlp
    with torch.no_grad():  # Conv1D weights are stored (n_in, n_out)
        mlp.c_fc.weight.copy_(torch.randn(16, 64, generator=g)
                              * torch.where(resid[:, None] == hidden[None, :], 10.0, 1.0))
        mlp.c_proj.weight.copy_(torch.randn(64, 16, generator=g)
                                * torch.where(hidden[:, None] == resid[None, :], 10.0, 1.0))
    names = ["transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj"]
    fc, proj = (spectral_partitions(model, 4, names, progress=False)[n] for n in names)
    assert same_up_to_relabelling(fc.rows, hidden) and same_up_to_relabelling(fc.cols, resid)
    label = dict(zip(hidden.tolist(), fc.rows.tolist(), strict=True))
    assert proj.rows.tolist() == [label[r] for r in resid.tolist()]  # same label as its module
    assert float(clusterability(layer_matrix(mlp.c_proj).detach(), proj)) > 0.8


def test_spectral_partitions_are_seeded_and_show_progress(capsys):
    model = tiny("llama")
    a = spectral_partitions(model, 4, seed=3)
    assert "spectral co-clustering" in capsys.readouterr().err
    b = spectral_partitions(model, 4, seed=3, progress=False)
    assert capsys.readouterr().err == ""
    assert all(a[n] == b[n] for n in a)


def test_minimising_the_loss_raises_clusterability_of_spectral_partitions():
    model = tiny("gpt2", n_embd=32)
    parts = spectral_partitions(model, 4, mlp_layers(model, "both"), progress=False)
    loss = ClusterabilityLoss(model, 4, partitions=parts)
    assert loss.layer_names == list(parts)
    before = loss.clusterability()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        opt.zero_grad()
        loss().backward()
        opt.step()
    after = loss.clusterability()
    assert all(after[n] > before[n] + 0.2 for n in parts), (before, after)


def both_families() -> nn.Module:
    return nn.ModuleDict({"a": tiny("gpt2"), "b": tiny("llama")})


@pytest.mark.parametrize("call, error, match", [
    (lambda: family(PaperMLP()), ValueError,
     r"No supported model family matches the module names of PaperMLP\. Supported: gpt2 "
     r"\(e\.g\. 'transformer\.h\.0\.mlp\.c_fc'\), gpt_neox .*, llama .*\. "
     r"First module names seen: \['fc1', 'fc2', 'fc3', 'fc4'\]\."),
    (lambda: mlp_layers(ModAddTransformer(p=7, d_model=8, d_mlp=8)), ValueError,
     r"No supported model family .* First module names seen: \['attn\.q', 'attn\.k', "),
    (lambda: family(both_families()), ValueError,
     r"More than one \(\['gpt2', 'llama'\]\) model family matches"),
    (lambda: family("gpt2"), TypeError, r"'model' must be a torch\.nn\.Module\. Got str 'gpt2'\."),
    (lambda: mlp_layers(tiny("gpt2"), "hidden"), ValueError,
     r"'which' must be one of \('in', 'out', 'both'\)\. Got 'hidden'\."),
    (lambda: attention_layers(tiny("gpt2"), "qkv"), ValueError,
     r"'which' must be one of \('in', 'out', 'both'\)\. Got 'qkv'\."),
    (lambda: spectral_partitions(tiny("gpt2"), 17), ValueError,
     r"'k' must be an int in \[1, 16\] for layer 'transformer\.h\.0\.mlp\.c_fc' of shape "
     r"\(64, 16\)\. Got 17\."),
    (lambda: spectral_partitions(tiny("gpt2"), 0), ValueError, r"'k' must be an int >= 1\. Got 0"),
    (lambda: spectral_partitions(tiny("gpt2"), "4"), TypeError,
     r"'k' must be an int >= 1\. Got str"),
    (lambda: spectral_partitions(tiny("gpt2"), 4, seed=0.5), TypeError,
     r"'seed' must be an int\. Got float 0.5\."),
    (lambda: spectral_partitions(tiny("gpt2"), 4, progress=1), TypeError,
     r"'progress' must be True or False\. Got 1\."),
    (lambda: spectral_partitions(tiny("gpt2"), 4, "transformer.h.0.mlp.c_fc"), TypeError,
     r"'layers' must be a list of layer names\. Got str 'transformer"),
    (lambda: spectral_partitions(tiny("gpt2"), 4, []), ValueError,
     r"'layers' is empty: name at least one layer\."),
    (lambda: spectral_partitions(tiny("gpt2"), 4, ["transformer.h.0.mlp"]), ValueError,
     r"'layers' names layers that are not in the model: \['transformer\.h\.0\.mlp'\]\. "
     r"Known: \['transformer\.h\.0\.attn\.c_attn'"),
    (lambda: spectral_partitions(PaperMLP(), 4, ["fc2"]), ValueError,
     r"No supported model family"),
])
def test_errors_name_parameter_constraint_and_value(call, error, match):
    with pytest.raises(error, match=match):
        call()
