"""Interpretability of clustered models: cluster ablation, specialization and its verdicts.

:func:`ablate` zeroes a cluster's neurons only inside a ``with`` block (through
:func:`modlib.hooks.zero_outputs`, which always removes its hooks). :func:`cluster_ablation` is the
one loop that ablates each cluster in turn and beside random-partition controls; on it,
:func:`ablate_clusters` is the paper's ON/OFF ablation class by class, condensed into a
specialization score (Golechha et al. 2025, *Modular Training of Neural Networks aids
Interpretability*), and :func:`modlib.analysis.lm_interp.ablate_by_kind` its language-model
version. :func:`control_verdict` and :func:`specialization_summary` put a score in words.
Circuits are in :mod:`modlib.analysis.circuits`; :func:`record` lives in :mod:`modlib.hooks`.
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
from ..core.partition import Partition, check_partitions
from ..hooks import eval_mode, record, zero_outputs
from ..validate import (
    check_bool,
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_layer_names,
    check_module,
    check_real,
    check_tensor,
    describe,
    model_device,
)

__all__ = ["AblationResult", "Mode", "ablate", "ablate_clusters", "class_accuracy",
           "cluster_ablation", "control_verdict", "record", "specialization",
           "specialization_summary"]

Mode = Literal["off", "on"]  # "off": remove cluster c; "on": keep only cluster c


def _common_k(partitions: dict[str, Partition]) -> int:
    check_partitions(partitions)
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
    check_module(model)
    mode = check_choice(mode, "mode", get_args(Mode))
    k = _common_k(partitions)
    cluster = check_int(cluster, "cluster", minimum=0, maximum=k - 1)
    known = {n: m for n, m in model.named_modules() if n}
    modules = {n: known[n] for n in check_layer_names(list(partitions), known, "partitions")}
    units = {n: _zero_mask(p, cluster, mode, modules[n], n) for n, p in partitions.items()}
    with zero_outputs(modules, units):
        yield


def _class_tallies(model: nn.Module, loader: Iterable, n_classes: int) -> tuple[Tensor, Tensor]:
    """(correct, total) per class, each (n_classes,) float; refuses a loader with no example."""
    device = model_device(model)
    if not isinstance(loader, Iterable) or isinstance(loader, (str, Tensor)):
        raise TypeError(f"'loader' must be an iterable of (X, y) batches. Got {describe(loader)}.")
    correct, total = torch.zeros(n_classes), torch.zeros(n_classes)
    with eval_mode(model), torch.no_grad():
        for batch in loader:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise TypeError(f"'loader' must yield (X, y) batches. Got {describe(batch)}.")
            check_tensor(batch[0], "loader X")
            check_tensor(batch[1], "loader y", kind="int", ndim=1)
            X, y = batch[0].to(device), batch[1].to(device)
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
                raise ValueError(f"Labels must lie in [0, {n_classes}) for n_classes="
                                 f"{n_classes}. Got values in [{int(y.min())}, {int(y.max())}].")
            hit = (model(X).argmax(-1) == y).float().cpu()
            correct += torch.bincount(y.cpu(), weights=hit, minlength=n_classes)
            total += torch.bincount(y.cpu(), minlength=n_classes)
    if not bool(total.sum()):
        raise ValueError("'loader' holds no example: there is no accuracy to measure.")
    return correct, total


def class_accuracy(model: nn.Module, loader: Iterable, n_classes: int) -> Tensor:
    """Accuracy on each class, ``(n_classes,)``; NaN for a class that ``loader`` does not hold.

    ``loader`` yields ``(X, y)`` batches with ``y`` (B,) integer labels; ``model(X)`` gives
    logits ``(B, n_classes)``. The model runs in eval mode; its modes are restored after.

    Raises:
        TypeError: ``model`` not a module, ``n_classes`` not an int, ``loader`` not an iterable
            of ``(X, y)`` tensor batches.
        ValueError: ``n_classes < 1``, a label outside ``[0, n_classes)``, or an empty
            ``loader``.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> _ = nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)  # ties: class 0
        >>> class_accuracy(model, [(torch.zeros(4, 3), torch.tensor([0, 0, 1, 1]))], 2)
        tensor([1., 0.])

    Introduced in notebook 04.
    """
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    correct, total = _class_tallies(model, loader, n_classes)
    return correct / total  # 0 / 0 = NaN for an absent class


def specialization(drop: Tensor, *, min_drop: float = 0.05) -> float:
    """How much each class depends on one cluster: 0 (all clusters equally) to 1 (exactly one).

    For each class c the drops ``drop[:, c]``, clipped at 0, are normalised to a distribution
    ``p_c`` over the k clusters, and the class scores ``1 − H(p_c) / log k`` (H: entropy). The
    score is the mean over classes whose largest drop is at least ``min_drop``; the others (and
    NaN) carry no information, and one lost example would otherwise count as perfect
    specialization. 0 when no class is left, or when k = 1.

    Args:
        drop: ``(k, n_classes)`` drops, as :attr:`AblationResult.drop` (positive: worse).
        min_drop: smallest largest drop for a class to count.

    Raises:
        TypeError: ``drop`` not a tensor.
        ValueError: ``drop`` not 2-D or empty, or ``min_drop`` not in ``(0, 1]``.

    Example:
        >>> specialization(torch.eye(2)), specialization(torch.ones(2, 2))
        (1.0, 0.0)

    Introduced in notebook 04.
    """
    check_tensor(drop, "drop")
    if drop.ndim != 2 or drop.numel() == 0:
        raise ValueError(f"'drop' must be 2-D (k, n_classes) with k, n_classes >= 1. "
                         f"Got {describe(drop)}.")
    check_real(min_drop, "min_drop", minimum=0, maximum=1, low_open=True)
    k, d = drop.shape[0], drop.float().clamp(min=0)  # NaN stays NaN
    informative = d.amax(0) >= min_drop  # (n_classes,), False for NaN
    if k < 2 or not bool(informative.any()):
        return 0.0
    p = d[:, informative] / d[:, informative].sum(0)  # (k, n_informative), columns sum to 1
    entropy = -(p * p.clamp(min=1e-30).log()).sum(0)  # 0·log 0 = 0
    return float((1 - entropy / math.log(k)).mean())


@dataclass
class AblationResult:
    """What ablating each cluster does to each column: a class, or a kind of token.

    Sign: ``drop`` is positive where ablating the cluster makes the model worse on that
    column: the decrease of a metric where higher is better (accuracy: base − ablated), or the
    increase of one where lower is better (loss: ablated − base). :func:`ablate_clusters` and
    :func:`modlib.analysis.lm_interp.ablate_by_kind` both return one (the second under its old
    name ``KindAblation`` too).
    """

    drop: Tensor  # (k, n): how much worse column j gets when cluster c is ablated
    base: Tensor  # (n,): the intact model's metric on each column (accuracy, or loss in nats)
    specialization: float  # specialization(drop) over the scored columns, in [0, 1]
    control: float  # the same for the first random partition with the same cluster sizes
    control_drop: Tensor  # (k, n): the drops under that first random partition
    controls: list[float] = field(default_factory=list)  # one score per control partition
    labels: tuple[str, ...] = ()  # the columns' names: classes, or kinds of token
    counts: Tensor | None = None  # (n,): examples (or tokens) behind each column


def _shuffled(partitions: dict[str, Partition], seed: int) -> dict[str, Partition]:
    # Same cluster sizes in every layer, neurons assigned at random (independently per layer).
    g = torch.Generator().manual_seed(seed)
    return {name: Partition(p.rows.cpu()[torch.randperm(p.rows.numel(), generator=g)],
                            p.cols.cpu()[torch.randperm(p.cols.numel(), generator=g)], p.k)
            for name, p in partitions.items()}


def cluster_ablation(model: nn.Module, partitions: dict[str, Partition],
                     measure: Callable[[], Tensor], *, lower_is_better: bool = False,
                     mode: Mode = "off", seed: int = 0, n_controls: int = 1,
                     min_drop: float = 0.05, scored: Tensor | None = None,
                     labels: Sequence[str] = (), counts: Tensor | None = None) -> AblationResult:
    """Ablate each cluster in turn, and each cluster of random control partitions, and measure.

    The one ablation loop of the course: ``measure()`` is called on the intact model, then
    inside :func:`ablate` for each cluster ``0..k-1`` of ``partitions`` and of ``n_controls``
    shuffled partitions (each layer's neurons reassigned at random to clusters of the same
    sizes, seeded ``seed``, ``seed + 1``, …): (1 + ``n_controls``) k + 1 calls.

    Args:
        model: the model ``measure`` runs.
        partitions: ``{layer name: Partition}`` with one k, as for :func:`ablate`.
        measure: returns a ``(n,)`` tensor, the current model's metric on each column (e.g.
            :func:`class_accuracy` on a loader).
        lower_is_better: the metric is a loss: ``drop`` = ablated − base, not base − ablated.
        mode: ``"off"`` (remove the cluster) or ``"on"`` (keep only it), as for :func:`ablate`.
        seed: seeds the first control partition.
        n_controls: how many control partitions.
        min_drop: as :func:`specialization`.
        scored: ``(n,)`` bool, the columns the specialization scores count (default all); with
            none, the scores are 0.
        labels, counts: stored in the result as they are (column names, examples per column).

    Returns:
        :class:`AblationResult`; ``control`` and ``control_drop`` are the first control's.

    Raises:
        ValueError: as :func:`ablate` and :func:`specialization`; ``n_controls`` < 1.
        TypeError: ``seed``, ``n_controls`` not ints, ``lower_is_better`` not a bool.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> parts = {"0": Partition(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1]), k=2)}
        >>> X = torch.randn(8, 2)
        >>> out = cluster_ablation(model, parts, lambda: model(X).detach().abs().mean(0))
        >>> out.drop.shape, len(out.controls)
        (torch.Size([2, 2]), 1)

    Introduced in notebook 04.
    """
    check_module(model)
    mode = check_choice(mode, "mode", get_args(Mode))
    k = _common_k(partitions)
    check_callable(measure, "measure")
    check_bool(lower_is_better, "lower_is_better")
    seed = check_int(seed, "seed")
    n_controls = check_int(n_controls, "n_controls", minimum=1)
    check_real(min_drop, "min_drop", minimum=0, maximum=1, low_open=True)
    if isinstance(labels, str):
        raise TypeError(f"'labels' must be a list of column names. Got {describe(labels)}.")
    if counts is not None:
        check_tensor(counts, "counts")
    base = measure()
    if not isinstance(base, Tensor) or base.ndim != 1 or base.numel() == 0:
        raise ValueError(f"'measure' must return a non-empty 1-D tensor (one value per column). "
                         f"Got {describe(base)}.")
    if scored is not None:
        check_tensor(scored, "scored", kind="bool")
        if tuple(scored.shape) != tuple(base.shape):
            raise ValueError(f"'scored' must be a bool tensor of the shape of measure()'s "
                             f"result {tuple(base.shape)}. Got {describe(scored)}.")

    def drops(parts: dict[str, Partition]) -> Tensor:
        rows = []
        for c in range(k):
            with ablate(model, parts, c, mode=mode):
                after = measure()
            rows.append(after - base if lower_is_better else base - after)
        return torch.stack(rows)  # (k, n)

    def score(d: Tensor) -> float:
        if scored is None:
            return specialization(d, min_drop=min_drop)
        return specialization(d[:, scored], min_drop=min_drop) if bool(scored.any()) else 0.0

    drop = drops(partitions)
    controls = [drops(_shuffled(partitions, seed + i)) for i in range(n_controls)]
    scores = [score(c) for c in controls]
    return AblationResult(drop=drop, base=base, specialization=score(drop), control=scores[0],
                          control_drop=controls[0], controls=scores, labels=tuple(labels),
                          counts=counts)


def ablate_clusters(model: nn.Module, partitions: dict[str, Partition], loader: Iterable, *,
                    n_classes: int = 10, mode: Mode = "off", seed: int = 0,
                    min_drop: float = 0.05, n_controls: int = 1) -> AblationResult:
    """Ablate each cluster in turn and measure every class's accuracy drop (ON/OFF ablation).

    ``partitions`` and ``mode`` are as in :func:`ablate` (one k for all layers); ``loader`` is
    re-iterable ``(X, y)`` batches, read (1 + ``n_controls``) k + 1 times; the control
    partitions are seeded ``seed``, ``seed + 1``, …; ``min_drop`` is as in
    :func:`specialization`. The loop is :func:`cluster_ablation`.

    Returns:
        :class:`AblationResult`: ``drop`` (k, n_classes), base accuracy − accuracy with the
        cluster ablated; ``base`` (n_classes,) the intact accuracies; ``specialization``, and
        ``control``, the score when each layer's neurons are shuffled among clusters of the same
        sizes (seed ``seed``); ``controls`` holds the scores of all ``n_controls`` shuffles,
        whose spread shows how much the score moves by chance. Only a score well above its
        controls shows specialization. ``labels`` are ``"0"``, ``"1"``, …; ``counts`` the
        examples of each class.

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
    check_module(model)
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    mode = check_choice(mode, "mode", get_args(Mode))
    _common_k(partitions)
    check_int(seed, "seed")
    check_int(n_controls, "n_controls", minimum=1)
    check_real(min_drop, "min_drop", minimum=0, maximum=1, low_open=True)
    totals: list[Tensor] = []

    def measure() -> Tensor:
        correct, total = _class_tallies(model, loader, n_classes)
        totals.append(total)
        return correct / total

    result = cluster_ablation(model, partitions, measure, mode=mode, seed=seed,
                              n_controls=n_controls, min_drop=min_drop,
                              labels=[str(c) for c in range(n_classes)])
    result.counts = totals[0]
    return result


def control_verdict(score: float, controls: Sequence[float]) -> str:
    """Where a specialization score lies against the scores of its random controls.

    Args:
        score: the trained partition's score (:attr:`AblationResult.specialization`).
        controls: the controls' scores (:attr:`AblationResult.controls`), at least one.

    Returns:
        ``"above every control"``, ``"below every control"`` or ``"inside the controls'
        range"`` (a tie with the highest or lowest control counts as inside).

    Raises:
        ValueError: ``controls`` is empty.

    Example:
        >>> control_verdict(0.8, [0.1, 0.3]), control_verdict(0.2, [0.1, 0.3])
        ('above every control', "inside the controls' range")

    Introduced in notebook 04.
    """
    check_real(score, "score")
    if isinstance(controls, (str, Tensor)) or not isinstance(controls, Iterable):
        raise TypeError(f"'controls' must be a list of scores. Got {describe(controls)}.")
    controls = [check_real(c, "controls") for c in controls]
    if not controls:
        raise ValueError("'controls' is empty: score at least one control partition.")
    if score > max(controls):
        return "above every control"
    if score < min(controls):
        return "below every control"
    return "inside the controls' range"


_SUMMARY = {
    (True, False): "Here the modular model's clusters specialise beyond chance and the "
                   "baseline's do not.",
    (True, True): "Here both models score above their controls: modular training is not "
                  "what makes these clusters specialise.",
    (False, False): "Here neither model's clusters specialise beyond chance.",
    (False, True): "Here only the baseline's clusters score above their controls.",
}


def specialization_summary(baseline: AblationResult, modular: AblationResult) -> str:
    """One sentence on which of two models' clusters specialise beyond chance.

    A model's clusters do when its score is above every control (:func:`control_verdict`); the
    sentence is chosen by (modular above?, baseline above?).

    Args:
        baseline: the baseline's :class:`AblationResult` (with ``controls``).
        modular: the modular model's.

    Returns:
        The sentence, e.g. ``"Here neither model's clusters specialise beyond chance."``.

    Raises:
        TypeError: ``baseline`` or ``modular`` not an :class:`AblationResult`.
        ValueError: a result without control scores.

    Example:
        >>> low = AblationResult(torch.zeros(2, 2), torch.ones(2), 0.1, 0.2, torch.zeros(2, 2),
        ...                      [0.2, 0.3])
        >>> high = AblationResult(torch.eye(2), torch.ones(2), 0.9, 0.2, torch.zeros(2, 2),
        ...                       [0.2, 0.3])
        >>> specialization_summary(low, high)
        "Here the modular model's clusters specialise beyond chance and the baseline's do not."

    Introduced in notebook 04.
    """
    check_instance(baseline, "baseline", AblationResult, "an AblationResult")
    check_instance(modular, "modular", AblationResult, "an AblationResult")
    above = [control_verdict(r.specialization, r.controls) == "above every control"
             for r in (modular, baseline)]
    return _SUMMARY[above[0], above[1]]
