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
  (the language-model version of the paper's ON/OFF cluster ablation).

Introduced in notebook 07 (modular language models).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..core.graph import layer_matrix, weight_layers
from ..core.metrics import chance_level, clusterability
from ..core.partition import Partition
from ..core.spectral import spectral_cocluster
from .interp import _shuffled, ablate, specialization

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
            fit its matrix, or ``k`` too large for a matrix.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> scores = layer_scores(tiny_gpt2(50, n_layer=1, n_embd=16), k=2)
        >>> list(scores), scores["transformer.h.0.mlp.c_fc"].shape
        (['transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj'], (64, 16))

    Introduced in notebook 07.
    """
    from .llm import mlp_layers

    if layers is None:
        layers = list(partitions) if partitions is not None else mlp_layers(model, "both")
    modules = weight_layers(model)
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise ValueError(f"'layers' must name weight layers of the model. Got unknown names "
                         f"{unknown}; known ones start {list(modules)[:6]}.")
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
        what = (f"a {blocks.dtype} tensor of shape {tuple(blocks.shape)}"
                if isinstance(blocks, Tensor) else type(blocks).__name__)
        raise TypeError(f"'blocks' must be a LongTensor (n_blocks, seq_len + 1) of token ids, "
                        f"as modlib.data.token_blocks returns. Got {what}.")
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
        inputs are
            ``blocks[:, :-1]``, targets ``blocks[:, 1:]``.
        batch_size: blocks per forward pass.

    Returns:
        ``(n_blocks, T)`` float32 losses on the CPU; their mean is the evaluation loss.

    Raises:
        TypeError: ``blocks`` is not a 2-D LongTensor.
        ValueError: ``blocks`` is empty, or ``batch_size`` < 1.

    Example:
        >>> from modlib.training.models import tiny_gpt2
        >>> token_losses(tiny_gpt2(50, n_layer=1, n_embd=16), torch.zeros(3, 9).long()).shape
        torch.Size([3, 8])

    Introduced in notebook 07.
    """
    blocks = _check_blocks(blocks)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"'batch_size' must be an int >= 1. Got {batch_size!r}.")
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = []
    try:
        for batch in blocks.split(batch_size):
            batch = batch.to(device)
            result = model(batch[:, :-1])
            logits = getattr(result, "logits", result)  # (B, T, vocab)
            loss = nn.functional.cross_entropy(logits.float().transpose(1, 2), batch[:, 1:],
                                               reduction="none")  # (B, T)
            out.append(loss.cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def perplexity(logits: Tensor, targets: Tensor) -> Tensor:
    """exp of the mean next-token cross-entropy: the model's average branching factor.

    Args:
        logits: ``(..., vocab)`` unnormalised scores.
        targets: ``(...)`` token ids, the shape of ``logits`` without its last axis.

    Returns:
        A scalar tensor ≥ 1 (exactly ``vocab`` for uniform logits).

    Raises:
        ValueError: the shapes do not match.

    Example:
        >>> round(float(perplexity(torch.zeros(2, 3, 50), torch.zeros(2, 3).long())), 4)
        50.0

    Introduced in notebook 07.
    """
    if logits.ndim < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"'logits' must have the shape of 'targets' plus a vocabulary axis. "
                         f"Got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}.")
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
        raise TypeError(f"'text' must be a str. Got {type(text).__name__}.")
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

    Example:
        >>> from modlib.training.text import ByteTokenizer
        >>> [KINDS[i] for i in token_kinds(ByteTokenizer())[[97, 48, 32, 46, 200, 256]]]
        ['letter', 'digit', 'space', 'punct', 'other', 'other']

    Introduced in notebook 07.
    """
    n = len(tokenizer) if vocab_size is None else vocab_size
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"'vocab_size' must be an int >= 1. Got {n!r}.")
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
        ValueError: shapes differ, or a kind outside ``[0, n_kinds)``.

    Example:
        >>> loss_by_kind(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
        tensor([2., nan, 5.], dtype=torch.float64)

    Introduced in notebook 07.
    """
    if losses.shape != kinds.shape:
        raise ValueError(f"'losses' and 'kinds' must have the same shape. Got "
                         f"{tuple(losses.shape)} and {tuple(kinds.shape)}.")
    kinds = kinds.flatten().long()
    if kinds.numel() and (int(kinds.min()) < 0 or int(kinds.max()) >= n_kinds):
        raise ValueError(f"'kinds' must lie in [0, {n_kinds}). Got values in "
                         f"[{int(kinds.min())}, {int(kinds.max())}].")
    total = torch.bincount(kinds, weights=losses.flatten().double(), minlength=n_kinds)
    count = torch.bincount(kinds, minlength=n_kinds).double()
    return total / count  # 0 / 0 = NaN for an absent kind


@dataclass
class KindAblation:
    """What zeroing each cluster of hidden neurons does to the loss on each kind of token."""

    kinds: tuple[str, ...]  # names of the kinds, the columns below
    counts: Tensor  # (n_kinds,): how many target tokens of each kind were scored
    base: Tensor  # (n_kinds,): mean loss of the intact model on each kind (nats)
    delta: Tensor  # (k, n_kinds): increase of that mean loss when cluster c is zeroed
    control_delta: Tensor  # (k, n_kinds): the same for the first random control partition
    specialization: float  # modlib.interp.specialization of delta's well-counted kinds, in [0, 1]
    control: float  # the same score for the first control partition
    controls: list[float] = field(default_factory=list)  # one score per control partition


def ablate_by_kind(model: nn.Module, partitions: dict[str, Partition], blocks: Tensor,
                   kind_of_id: Tensor, *, batch_size: int = 16, seed: int = 0,
                   min_drop: float = 0.05, min_tokens: int = 100, n_controls: int = 1
                   ) -> KindAblation:
    """Zero each cluster's neurons in turn and measure the next-token loss on each kind of token.

    Cluster c is zeroed in every layer of ``partitions`` at once
    (:func:`modlib.analysis.interp.ablate`:
    the layer's output neurons with row label c). For an MLP-in matrix those are the block's
    hidden neurons. A control does the same with each layer's neurons shuffled among clusters
    of the same sizes (seeded ``seed``, ``seed + 1``, … for ``n_controls`` controls); only a
    specialization above what the controls reach means that clusters serve different kinds of
    tokens.

    Args:
        model: a causal LM (as :func:`token_losses`).
        partitions: ``{layer name: Partition}`` with one k, e.g. the fine-tuning partitions.
        blocks: ``(n_blocks, T + 1)`` token ids; the kind of a position is that of its target.
        kind_of_id: ``(vocab,)`` kind index of every token id (:func:`token_kinds`).
        batch_size: blocks per forward pass.
        seed: seeds the first control partition.
        min_drop: as :func:`modlib.analysis.interp.specialization` (here a loss increase, in nats).
        min_tokens: kinds with fewer target tokens are left out of the specialization
            scores (their mean losses are too noisy); ``delta`` still holds them.
        n_controls: how many random control partitions to score.

    Returns:
        A :class:`KindAblation`; ``control_delta`` and ``control`` are the first control's,
        ``controls`` every control's score. The model reads ``blocks``
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
        >>> ablate_by_kind(model, parts, torch.arange(5).repeat(2, 2), kinds).delta.shape
        torch.Size([2, 5])

    Introduced in notebook 07.
    """
    blocks = _check_blocks(blocks)
    for arg, value in (("min_tokens", min_tokens), ("n_controls", n_controls)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{arg}' must be an int >= 1. Got {value!r}.")
    if int(blocks.max()) >= kind_of_id.numel() or int(blocks.min()) < 0:
        raise ValueError(f"'blocks' holds token ids in [{int(blocks.min())}, "
                         f"{int(blocks.max())}]; 'kind_of_id' covers [0, {kind_of_id.numel()}).")
    kinds = kind_of_id.cpu()[blocks[:, 1:]]  # (n_blocks, T): kind of each target
    n_kinds = len(KINDS)

    def per_kind() -> Tensor:
        return loss_by_kind(token_losses(model, blocks, batch_size=batch_size), kinds, n_kinds)

    def deltas(parts: dict[str, Partition], base: Tensor) -> Tensor:
        k = next(iter(parts.values())).k
        rows = []
        for c in range(k):
            with ablate(model, parts, c):
                rows.append(per_kind() - base)
        return torch.stack(rows)  # (k, n_kinds)

    base = per_kind()
    delta = deltas(partitions, base)
    controls = [deltas(_shuffled(partitions, seed + i), base) for i in range(n_controls)]
    counts = torch.bincount(kinds.flatten(), minlength=n_kinds)
    enough = counts >= min_tokens  # (n_kinds,): the kinds that count in the scores

    def score(d: Tensor) -> float:
        return specialization(d[:, enough], min_drop=min_drop) if bool(enough.any()) else 0.0

    scores = [score(c) for c in controls]
    return KindAblation(KINDS, counts, base, delta, controls[0], score(delta), scores[0], scores)

