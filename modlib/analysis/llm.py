"""Hugging Face causal LMs: which of their matrices are clustered, and their spectral partitions.

Three families are recognised by their module names (regular expressions, so a wrapped or
multimodal model whose language model sits under another prefix is found too):

- ``gpt2`` (GPT-2; HF ``Conv1D``): ``h.{i}.mlp.c_fc`` (MLP in), ``h.{i}.mlp.c_proj`` (MLP out),
  ``h.{i}.attn.c_attn`` (fused QKV), ``h.{i}.attn.c_proj`` (attention out).
- ``gpt_neox`` (Pythia): ``layers.{i}.mlp.dense_h_to_4h`` (in), ``….mlp.dense_4h_to_h`` (out),
  ``….attention.query_key_value`` (fused QKV), ``….attention.dense`` (attention out).
- ``llama`` (LLaMA, Gemma, Mistral, Qwen2): ``layers.{i}.mlp.up_proj`` and ``….mlp.gate_proj``
  (in), ``….mlp.down_proj`` (out), ``….self_attn.{q,k,v}_proj``, ``….self_attn.o_proj``.

A gated (SwiGLU / GeGLU) MLP computes ``down(act(gate(x)) * up(x))``: hidden neuron i reads the
residual stream through row i of ``up_proj`` *and* row i of ``gate_proj``. Both are "MLP in":
clustering only one would leave the other as an unpenalised path between clusters, so modules
would not be separated. For the same reason both get the same partition, found on the combined
edge weight ``sqrt(up² + gate²)`` (as a Conv2d edge is the norm of its kernel slice).

Fine-tuning a pretrained model uses the spectral partition of its weights (PAPER.md). Introduced
in notebook 07 (modular fine-tuning of language models).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.graph import layer_matrix, squared_matrix, weight_layers
from ..core.partition import Partition
from ..core.spectral import fill_dead, spectral_cocluster
from ..validate import check_bool, check_choice, check_int, check_layer_names, check_module

__all__ = ["Family", "Which", "family", "mlp_layers", "attention_layers", "spectral_partitions"]

Family = Literal["gpt2", "gpt_neox", "llama"]
Which = Literal["in", "out", "both"]


@dataclass(frozen=True)
class _Names:
    blocks: str  # the ModuleList of blocks: "h" (GPT-2) or "layers"
    mlp_in: tuple[str, ...]  # paths inside a block
    mlp_out: tuple[str, ...]
    attn_in: tuple[str, ...]
    attn_out: tuple[str, ...]
    example: str  # one MLP-in name, for error messages


_FAMILIES: dict[str, _Names] = {
    "gpt2": _Names("h", ("mlp.c_fc",), ("mlp.c_proj",), ("attn.c_attn",), ("attn.c_proj",),
                   "transformer.h.0.mlp.c_fc"),
    "gpt_neox": _Names("layers", ("mlp.dense_h_to_4h",), ("mlp.dense_4h_to_h",),
                       ("attention.query_key_value",), ("attention.dense",),
                       "gpt_neox.layers.0.mlp.dense_h_to_4h"),
    "llama": _Names("layers", ("mlp.up_proj", "mlp.gate_proj"), ("mlp.down_proj",),
                    ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                    ("self_attn.o_proj",), "model.layers.0.mlp.up_proj"),
}


def _pattern(names: _Names, paths: tuple[str, ...]) -> re.Pattern[str]:
    """Full-match pattern for ``<any prefix.>{blocks}.{i}.{path}``; group 1 is the block i."""
    alternatives = "|".join(re.escape(p) for p in paths)
    return re.compile(rf"(?:.*\.)?{names.blocks}\.(\d+)\.(?:{alternatives})")


def _matching(model: nn.Module, pattern: re.Pattern[str]) -> list[str]:
    return [n for n in weight_layers(model) if pattern.fullmatch(n)]


def family(model: nn.Module) -> Family:
    """The family of a Hugging Face causal LM, recognised by its MLP module names.

    Args:
        model: e.g. ``GPT2LMHeadModel``, ``GPTNeoXForCausalLM``, ``LlamaForCausalLM``,
            ``GemmaForCausalLM``, ``MistralForCausalLM``, or a module that wraps one.

    Returns:
        ``"gpt2"``, ``"gpt_neox"`` or ``"llama"`` (LLaMA, Gemma, Mistral and other models with
        ``mlp.up_proj`` / ``gate_proj`` / ``down_proj``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: no family, or more than one, matches; the message lists the supported
            families and the first module names seen.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> family(tiny_gpt2(50, n_layer=1, n_embd=16))
        'gpt2'

    Introduced in notebook 07.
    """
    check_module(model)
    found = [f for f, names in _FAMILIES.items()
             if _matching(model, _pattern(names, names.mlp_in))
             and _matching(model, _pattern(names, names.mlp_out))]
    if len(found) == 1:
        return found[0]  # type: ignore[return-value]
    supported = ", ".join(f"{f} (e.g. '{n.example}')" for f, n in _FAMILIES.items())
    seen = list(weight_layers(model))[:6] or [n for n, _ in model.named_modules() if n][:6]
    what = "No supported" if not found else f"More than one ({found})"
    raise ValueError(f"{what} model family matches the module names of "
                     f"{type(model).__name__}. Supported: {supported}. "
                     f"First module names seen: {seen}.")


def _select(model: nn.Module, which: object, ins: str, outs: str) -> list[str]:
    which = check_choice(which, "which", get_args(Which))
    names = _FAMILIES[family(model)]
    paths = {"in": getattr(names, ins), "out": getattr(names, outs)}
    chosen = paths[which] if which != "both" else paths["in"] + paths["out"]
    return _matching(model, _pattern(names, chosen))


def mlp_layers(model: nn.Module, which: Which = "in") -> list[str]:
    """Module names of the MLP matrices of every block, in model order.

    Args:
        model: a model of a supported family (see :func:`family`).
        which: ``"in"`` (d_model → d_mlp: GPT-2 ``c_fc``, Pythia ``dense_h_to_4h``, LLaMA-style
            ``up_proj`` and ``gate_proj``, see the module docstring), ``"out"`` (d_mlp →
            d_model: ``mlp.c_proj``, ``dense_4h_to_h``, ``down_proj``) or ``"both"``.

    Returns:
        Names for :class:`modlib.ClusterabilityLoss` ``layers=`` and :func:`spectral_partitions`.

    Raises:
        TypeError, ValueError: as :func:`family`; ``which`` not one of the options.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> mlp_layers(tiny_gpt2(50, n_layer=2, n_embd=16))
        ['transformer.h.0.mlp.c_fc', 'transformer.h.1.mlp.c_fc']

    Introduced in notebook 07.
    """
    return _select(model, which, "mlp_in", "mlp_out")


def attention_layers(model: nn.Module, which: Which = "both") -> list[str]:
    """Module names of the attention matrices of every block, in model order.

    Args:
        model: a model of a supported family (see :func:`family`).
        which: ``"in"`` (GPT-2's fused ``c_attn``, Pythia's fused ``query_key_value``,
            LLaMA-style ``q_proj``, ``k_proj``, ``v_proj``), ``"out"`` (``attn.c_proj``,
            ``attention.dense``, ``o_proj``) or ``"both"``.

    Returns:
        Module names, in model order.

    Raises:
        TypeError, ValueError: as :func:`mlp_layers`.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> attention_layers(tiny_gpt2(50, n_layer=1, n_embd=16))
        ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj']

    Introduced in notebook 07.
    """
    return _select(model, which, "attn_in", "attn_out")


def _check_layers(layers: object, modules: dict[str, nn.Module]) -> list[str]:
    names = check_layer_names(layers, modules, "layers")  # weight layers: Linear, Conv, Conv1D
    order = list(modules)
    return sorted(dict.fromkeys(names), key=order.index)


def _block_in_matrix(model: nn.Module, names: _Names, prefix: str, block: str) -> Tensor:
    """(d_mlp, d_model) MLP-in edge weights of one block; the norm over up and gate if gated."""
    pattern = _pattern(names, names.mlp_in)
    modules = weight_layers(model)
    mats = [layer_matrix(modules[n]).detach().float() for n in modules
            if (m := pattern.fullmatch(n)) and (n[:m.start(1)], m.group(1)) == (prefix, block)]
    return mats[0] if len(mats) == 1 else torch.stack(mats).square().sum(0).sqrt()


def _assign_rows(W2: Tensor, cols: Tensor, k: int) -> Tensor:
    """(n_out,) labels: each row joins the column cluster that holds most of its squared weight.

    With the columns fixed this is the best row labelling: a row's share inside its cluster
    depends on its own label only, so clusterability is maximal row by row.
    """
    onehot = torch.nn.functional.one_hot(cols, k).to(W2.dtype)  # (n_in, k)
    mass = W2 @ onehot  # (n_out, k): squared weight each row sends to each cluster
    return fill_dead(mass.argmax(1), mass.sum(1) > 0, k)


def spectral_partitions(model: nn.Module, k: int, layers: Sequence[str] | None = None, *,
                        seed: int = 0, progress: bool = True) -> dict[str, Partition]:
    """Spectral co-clustering of chosen matrices, with each block's MLP-in and MLP-out aligned.

    - MLP-in (``c_fc`` …; ``up_proj`` and ``gate_proj`` together): :func:`modlib.spectral_cocluster`
      of its weight graph; its rows are the block's hidden neurons.
    - MLP-out of the same block: its columns are those hidden neurons, so its column labels are
      MLP-in's row labels (whether or not MLP-in is in ``layers``: a block has one hidden-neuron
      partition). Each of its rows (a residual-stream dimension) joins the hidden cluster to
      which it has the largest squared weight mass, the best row labels given those columns.
      Dimensions with no weight join the smallest cluster.
    - Any other matrix (attention, ``lm_head``): co-clustered on its own.

    Args:
        model: a model of a supported family (see :func:`family`).
        k: clusters per matrix, at most the smaller side of each chosen matrix.
        layers: module names; default ``mlp_layers(model, "in")``.
        seed: seeds :func:`modlib.spectral_cocluster`.
        progress: show a progress bar over the layers.

    Returns:
        ``{name: Partition}`` in model order, on each layer's device, for
        ``ClusterabilityLoss(model, k, partitions=...)``.

    Raises:
        TypeError: ``model`` not an ``nn.Module``; ``k`` or ``seed`` not an int; ``layers`` not
            a list of str; ``progress`` not a bool.
        ValueError: unsupported family; unknown or no layer names; ``k`` too large for a layer.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> model = tiny_gpt2(50, n_layer=1, n_embd=16)
        >>> parts = spectral_partitions(model, 2, mlp_layers(model, "both"), progress=False)
        >>> bool((parts["transformer.h.0.mlp.c_proj"].cols ==
        ...       parts["transformer.h.0.mlp.c_fc"].rows).all())
        True

    Introduced in notebook 07.
    """
    check_module(model)
    k = check_int(k, "k", minimum=1)
    seed = check_int(seed, "seed")
    check_bool(progress, "progress")
    names = _FAMILIES[family(model)]
    modules = weight_layers(model)
    chosen = mlp_layers(model, "in") if layers is None else _check_layers(layers, modules)
    for name in chosen:
        shape = tuple(squared_matrix(modules[name]).shape)
        if k > min(shape):
            raise ValueError(f"'k' must be an int in [1, {min(shape)}] for layer '{name}' of "
                             f"shape {shape}. Got {k}.")
    in_pattern, out_pattern = _pattern(names, names.mlp_in), _pattern(names, names.mlp_out)
    hidden: dict[tuple[str, str], Partition] = {}  # (prefix, block) -> MLP-in partition

    def block_partition(match: re.Match[str]) -> Partition:
        key = (match.string[:match.start(1)], match.group(1))
        if key not in hidden:
            hidden[key] = spectral_cocluster(_block_in_matrix(model, names, *key), k, seed=seed)
        return hidden[key]

    parts: dict[str, Partition] = {}
    for name in tqdm(chosen, desc="spectral co-clustering", unit="layer", disable=not progress):
        if match := in_pattern.fullmatch(name):
            parts[name] = block_partition(match)
        elif match := out_pattern.fullmatch(name):
            cols = block_partition(match).rows
            W2 = squared_matrix(modules[name]).detach().float()  # (d_model, d_mlp)
            parts[name] = Partition(_assign_rows(W2, cols.to(W2.device), k), cols, k)
        else:
            parts[name] = spectral_cocluster(layer_matrix(modules[name]).detach().float(), k,
                                             seed=seed)
    return parts
