"""Language models, measured: enmeshment per layer, perplexity, and what each cluster does for
each kind of token.

- :func:`layer_scores`: the spectral clusterability of every MLP matrix beside its chance level
  (is a pretrained model enmeshed?).
- :func:`token_losses` and :func:`perplexity`: next-token losses, token by token.
- :func:`token_kind` and :func:`token_kinds`: a coarse kind for every token, read from its
  decoded text (letter, digit, space, punctuation, other). With the offline byte tokenizer a
  token is one byte; with GPT-2's tokenizer, ``" the"`` is a letter token.
- :func:`loss_by_kind` and :func:`ablate_by_kind`: zero one cluster of hidden neurons at a time
  and see which kinds of next token get harder to predict, beside a random-partition control
  (the language-model version of the paper's ON/OFF cluster ablation, on the same loop,
  :func:`modlib.analysis.interp.cluster_ablation`, and with the same result type).

Introduced in notebook 07 (modular language models).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..core.graph import layer_matrix, weight_layers
from ..core.metrics import chance_level, clusterability
from ..core.partition import Partition, check_partition
from ..core.spectral import spectral_cocluster
from ..hooks import eval_mode
from ..validate import (
    check_int,
    check_layer_names,
    check_mapping,
    check_module,
    check_real,
    check_tensor,
    describe,
    model_device,
)
from .interp import AblationResult, cluster_ablation

__all__ = ["KINDS", "LayerScore", "KindAblation", "layer_scores", "token_losses", "perplexity",
           "token_kind", "token_kinds", "loss_by_kind", "ablate_by_kind"]

KINDS: tuple[str, ...] = ("letter", "digit", "space", "punct", "other")


@dataclass(frozen=True)
class LayerScore:
    """The clusterability of one weight matrix under a partition, beside its chance level."""

    clusterability: float  # share of W² inside the clusters
    chance_level: float  # what an unstructured matrix scores under the same cluster sizes
    partition: Partition  # the partition measured (on the CPU)
    shape: tuple[int, int]  # (n_out, n_in) of the matrix


def layer_scores(model: nn.Module, k: int, layers: Sequence[str] | None = None, *,
                 partitions: Mapping[str, Partition] | None = None, seed: int = 0
                 ) -> dict[str, LayerScore]:
    """Clusterability and chance level of each chosen matrix of a language model.

    Each matrix is co-clustered on its own with :func:`modlib.spectral_cocluster` (its best
    partition, the enmeshment measurement of notebook 02), unless ``partitions`` gives one
    (e.g. the partitions a model was fine-tuned with).

    Args:
        model: a Hugging Face causal LM of a family that :func:`modlib.analysis.llm.family` knows.
        k: clusters per matrix.
        layers: module names; default every MLP matrix, in and out
            (``modlib.llm.mlp_layers(model, "both")``), or the names of ``partitions``.
        partitions: ``{name: Partition}`` to measure instead of co-clustering.
        seed: seeds the co-clustering.

    Returns:
        ``{name: LayerScore}`` in the order of ``layers``.

    Raises:
        ValueError: a name that is not a weight layer of ``model``, a partition that does not
            fit its matrix, or ``k`` < 1 or too large for a matrix.
        TypeError: ``k`` or ``seed`` not an int, ``layers`` not a list of str.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> scores = layer_scores(tiny_gpt2(50, n_layer=1, n_embd=16), k=2)
        >>> list(scores), scores["transformer.h.0.mlp.c_fc"].shape
        (['transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj'], (64, 16))

    Introduced in notebook 07.
    """
    from .llm import mlp_layers

    check_module(model)
    k = check_int(k, "k", minimum=1)
    seed = check_int(seed, "seed")
    if partitions is not None:
        check_mapping(partitions, "partitions", "{layer name: Partition}")
        for key, part in partitions.items():
            check_partition(part, f"partitions[{key!r}]")
    if layers is None:
        layers = list(partitions) if partitions is not None else mlp_layers(model, "both")
    modules = weight_layers(model)
    layers = check_layer_names(layers, modules, "layers")
    scores = {}
    for name in layers:
        W = layer_matrix(modules[name]).detach().float().cpu()  # (n_out, n_in)
        if partitions is not None and name in partitions:
            part = partitions[name].to("cpu")
        else:
            part = spectral_cocluster(W, k, seed=seed)
        part.check_fits(W, name)
        scores[name] = LayerScore(float(clusterability(W, part)), chance_level(part), part,
                                  (W.shape[0], W.shape[1]))
    return scores


def _check_blocks(blocks: object) -> Tensor:
    if not isinstance(blocks, Tensor) or blocks.dtype != torch.long or blocks.ndim != 2:
        raise TypeError(f"'blocks' must be a LongTensor (n_blocks, seq_len + 1) of token ids, "
                        f"as modlib.data.token_blocks returns. Got {describe(blocks)}.")
    if blocks.shape[0] == 0 or blocks.shape[1] < 2:
        raise ValueError(f"'blocks' must hold at least one block of 2 or more tokens. Got "
                         f"shape {tuple(blocks.shape)}.")
    return blocks


@torch.no_grad()
def token_losses(model: nn.Module, blocks: Tensor, *, batch_size: int = 16) -> Tensor:
    """Next-token cross-entropy of every position of every block, in nats.

    Args:
        model: a causal LM: ``model(ids)`` gives logits ``(B, T, vocab)`` or an output with
            ``.logits``.
        blocks: ``(n_blocks, T + 1)`` token ids (:func:`modlib.training.data.token_blocks`);
            inputs are ``blocks[:, :-1]``, targets ``blocks[:, 1:]``.
        batch_size: blocks per forward pass.

    Returns:
        ``(n_blocks, T)`` float32 losses on the CPU; their mean is the evaluation loss.

    Raises:
        TypeError: ``blocks`` is not a 2-D LongTensor, or ``batch_size`` not an int.
        ValueError: ``blocks`` is empty, or ``batch_size`` < 1.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> token_losses(tiny_gpt2(50, n_layer=1, n_embd=16), torch.zeros(3, 9).long()).shape
        torch.Size([3, 8])

    Introduced in notebook 07.
    """
    check_module(model)
    blocks = _check_blocks(blocks)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = model_device(model)
    out = []
    with eval_mode(model):
        for batch in blocks.split(batch_size):
            batch = batch.to(device)
            result = model(batch[:, :-1])
            logits = getattr(result, "logits", result)  # (B, T, vocab)
            loss = nn.functional.cross_entropy(logits.float().transpose(1, 2), batch[:, 1:],
                                               reduction="none")  # (B, T)
            out.append(loss.cpu())
    return torch.cat(out)


def perplexity(logits: Tensor, targets: Tensor) -> Tensor:
    """exp of the mean next-token cross-entropy: the model's average branching factor.

    Args:
        logits: ``(..., vocab)`` unnormalised scores.
        targets: ``(...)`` token ids, the shape of ``logits`` without its last axis.

    Returns:
        A scalar tensor ≥ 1 (exactly ``vocab`` for uniform logits).

    Raises:
        TypeError: ``logits`` not a float tensor, ``targets`` not an integer tensor.
        ValueError: the shapes do not match, no token, or a target outside the vocabulary.

    Example:
        >>> round(float(perplexity(torch.zeros(2, 3, 50), torch.zeros(2, 3).long())), 4)
        50.0

    Introduced in notebook 07.
    """
    check_tensor(logits, "logits", kind="float")
    check_tensor(targets, "targets", kind="int")
    if logits.ndim < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"'logits' must have the shape of 'targets' plus a vocabulary axis. "
                         f"Got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}.")
    if targets.numel() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"'logits' and 'targets' must hold at least one token and one "
                         f"vocabulary entry. Got logits {tuple(logits.shape)}.")
    if int(targets.min()) < 0 or int(targets.max()) >= logits.shape[-1]:
        raise ValueError(f"'targets' must be token ids in [0, {logits.shape[-1]}). Got values in "
                         f"[{int(targets.min())}, {int(targets.max())}].")
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                       targets.reshape(-1))
    return loss.exp()


def token_kind(text: str) -> str:
    """The kind of a token, from its decoded text: one of :data:`KINDS`.

    Read from the first character that is not whitespace: ``"letter"`` (``str.isalpha``),
    ``"digit"`` (``str.isdigit``), ``"punct"`` (one of ``string.punctuation``) or ``"other"``
    (anything else, e.g. the replacement character of a lone non-ASCII byte). A token of
    whitespace only is ``"space"``; the empty string is ``"other"``.

    Raises:
        TypeError: ``text`` is not a str.

    Example:
        >>> [token_kind(t) for t in (" the", "7", "\\n\\n", ",", "\\ufffd")]
        ['letter', 'digit', 'space', 'punct', 'other']

    Introduced in notebook 07.
    """
    if not isinstance(text, str):
        raise TypeError(f"'text' must be a str. Got {describe(text)}.")
    stripped = text.lstrip()
    if not stripped:
        return "space" if text else "other"
    first = stripped[0]
    if first.isalpha():
        return "letter"
    if first.isdigit():
        return "digit"
    return "punct" if first in string.punctuation else "other"


def token_kinds(tokenizer: Any, vocab_size: int | None = None) -> Tensor:
    """The kind of every token id, as an index into :data:`KINDS`.

    Each id is decoded on its own and classified by :func:`token_kind`; the end-of-text token
    is ``"other"``.

    Args:
        tokenizer: anything with ``decode(ids) -> str``
            (:func:`modlib.training.data.get_tokenizer`).
        vocab_size: how many ids; default ``len(tokenizer)``.

    Returns:
        LongTensor ``(vocab_size,)`` with values in ``[0, len(KINDS))``.

    Raises:
        ValueError: ``vocab_size`` < 1.
        TypeError: ``vocab_size`` not an int.

    Example:
        >>> from modlib.training.text import ByteTokenizer
        >>> [KINDS[i] for i in token_kinds(ByteTokenizer())[[97, 48, 32, 46, 200, 256]]]
        ['letter', 'digit', 'space', 'punct', 'other', 'other']

    Introduced in notebook 07.
    """
    if not callable(getattr(tokenizer, "decode", None)):
        raise TypeError(f"'tokenizer' must have a decode(ids) method. Got {describe(tokenizer)}.")
    if vocab_size is None and not hasattr(tokenizer, "__len__"):
        raise TypeError(f"'vocab_size' must be given for a tokenizer without len(). "
                        f"Got {describe(tokenizer)}.")
    n = check_int(len(tokenizer) if vocab_size is None else vocab_size, "vocab_size", minimum=1)
    eos = getattr(tokenizer, "eos_token_id", None)
    index = {kind: i for i, kind in enumerate(KINDS)}
    return torch.tensor([index["other"] if i == eos else index[token_kind(tokenizer.decode([i]))]
                         for i in range(n)], dtype=torch.long)


def loss_by_kind(losses: Tensor, kinds: Tensor, n_kinds: int = len(KINDS)) -> Tensor:
    """Mean loss over the tokens of each kind.

    Args:
        losses: per-token losses, any shape (e.g. ``(n_blocks, T)`` from :func:`token_losses`).
        kinds: the kind index of each token, same shape, values in ``[0, n_kinds)``.
        n_kinds: number of kinds.

    Returns:
        ``(n_kinds,)`` float64 means; NaN for a kind with no token.

    Raises:
        TypeError: ``losses`` not a float tensor, ``kinds`` not an integer tensor.
        ValueError: shapes differ, no token, or a kind outside ``[0, n_kinds)``.

    Example:
        >>> loss_by_kind(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
        tensor([2., nan, 5.], dtype=torch.float64)

    Introduced in notebook 07.
    """
    n_kinds = check_int(n_kinds, "n_kinds", minimum=1)
    check_tensor(losses, "losses", kind="float")
    check_tensor(kinds, "kinds", kind="int")
    if losses.shape != kinds.shape:
        raise ValueError(f"'losses' and 'kinds' must have the same shape. Got "
                         f"{tuple(losses.shape)} and {tuple(kinds.shape)}.")
    kinds = kinds.flatten().long()
    if not kinds.numel():
        raise ValueError("'losses' and 'kinds' hold no token: there is no mean to take.")
    if (int(kinds.min()) < 0 or int(kinds.max()) >= n_kinds):
        raise ValueError(f"'kinds' must lie in [0, {n_kinds}). Got values in "
                         f"[{int(kinds.min())}, {int(kinds.max())}].")
    total = torch.bincount(kinds, weights=losses.flatten().double(), minlength=n_kinds)
    count = torch.bincount(kinds, minlength=n_kinds).double()
    return total / count  # 0 / 0 = NaN for an absent kind


KindAblation = AblationResult  # the old name of the result of ablate_by_kind


def ablate_by_kind(model: nn.Module, partitions: dict[str, Partition], blocks: Tensor,
                   kind_of_id: Tensor, *, batch_size: int = 16, seed: int = 0,
                   min_drop: float = 0.05, min_tokens: int = 100, n_controls: int = 1
                   ) -> AblationResult:
    """Zero each cluster's neurons in turn and measure the next-token loss on each kind of token.

    Cluster c is zeroed in every layer of ``partitions`` at once
    (:func:`modlib.analysis.interp.ablate`: the layer's output neurons with row label c). For an
    MLP-in matrix those are the block's hidden neurons. A control does the same with each
    layer's neurons shuffled among clusters of the same sizes (seeded ``seed``, ``seed + 1``, …
    for ``n_controls`` controls); only a specialization above what the controls reach means that
    clusters serve different kinds of tokens. The loop is
    :func:`modlib.analysis.interp.cluster_ablation`.

    Args:
        model: a causal LM (as :func:`token_losses`).
        partitions: ``{layer name: Partition}`` with one k, e.g. the fine-tuning partitions.
        blocks: ``(n_blocks, T + 1)`` token ids; the kind of a position is that of its target.
        kind_of_id: ``(vocab,)`` kind index of every token id (:func:`token_kinds`).
        batch_size: blocks per forward pass.
        seed: seeds the first control partition.
        min_drop: as :func:`modlib.analysis.interp.specialization` (here a loss increase, in nats).
        min_tokens: kinds with fewer target tokens are left out of the specialization
            scores (their mean losses are too noisy); ``drop`` still holds them.
        n_controls: how many random control partitions to score.

    Returns:
        An :class:`modlib.analysis.interp.AblationResult` (also named :data:`KindAblation`):
        ``drop`` (k, n_kinds), the increase of the mean loss (nats) on each kind when cluster c
        is zeroed; ``base`` (n_kinds,) the intact model's mean losses; ``labels`` :data:`KINDS`;
        ``counts`` the target tokens of each kind; ``control_drop`` and ``control`` the first
        control's, ``controls`` every control's score. The model reads ``blocks``
        (1 + ``n_controls``) k + 1 times.

    Raises:
        ValueError: as :func:`modlib.analysis.interp.ablate` and :func:`token_losses`; a token id
            outside ``kind_of_id``; ``min_tokens`` or ``n_controls`` < 1.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> model = tiny_gpt2(5, n_layer=1, n_embd=16)
        >>> from modlib import contiguous_partition
        >>> parts = {"transformer.h.0.mlp.c_fc": contiguous_partition(64, 16, 2)}
        >>> kinds = torch.tensor([0, 1, 2, 3, 4])
        >>> ablate_by_kind(model, parts, torch.arange(5).repeat(2, 2), kinds).drop.shape
        torch.Size([2, 5])

    Introduced in notebook 07.
    """
    check_module(model)
    blocks = _check_blocks(blocks)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(seed, "seed")
    check_real(min_drop, "min_drop", minimum=0, maximum=1, low_open=True)
    min_tokens = check_int(min_tokens, "min_tokens", minimum=1)
    check_int(n_controls, "n_controls", minimum=1)
    check_tensor(kind_of_id, "kind_of_id", kind="int", ndim=1, nonempty=True)
    if int(kind_of_id.min()) < 0 or int(kind_of_id.max()) >= len(KINDS):
        raise ValueError(f"'kind_of_id' must hold kind indices in [0, {len(KINDS)}). Got values "
                         f"in [{int(kind_of_id.min())}, {int(kind_of_id.max())}].")
    if int(blocks.max()) >= kind_of_id.numel() or int(blocks.min()) < 0:
        raise ValueError(f"'blocks' holds token ids in [{int(blocks.min())}, "
                         f"{int(blocks.max())}]; 'kind_of_id' covers [0, {kind_of_id.numel()}).")
    kinds = kind_of_id.cpu()[blocks[:, 1:]]  # (n_blocks, T): kind of each target
    n_kinds = len(KINDS)
    counts = torch.bincount(kinds.flatten(), minlength=n_kinds)

    def per_kind() -> Tensor:
        return loss_by_kind(token_losses(model, blocks, batch_size=batch_size), kinds, n_kinds)

    return cluster_ablation(model, partitions, per_kind, lower_is_better=True, seed=seed,
                            n_controls=n_controls, min_drop=min_drop,
                            scored=counts >= min_tokens, labels=KINDS, counts=counts)
