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
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..core.graph import weight_layers
from .interp import _frozen_prefix
from .patching import _check_masks, circuit, jaccard

__all__ = ["Method", "class_circuits", "class_examples", "effective_circuit_size",
           "jaccard_matrix", "prune_circuit"]

Method = Literal["patching", "pruning"]  # attribution patching, or the paper's greedy pruning


def _circuit_layers(model: nn.Module, X: Tensor, y: Tensor, layers: Sequence[str] | None,
                    tol: float, chunk: int) -> list[str]:
    if not isinstance(X, Tensor) or not isinstance(y, Tensor) or y.ndim != 1 \
            or X.shape[0] != y.shape[0] or y.numel() == 0:
        raise ValueError(f"'X' and 'y' must be tensors with the same, non-zero number of "
                         f"examples and 'y' 1-D. Got shapes {tuple(getattr(X, 'shape', ()))} and "
                         f"{tuple(getattr(y, 'shape', ()))}.")
    if not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"'tol' must be a number >= 0. Got {tol!r}.")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"'chunk' must be an int >= 1. Got {chunk!r}.")
    linear = [n for n, m in weight_layers(model).items() if isinstance(m, nn.Linear)]
    names = linear if layers is None else list(layers)
    if not names or any(n not in linear for n in names):
        raise ValueError(f"'layers' must name nn.Linear modules of the model. Got {names}; "
                         f"known: {linear}.")
    return [n for n in linear if n in names]  # model order


def _layer_input(model: nn.Module, layer: nn.Module, name: str, X: Tensor) -> Tensor:
    inputs: list[Tensor] = []
    handle = layer.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    try:
        model(X)
    finally:
        handle.remove()
    if len(inputs) != 1:
        raise ValueError(f"Layer '{name}' ran {len(inputs)} times in one forward pass; "
                         f"'layers' must name layers that run exactly once (no shared weights).")
    return inputs[0]


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
    layer.forward = lambda _: trial[0]  # shadows nn.Linear.forward until deleted
    try:
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
    finally:
        del layer.forward


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

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> pruned = prune_circuit(model, torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
        >>> pruned is model, pruned[0].weight.shape
        (False, torch.Size([3, 4]))

    Introduced in notebook 04.
    """
    names = _circuit_layers(model, X, y, layers, tol, chunk)
    model = copy.deepcopy(model).eval()
    modules = dict(model.named_modules())
    device = next(model.parameters()).device
    X, y = X.to(device), y.to(device)

    def loss() -> float:
        return float(nn.functional.cross_entropy(model(X).float(), y))

    limit = loss() + float(tol)
    for name in reversed(names):
        x = _layer_input(model, modules[name], name, X)
        with _frozen_prefix(model, [modules[name]], X):  # earlier layers: replayed, not rerun
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
        ValueError: mismatched ``X``/``y``, or ``label``, ``n_max`` or ``batch_size`` not an
            int (``n_max``, ``batch_size`` >= 1).

    Example:
        >>> model = nn.Linear(3, 2)
        >>> X, y = torch.randn(20, 3), torch.arange(20) % 2
        >>> X0, y0 = class_examples(model, X, y, 0, n_max=5)
        >>> len(y0) <= 5 and bool((y0 == 0).all())
        True

    Introduced in notebook 04.
    """
    for name, value, low in (("label", label, 0), ("n_max", n_max, 1),
                             ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"'{name}' must be an int >= {low}. Got {value!r}.")
    if not isinstance(X, Tensor) or not isinstance(y, Tensor) or y.ndim != 1 \
            or X.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(f"'X' and 'y' must be tensors with the same number of examples and "
                         f"'y' 1-D. Got shapes {tuple(getattr(X, 'shape', ()))} and "
                         f"{tuple(getattr(y, 'shape', ()))}.")
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    try:
        chosen = (y == label).nonzero().flatten()
        right = [model(X[part].to(device)).argmax(-1).cpu() == label
                 for part in chosen.split(batch_size)]
    finally:
        model.train(was_training)
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
        ValueError: an unknown ``method``, or as :func:`class_examples`,
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
    if method not in get_args(Method):
        raise ValueError(f"'method' must be one of {get_args(Method)}. Got {method!r}.")
    labels = sorted(set(y.tolist())) if classes is None else list(classes)
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
    if not isinstance(circuits, Mapping) or not circuits:
        raise ValueError(f"'circuits' must be a non-empty dict {{class: masks}}. Got "
                         f"{circuits!r}.")
    masks = list(circuits.values())
    for m in masks:
        _check_masks(m, "circuits")
    n = len(masks)
    J = torch.ones(n, n)
    for a in range(n):
        for b in range(a + 1, n):
            J[a, b] = J[b, a] = jaccard(masks[a], masks[b])
    return J
