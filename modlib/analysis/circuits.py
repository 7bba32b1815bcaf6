"""Circuits of a trained model: the paper's effective circuit size, and circuits class by class.

:func:`prune_circuit` zeroes the weights of a label's data that the model does not need (from the
last layer to the first, smallest |W| first, keeping a weight zeroed unless the loss on that
label's examples rises); :func:`effective_circuit_size` is the share of weights left (Golechha et
al. 2025 report 0.005 clustered vs 0.009 unclustered for CIFAR "ship"). :func:`class_circuits`
finds each class's circuit on the examples the model gets right, by that pruning or by
attribution patching (:mod:`modlib.analysis.patching`), as edge masks that both measures share;
:func:`jaccard_matrix` compares them. Introduced in notebook 04.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..hooks import capture_once, eval_mode, frozen_prefix, replace_forward
from ..validate import (
    check_bool,
    check_choice,
    check_data,
    check_int,
    check_module,
    check_real,
    describe,
    model_device,
)
from .patching import _check_masks, _linears, circuit, jaccard

__all__ = ["Method", "SizeVerdict", "class_circuits", "class_examples", "compare_circuit_sizes",
           "effective_circuit_size", "jaccard_matrix", "prune_circuit"]

Method = Literal["patching", "pruning"]  # attribution patching, or the paper's greedy pruning


def _circuit_layers(model: nn.Module, X: Tensor, y: Tensor, layers: Sequence[str] | None,
                    tol: float, chunk: int) -> list[str]:
    check_module(model)
    check_data(X, y)
    check_real(tol, "tol", minimum=0)
    check_int(chunk, "chunk", minimum=1)
    return list(_linears(model, layers))  # model order


def _layer_input(model: nn.Module, layer: nn.Module, name: str, X: Tensor) -> Tensor:
    return capture_once(model, {name: layer}, X)[1][name][0]


def _prune_layer(layer: nn.Linear, x: Tensor, loss_ok: Callable[[], bool], chunk: int,
                 bisect: bool) -> None:
    # Earlier layers are not pruned yet, so the layer's input x is fixed: its output is updated
    # incrementally (zeroing W_ij subtracts x_j W_ij from output i) instead of recomputed.
    w = layer.weight.data.view(-1)
    order = w.abs().argsort()
    order = order[w[order] != 0]  # ascending |W|; weights already zero are already pruned
    rows, cols = order // layer.in_features, order % layer.in_features
    out = layer(x)  # (..., n_out) with the weights accepted so far
    trial = [out]
    with replace_forward(layer, lambda *args: trial[0]):  # the model sees the trial output
        pos, size = 0, chunk
        while pos < order.numel():
            end = pos + size
            idx = order[pos:end]
            trial[0] = out.index_add(-1, rows[pos:end], x[..., cols[pos:end]] * w[idx], alpha=-1)
            if loss_ok():
                out, w[idx] = trial[0], 0
                pos, size = pos + idx.numel(), min(2 * size, chunk)  # accepted: grow again
            elif bisect and size > 1:
                size //= 2  # retry a smaller group from the same weight
            else:
                pos += idx.numel()  # kept


@torch.no_grad()
def prune_circuit(model: nn.Module, X: Tensor, y: Tensor, *, layers: Sequence[str] | None = None,
                  tol: float = 0.0, chunk: int = 64, bisect: bool = True) -> nn.Module:
    """A pruned deep copy of ``model``: the circuit measured by :func:`effective_circuit_size`.

    Greedy pass over the Linear ``layers``, last to first; in a layer, weights are tried in order
    of increasing ``|W|``, in groups of up to ``chunk``: a group stays zeroed if the cross-entropy
    on ``(X, y)`` stays at most the intact model's + ``tol``. ``chunk=1`` is the paper's exact
    per-weight pass. With ``bisect`` a failed group is restored and the size halved, retrying
    from the same weight down to single weights (then kept); each success doubles it again, up
    to ``chunk``. Every weight is still tried, at about one forward pass per accepted group and
    one or two per kept weight; sizes differ a little from ``chunk=1`` because a group is judged
    as a whole. Without ``bisect`` a failed group is kept whole: fastest, but a larger circuit.
    While a layer is pruned, the modules that run before it replay their outputs on ``X``
    instead of running again, so a forward pass costs only the layers from it on (a CNN's
    convolutions run once per layer, not once per trial).

    Args:
        model: a classifier (left unchanged); each chosen layer must run once per forward.
        X: ``(B, ...)`` inputs, e.g. one label's test images; y: ``(B,)`` their labels.
        layers: names of ``nn.Linear`` modules; default every Linear of the model.
        tol, chunk, bisect: allowed rise of the loss; largest group; halving (see above).

    Returns:
        The pruned copy, in eval mode.

    Raises:
        ValueError: mismatched ``X``/``y``, ``tol < 0``, ``chunk < 1``, ``layers`` naming
            anything but Linear modules, or a layer that runs more than once per forward.
        TypeError: ``X`` or ``y`` not tensors, ``y`` not integer labels, ``tol``, ``chunk`` or
            ``bisect`` of the wrong type.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> pruned = prune_circuit(model, torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
        >>> pruned is model, pruned[0].weight.shape
        (False, torch.Size([3, 4]))

    Introduced in notebook 04.
    """
    names = _circuit_layers(model, X, y, layers, tol, chunk)
    check_bool(bisect, "bisect")
    model = copy.deepcopy(model).eval()
    modules = dict(model.named_modules())
    device = model_device(model)
    X, y = X.to(device), y.to(device)

    def loss() -> float:
        return float(nn.functional.cross_entropy(model(X).float(), y))

    limit = loss() + float(tol)
    for name in reversed(names):
        x = _layer_input(model, modules[name], name, X)
        with frozen_prefix(model, [modules[name]], X):  # earlier layers: replayed, not rerun
            _prune_layer(modules[name], x, lambda: loss() <= limit, chunk, bisect)
    return model


def effective_circuit_size(model: nn.Module, X: Tensor, y: Tensor, *,
                           layers: Sequence[str] | None = None, tol: float = 0.0, chunk: int = 64,
                           bisect: bool = True) -> float:
    """The paper's effective circuit size: fraction of the Linear weights a label's data needs.

    The non-zero weights of ``layers`` left by :func:`prune_circuit` (same arguments; ``model``
    is not changed) over all their weights. The paper: CIFAR "ship" 0.005 clustered vs 0.009.

    Returns:
        A float in [0, 1]; smaller means a smaller circuit.

    Raises:
        ValueError: as :func:`prune_circuit`.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
        >>> 0.0 <= effective_circuit_size(model, X, y) <= 1.0
        True

    Introduced in notebook 04.
    """
    pruned = prune_circuit(model, X, y, layers=layers, tol=tol, chunk=chunk, bisect=bisect)
    modules = dict(pruned.named_modules())
    weights = [modules[n].weight for n in _circuit_layers(pruned, X, y, layers, tol, chunk)]
    return sum(int((w != 0).sum()) for w in weights) / sum(w.numel() for w in weights)


@torch.no_grad()
def class_examples(model: nn.Module, X: Tensor, y: Tensor, label: int, *, n_max: int = 100,
                   batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Up to ``n_max`` examples of ``label`` that ``model`` classifies correctly, in data order.

    A class's circuit is the part of the model that gives the right answer on it, so it is
    measured on the examples the model gets right (the paper does so for CIFAR "ship").

    Args:
        model: a classifier, ``model(X)`` → logits (B, n_classes); left in its mode.
        X: (N, ...) inputs; y: (N,) integer labels.
        label: the class.
        n_max: most examples to return.
        batch_size: examples per forward pass while predicting.

    Returns:
        ``(X_c, y_c)``, (n, ...) and (n,) with n <= ``n_max`` (0 when the model gets none
        right), on the model's device.

    Raises:
        ValueError: mismatched ``X``/``y``, ``label`` < 0, ``n_max`` or ``batch_size`` < 1.
        TypeError: ``label``, ``n_max`` or ``batch_size`` not an int; ``y`` not integer labels.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> X, y = torch.randn(20, 3), torch.arange(20) % 2
        >>> X0, y0 = class_examples(model, X, y, 0, n_max=5)
        >>> len(y0) <= 5 and bool((y0 == 0).all())
        True

    Introduced in notebook 04.
    """
    label = check_int(label, "label", minimum=0)
    n_max = check_int(n_max, "n_max", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_module(model)
    X, y = check_data(X, y)
    device = model_device(model)
    with eval_mode(model):
        chosen = (y == label).nonzero().flatten()
        right = [model(X[part].to(device)).argmax(-1).cpu() == label
                 for part in chosen.split(batch_size)]
    if right:
        chosen = chosen[torch.cat(right)]
    chosen = chosen[:n_max]
    return X[chosen].to(device), y[chosen].to(device)


def class_circuits(model: nn.Module, X: Tensor, y: Tensor, *, method: Method = "patching",
                   classes: Sequence[int] | None = None, n_max: int = 100,
                   layers: Sequence[str] | None = None, keep: float = 0.9, chunk: int = 64
                   ) -> dict[int, dict[str, Tensor]]:
    """Each class's circuit, found on up to ``n_max`` examples the model gets right.

    ``method="patching"``: :func:`modlib.analysis.patching.circuit` (the fewest top-attribution
    edges
    that keep ``keep`` of the logit margin). ``"pruning"``: the weights that
    :func:`prune_circuit` leaves (``chunk`` as there), so that
    ``circuit_size(masks) == effective_circuit_size(...)`` on the same examples.

    Args:
        model: a classifier (left unchanged); X: (N, ...) inputs; y: (N,) integer labels.
        method: ``"patching"`` or ``"pruning"``.
        classes: the classes to look at; default every label in ``y``, in increasing order.
            A class the model gets no example of right is left out.
        n_max: most examples per class (see :func:`class_examples`).
        layers: names of ``nn.Linear`` modules; default every Linear.
        keep: share of the margin to keep (patching); chunk: largest group (pruning).

    Returns:
        ``{class: {layer name: mask}}``, bool (n_out, n_in) masks, True for the circuit's edges.

    Raises:
        ValueError: an unknown ``method``, no class with an example the model gets right, or
            as :func:`class_examples`,
            :func:`modlib.analysis.patching.circuit` and :func:`prune_circuit`.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> X = torch.randn(32, 4)
        >>> y = model(X).argmax(1)  # labels the model gets right
        >>> masks = class_circuits(model, X, y, method="pruning")
        >>> sorted(masks) == sorted(set(y.tolist())), list(masks[int(y[0])])
        (True, ['0', '2'])

    Introduced in notebook 04.
    """
    check_module(model)
    method = check_choice(method, "method", get_args(Method))
    X, y = check_data(X, y)
    check_int(n_max, "n_max", minimum=1)
    check_real(keep, "keep", minimum=0, maximum=1, low_open=True)
    check_int(chunk, "chunk", minimum=1)
    if classes is not None and (isinstance(classes, (str, Tensor))
                                or not isinstance(classes, Sequence) or not classes):
        raise TypeError(f"'classes' must be a non-empty list of class labels (int) or None. "
                        f"Got {describe(classes)}.")
    labels = (sorted(set(y.tolist())) if classes is None
              else [check_int(c, "classes", minimum=0) for c in classes])
    _linears(model, layers)  # refuse bad layer names before any work
    found = {}
    for c in labels:
        X_c, y_c = class_examples(model, X, y, c, n_max=n_max)
        if not len(y_c):
            continue  # nothing right: no circuit that gives the right answer
        if method == "patching":
            found[c] = {n: m.cpu() for n, m in circuit(model, X_c, y_c, keep=keep,
                                                        layers=layers).items()}
            continue
        pruned = prune_circuit(model, X_c, y_c, layers=layers, chunk=chunk)
        modules = dict(pruned.named_modules())
        names = _circuit_layers(pruned, X_c, y_c, layers, 0.0, chunk)
        found[c] = {n: (modules[n].weight != 0).cpu() for n in names}
    if not found:
        raise ValueError(f"'X', 'y': the model gets no example of the classes {labels} right, "
                         f"so there is no circuit to find.")
    return found


def jaccard_matrix(circuits: Mapping[int, dict[str, Tensor]]) -> Tensor:
    """Overlap of every pair of circuits: ``J[a, b]`` = :func:`modlib.analysis.patching.jaccard`.

    Args:
        circuits: ``{class: masks}``, as :func:`class_circuits` returns; all with the same
            layers and shapes.

    Returns:
        (n, n) float tensor in [0, 1], rows and columns in the order of ``circuits``; 1 on the
        diagonal.

    Raises:
        ValueError: an empty ``circuits``, or masks that do not match (as ``jaccard``).

    Example:
        >>> a = {"fc": torch.tensor([[True, True, False]])}
        >>> jaccard_matrix({0: a, 1: {"fc": torch.tensor([[True, False, True]])}})
        tensor([[1.0000, 0.3333],
                [0.3333, 1.0000]])

    Introduced in notebook 04.
    """
    if not isinstance(circuits, Mapping):
        raise TypeError(f"'circuits' must be a non-empty dict {{class: masks}}. Got "
                        f"{describe(circuits)}.")
    if not circuits:
        raise ValueError(f"'circuits' must be a non-empty dict {{class: masks}}. Got "
                         f"{describe(circuits)}.")
    masks = list(circuits.values())
    for m in masks:
        _check_masks(m, "circuits")
    n = len(masks)
    J = torch.ones(n, n)
    for a in range(n):
        for b in range(a + 1, n):
            J[a, b] = J[b, a] = jaccard(masks[a], masks[b])
    return J


@dataclass(frozen=True)
class SizeVerdict:
    """Which of two models, baseline and modular, has the smaller circuits by one measure."""

    baseline: float  # the baseline's circuit size, averaged over the classes
    modular: float  # the modular model's
    n_smaller: int  # classes whose modular circuit is smaller than the baseline's
    n_classes: int  # classes compared
    smaller: str  # "modular" if its mean is smaller, else "baseline" (a tie says "baseline")


def compare_circuit_sizes(baseline: Mapping[str, Sequence[float]],
                          modular: Mapping[str, Sequence[float]]
                          ) -> tuple[dict[str, SizeVerdict], bool]:
    """Compare two models' circuit sizes by several measures, and whether the measures agree.

    Args:
        baseline: ``{measure: one circuit size per class}``, e.g. ``{"patching": [...],
            "pruning": [...]}`` with :func:`modlib.analysis.patching.circuit_size` of each
            class's circuit (:func:`class_circuits` with that ``method``).
        modular: the same for the modular model: the same measures, the same classes in the
            same order.

    Returns:
        ``({measure: SizeVerdict}, agree)``: per measure the two mean sizes, the number of
        classes whose modular circuit is smaller, and the model with the smaller mean; ``agree``
        is True when every measure names the same model.

    Raises:
        ValueError: no measure, measures that differ between the models, or a measure with no
            class or a different number of classes for the two models.

    Example:
        >>> verdicts, agree = compare_circuit_sizes(
        ...     {"patching": [0.4, 0.2], "pruning": [0.1, 0.1]},
        ...     {"patching": [0.3, 0.1], "pruning": [0.2, 0.05]})
        >>> verdicts["patching"].smaller, verdicts["pruning"].n_smaller, agree
        ('modular', 1, False)

    Introduced in notebook 04.
    """
    for value, name in ((baseline, "baseline"), (modular, "modular")):
        if not isinstance(value, Mapping):
            raise TypeError(f"'{name}' must be a dict {{measure: sizes}}. Got {describe(value)}.")
        for measure, sizes in value.items():
            if isinstance(sizes, (str, Mapping)) or not isinstance(sizes, Sequence):
                raise TypeError(f"'{name}[{measure!r}]' must be a list of circuit sizes. "
                                f"Got {describe(sizes)}.")
    if not baseline or list(baseline) != list(modular):
        raise ValueError(f"'baseline' and 'modular' must be dicts {{measure: sizes}} with the "
                         f"same measures. Got {describe(baseline)} and {describe(modular)}.")
    verdicts = {}
    for measure, b_sizes in baseline.items():
        b = [check_real(x, "baseline") for x in b_sizes]
        m = [check_real(x, "modular") for x in modular[measure]]
        if not b or len(b) != len(m):
            raise ValueError(f"Measure {measure!r} must give both models one size per class, "
                             f"for the same classes. Got {len(b)} and {len(m)} sizes.")
        mean_b, mean_m = sum(b) / len(b), sum(m) / len(m)
        n_smaller = sum(x < y for y, x in zip(b, m, strict=True))
        verdicts[measure] = SizeVerdict(baseline=mean_b, modular=mean_m, n_smaller=n_smaller,
                                        n_classes=len(b),
                                        smaller="modular" if mean_m < mean_b else "baseline")
    agree = len({v.smaller for v in verdicts.values()}) == 1
    return verdicts, agree
