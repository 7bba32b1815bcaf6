"""Interpretability of clustered models: activations, cluster ablation, specialization, circuits.

:func:`record` and :func:`ablate` hold forward hooks (global state on a module) only inside a
``with`` block and always remove them. :func:`ablate_clusters` is the paper's ON/OFF ablation,
condensed into a specialization score beside a random-partition control (Golechha et al. 2025,
*Modular Training of Neural Networks aids Interpretability*); circuits are in
:mod:`modlib.analysis.circuits`.
Introduced in notebook 04 (interpreting clusters).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..core.graph import layer_matrix
from ..core.partition import Partition

__all__ = ["AblationResult", "Mode", "ablate", "ablate_clusters", "class_accuracy", "record",
           "specialization"]

Mode = Literal["off", "on"]  # "off": remove cluster c; "on": keep only cluster c


def _modules(model: nn.Module, names: Iterable[str], what: str) -> dict[str, nn.Module]:
    known = dict(model.named_modules())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"'{what}' has names that are not modules of the model: {unknown}. "
                         f"Known: {[n for n in known if n]}.")
    return {n: known[n] for n in names}


@contextmanager
def _hooks(modules: dict[str, nn.Module], make_hook: Callable) -> Iterator[None]:
    handles = [m.register_forward_hook(make_hook(n, m)) for n, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def record(model: nn.Module, names: Sequence[str], *, detach: bool = True
           ) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of named modules during the forward passes inside the block.

    ``names`` are module names as in ``model.named_modules()`` (or one name); ``detach=False``
    keeps the outputs' graph, for gradients.

    Yields:
        ``{name: output of the last forward pass}``, e.g. ``(B, n_out)`` for a Linear.

    Raises:
        ValueError: a name that is not a module of ``model`` (the message lists the known ones).

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        >>> with record(model, ["0"]) as acts:
        ...     _ = model(torch.zeros(2, 3))
        >>> acts["0"].shape
        torch.Size([2, 4])

    Introduced in notebook 04.
    """
    modules = _modules(model, [names] if isinstance(names, str) else names, "names")
    acts: dict[str, Tensor] = {}

    def make_hook(name: str, module: nn.Module) -> Callable:
        def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
            acts[name] = output.detach() if detach else output
        return hook

    with _hooks(modules, make_hook):
        yield acts


@contextmanager
def _frozen_prefix(model: nn.Module, first: Sequence[nn.Module], X: Tensor) -> Iterator[None]:
    """Inside the block, leaf modules replay what they computed on ``X`` before any of
    ``first`` ran, instead of computing it again.

    Nothing that runs before a module in a forward pass can depend on that module's weights or
    on anything after it; so while only ``first`` and later modules change, the earlier outputs
    are fixed. Pruning and circuit searches call the model hundreds of times; replaying the
    early layers (e.g. a CNN's convolutions) makes each call cost only the layers from ``first``
    on. A module that also runs later (a shared ReLU) replays its early calls and computes the
    later ones. The model must be called on ``X`` only, in eval mode, with a forward that takes
    the same path every time; a replayed output changed in place downstream is restored from a
    stored copy before it is replayed again.
    """
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    calls: list[tuple[nn.Module, object]] = []

    def make_hook(name: str, module: nn.Module) -> Callable:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            calls.append((module, output.detach().clone() if isinstance(output, Tensor)
                          else output))
        return hook

    with _hooks({str(i): m for i, m in enumerate(leaves)}, make_hook), torch.no_grad():
        model(X)
    ids = {id(m) for m in first}
    cut = next((i for i, (m, _) in enumerate(calls) if id(m) in ids), len(calls))
    early: dict[int, tuple[nn.Module, list]] = {}
    for m, out in calls[:cut]:
        early.setdefault(id(m), (m, []))[1].append(out)
    early = {i: v for i, v in early.items() if all(isinstance(o, Tensor) for o in v[1])}
    counts = dict.fromkeys(early, 0)  # calls of each module in the current forward pass
    saved = {i: m.__dict__.get("forward") for i, (m, _) in early.items()}

    def make_forward(m: nn.Module, outs: list[Tensor]) -> Callable:
        compute, key = m.forward, id(m)
        replayed = [o.clone() for o in outs]  # handed out; `outs` stays pristine
        versions = [o._version for o in replayed]

        def forward(*args: object, **kwargs: object) -> object:
            i = counts[key]
            counts[key] += 1
            if i >= len(outs):
                return compute(*args, **kwargs)  # a call after the cut: compute it
            if replayed[i]._version != versions[i]:  # modified in place since: restore
                replayed[i] = outs[i].clone()
                versions[i] = replayed[i]._version
            return replayed[i]
        return forward

    def reset(module: nn.Module, args: object) -> None:
        for key in counts:
            counts[key] = 0

    handle = model.register_forward_pre_hook(reset)
    try:
        for m, outs in early.values():
            m.forward = make_forward(m, outs)
        yield
    finally:
        handle.remove()
        for key, (m, _) in early.items():
            m.__dict__.pop("forward", None)
            if saved[key] is not None:
                m.forward = saved[key]


def _check_mode(mode: object) -> Mode:
    if mode not in get_args(Mode):
        raise ValueError(f"'mode' must be one of {get_args(Mode)}. Got {mode!r}.")
    return mode  # type: ignore[return-value]


def _common_k(partitions: dict[str, Partition]) -> int:
    if not isinstance(partitions, dict) or not partitions:
        raise ValueError(f"'partitions' must be a non-empty dict {{layer name: Partition}}. "
                         f"Got {partitions!r}.")
    ks = {name: p.k for name, p in partitions.items()}
    if len(set(ks.values())) != 1:
        raise ValueError(f"'partitions' must all have the same k. Got {ks}.")
    return next(iter(ks.values()))


def _zero_mask(part: Partition, cluster: int, mode: Mode, module: nn.Module, name: str) -> Tensor:
    n_out = layer_matrix(module).shape[0]
    if part.rows.numel() != n_out:
        raise ValueError(f"'partitions' entry '{name}' has {part.rows.numel()} rows; layer "
                         f"'{name}' has {n_out} output neurons.")
    inside = part.rows == cluster
    return inside if mode == "off" else ~inside  # (n_out,) True where the neuron is zeroed


@contextmanager
def ablate(model: nn.Module, partitions: dict[str, Partition], cluster: int, *,
           mode: Mode = "off") -> Iterator[None]:
    """Zero a cluster's output neurons (``rows``) in every layer of ``partitions`` in the block.

    ``partitions`` is ``{layer name: Partition}``, e.g. ``ClusterabilityLoss(...).partitions``:
    pass one layer's entry to ablate that layer alone, or every layer of aligned partitions to
    remove a module end to end (the notebooks' default). Zeroed: columns of a Linear output
    ``(B, n_out)`` or ``(B, T, n_out)``, channels of a Conv2d output ``(B, C, H, W)``; later
    layers' biases still act. ``mode="off"`` zeroes cluster ``cluster``; ``"on"`` zeroes every
    other cluster (keeps only ``cluster``).

    Raises:
        ValueError: unknown layer names, a bad ``mode``, ``cluster`` outside ``[0, k)``, partitions
            with different k, or rows that do not match a layer's outputs.
        TypeError: a named module without a weight graph (see :func:`modlib.layer_matrix`).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 4))
        >>> parts = {"0": Partition(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1]), k=2)}
        >>> with ablate(model, parts, 0):
        ...     out = model(torch.ones(1, 2))
        >>> out[0, :2].tolist()
        [0.0, 0.0]

    Introduced in notebook 04.
    """
    mode, k = _check_mode(mode), _common_k(partitions)
    if isinstance(cluster, bool) or not isinstance(cluster, int) or not 0 <= cluster < k:
        raise ValueError(f"'cluster' must be an int in [0, {k}). Got {cluster!r}.")
    modules = _modules(model, partitions, "partitions")
    masks = {n: _zero_mask(p, cluster, mode, modules[n], n) for n, p in partitions.items()}

    def make_hook(name: str, module: nn.Module) -> Callable:
        mask = masks[name][:, None, None] if isinstance(module, nn.Conv2d) else masks[name]

        def hook(module: nn.Module, inputs: object, output: Tensor) -> Tensor:
            return output.masked_fill(mask.to(output.device), 0)  # conv mask: (C, 1, 1)
        return hook

    with _hooks(modules, make_hook):
        yield


@torch.no_grad()
def class_accuracy(model: nn.Module, loader: Iterable, n_classes: int) -> Tensor:
    """Accuracy on each class, ``(n_classes,)``; NaN for a class that ``loader`` does not hold.

    ``loader`` yields ``(X, y)`` batches with ``y`` (B,) integer labels; ``model(X)`` gives
    logits ``(B, n_classes)``.

    Raises:
        ValueError: ``n_classes < 1``, or a label outside ``[0, n_classes)``.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> _ = nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)  # ties: class 0
        >>> class_accuracy(model, [(torch.zeros(4, 3), torch.tensor([0, 0, 1, 1]))], 2)
        tensor([1., 0.])

    Introduced in notebook 04.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"'n_classes' must be an int >= 1. Got {n_classes!r}.")
    was_training, device = model.training, next(model.parameters()).device
    correct, total = torch.zeros(n_classes), torch.zeros(n_classes)
    model.eval()
    try:
        for batch in loader:
            X, y = batch[0].to(device), batch[1].to(device)
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
                raise ValueError(f"Labels must lie in [0, {n_classes}) for n_classes="
                                 f"{n_classes}. Got values in [{int(y.min())}, {int(y.max())}].")
            hit = (model(X).argmax(-1) == y).float().cpu()
            correct += torch.bincount(y.cpu(), weights=hit, minlength=n_classes)
            total += torch.bincount(y.cpu(), minlength=n_classes)
    finally:
        model.train(was_training)
    return correct / total  # 0 / 0 = NaN for an absent class


def specialization(drop: Tensor, *, min_drop: float = 0.05) -> float:
    """How much each class depends on one cluster: 0 (all clusters equally) to 1 (exactly one).

    For each class c the drops ``drop[:, c]``, clipped at 0, are normalised to a distribution
    ``p_c`` over the k clusters, and the class scores ``1 − H(p_c) / log k`` (H: entropy). The
    score is the mean over classes whose largest drop is at least ``min_drop``; the others (and
    NaN) carry no information, and one lost example would otherwise count as perfect
    specialization. 0 when no class is left, or when k = 1.

    Args:
        drop: ``(k, n_classes)`` accuracy drops, as :attr:`AblationResult.drop`.
        min_drop: smallest largest drop for a class to count.

    Raises:
        ValueError: ``drop`` not 2-D, or ``min_drop`` not in ``(0, 1]``.

    Example:
        >>> specialization(torch.eye(2)), specialization(torch.ones(2, 2))
        (1.0, 0.0)

    Introduced in notebook 04.
    """
    if drop.ndim != 2:
        raise ValueError(f"'drop' must be 2-D (k, n_classes). Got shape {tuple(drop.shape)}.")
    if not isinstance(min_drop, (int, float)) or not 0 < min_drop <= 1:
        raise ValueError(f"'min_drop' must be a number in (0, 1]. Got {min_drop!r}.")
    k, d = drop.shape[0], drop.float().clamp(min=0)  # NaN stays NaN
    informative = d.amax(0) >= min_drop  # (n_classes,), False for NaN
    if k < 2 or not bool(informative.any()):
        return 0.0
    p = d[:, informative] / d[:, informative].sum(0)  # (k, n_informative), columns sum to 1
    entropy = -(p * p.clamp(min=1e-30).log()).sum(0)  # 0·log 0 = 0
    return float((1 - entropy / math.log(k)).mean())


@dataclass
class AblationResult:
    """What ablating each cluster does to each class (see :func:`ablate_clusters`)."""

    drop: Tensor  # (k, n_classes): base accuracy − accuracy with cluster c ablated
    base: Tensor  # (n_classes,): per-class accuracy of the intact model
    specialization: float  # specialization(drop), in [0, 1]
    control: float  # the same for a seeded random partition with the same cluster sizes
    control_drop: Tensor  # (k, n_classes): the drops under that random partition
    controls: list[float] = field(default_factory=list)  # one score per control partition


def _drops(model: nn.Module, partitions: dict[str, Partition], loader: Iterable, k: int,
           n_classes: int, base: Tensor, mode: Mode) -> Tensor:
    rows = []
    for c in range(k):
        with ablate(model, partitions, c, mode=mode):
            rows.append(base - class_accuracy(model, loader, n_classes))
    return torch.stack(rows)  # (k, n_classes)


def _shuffled(partitions: dict[str, Partition], seed: int) -> dict[str, Partition]:
    # Same cluster sizes in every layer, neurons assigned at random (independently per layer).
    g = torch.Generator().manual_seed(seed)
    return {name: Partition(p.rows.cpu()[torch.randperm(p.rows.numel(), generator=g)],
                            p.cols.cpu()[torch.randperm(p.cols.numel(), generator=g)], p.k)
            for name, p in partitions.items()}


def ablate_clusters(model: nn.Module, partitions: dict[str, Partition], loader: Iterable, *,
                    n_classes: int = 10, mode: Mode = "off", seed: int = 0,
                    min_drop: float = 0.05, n_controls: int = 1) -> AblationResult:
    """Ablate each cluster in turn and measure every class's accuracy drop (ON/OFF ablation).

    ``partitions`` and ``mode`` are as in :func:`ablate` (one k for all layers); ``loader`` is
    re-iterable ``(X, y)`` batches, read (1 + ``n_controls``) k + 1 times; the control
    partitions are seeded ``seed``, ``seed + 1``, …; ``min_drop`` is as in
    :func:`specialization`.

    Returns:
        :class:`AblationResult`: ``drop`` (k, n_classes), ``base`` (n_classes,),
        ``specialization``, and ``control``, the score when each layer's neurons are shuffled among
        clusters of the same sizes (seed ``seed``); ``controls`` holds the scores of all
        ``n_controls`` shuffles, whose spread shows how much the score moves by chance. Only a
        score well above its controls shows specialization.

    Raises:
        ValueError: as :func:`ablate`, :func:`class_accuracy` and :func:`specialization`, or
            ``n_controls`` not an int >= 1.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> parts = {"0": Partition(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1]), k=2)}
        >>> data = [(torch.randn(8, 2), torch.tensor([0, 1] * 4))]
        >>> ablate_clusters(model, parts, data, n_classes=2).drop.shape
        torch.Size([2, 2])

    Introduced in notebook 04.
    """
    mode, k = _check_mode(mode), _common_k(partitions)
    if isinstance(n_controls, bool) or not isinstance(n_controls, int) or n_controls < 1:
        raise ValueError(f"'n_controls' must be an int >= 1. Got {n_controls!r}.")
    base = class_accuracy(model, loader, n_classes)
    drop = _drops(model, partitions, loader, k, n_classes, base, mode)
    controls = [_drops(model, _shuffled(partitions, seed + i), loader, k, n_classes, base, mode)
                for i in range(n_controls)]
    scores = [specialization(c, min_drop=min_drop) for c in controls]
    return AblationResult(drop=drop, base=base, control_drop=controls[0],
                          specialization=specialization(drop, min_drop=min_drop),
                          control=scores[0], controls=scores)
