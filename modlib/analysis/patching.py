"""Circuit discovery by edge attribution patching over the weight graph of Linear layers.

Edge attribution patching (Syed et al. 2023, *Attribution Patching Outperforms Automated Circuit
Discovery*) scores every edge by a first-order estimate of what patching it would change, from
one forward and one backward pass. Here the edges are the weights ``W_ij`` of the graph of
:func:`modlib.layer_matrix`. The task metric is the **mean log-probability of the correct
class** (higher is better), so an attribution is ``metric(patched) − metric(clean)``: negative
where the edge helps. :func:`true_edge_effects` patches for real, to check the estimate;
:func:`circuit` keeps the top edges that retain the task. Introduced in notebook 04.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.graph import weight_layers
from ..core.partition import Partition, check_partitions
from ..hooks import capture_once, eval_mode, frozen_prefix, masked_weights
from ..validate import (
    check_data,
    check_layer_names,
    check_module,
    check_real,
    check_tensor,
    describe,
    model_device,
)

__all__ = ["circuit", "circuit_size", "edge_attributions", "inside_share", "jaccard",
           "true_edge_effects"]

Acts = dict[str, tuple[Tensor, Tensor]]  # layer name -> (input (B, n_in), output (B, n_out))


def _linears(model: nn.Module, layers: Sequence[str] | str | None) -> dict[str, nn.Linear]:
    linear = {n: m for n, m in weight_layers(model).items() if isinstance(m, nn.Linear)}
    if layers is not None and not isinstance(layers, str):
        check_layer_names(layers, (), "layers", allow_empty=True, check_known=False)
    names = [layers] if isinstance(layers, str) else list(linear if layers is None else layers)
    unknown = [n for n in names if n not in linear]
    if not names or unknown:
        raise ValueError(f"'layers' must name nn.Linear modules of the model. Got {names}; "
                         f"unknown {unknown}; known: {list(linear)}.")
    return {n: m for n, m in linear.items() if n in names}  # model order


def _data(model: nn.Module, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    X, y = check_data(X, y)
    device = model_device(model)
    return X.to(device), y.to(device).long()


def _run(model: nn.Module, modules: dict[str, nn.Module], X: Tensor, y: Tensor
         ) -> tuple[Tensor, Acts]:
    logits, acts = capture_once(model, modules, X)
    if logits.ndim != 2 or int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(f"'model' must give logits (B, n_classes) and 'y' labels in "
                         f"[0, n_classes). Got logits {tuple(logits.shape)} and labels in "
                         f"[{int(y.min())}, {int(y.max())}].")
    return logits, acts  # type: ignore[return-value]


def _log_prob(logits: Tensor, y: Tensor) -> Tensor:
    return logits.float().log_softmax(-1).gather(1, y[:, None]).mean()  # the task metric


def _margin(logits: Tensor, y: Tensor) -> float:
    # correct-class logit minus the largest other logit, averaged over examples
    right = logits.float().gather(1, y[:, None])[:, 0]
    other = logits.float().scatter(1, y[:, None], float("-inf")).amax(1)
    return float((right - other).mean())


def edge_attributions(model: nn.Module, X: Tensor, y: Tensor, *, X_corrupt: Tensor | None = None,
                      layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """First-order estimate of each weight-edge's effect on the mean log-prob of the right class.

    Let ``x`` (B, n_in) be a layer's input, ``z = x Wᵀ`` its pre-activation (B, n_out), ``m`` the
    mean over examples of ``log p(y | X)``, and ``g = ∂m/∂z``. Without ``X_corrupt`` the edge is
    patched to zero: ``A_ij = −W_ij · ∂m/∂W_ij = −W_ij Σ_b g_bi x_bj``. With ``X_corrupt`` (paired
    with ``X`` example by example) the edge's input is patched from the clean run's activation to
    the corrupted run's: ``A_ij = W_ij Σ_b g_bi (x_corrupt_bj − x_bj)``, the mean over examples of
    the change (Syed et al. 2023 write the same with ``x_clean − x_corrupt`` for a metric whose
    rise is bad). Both estimate ``m(patched) − m(clean)``; for a bias-free ReLU network,
    ``X_corrupt = 0`` gives exactly the zero form. Use held-out data: at a minimum of the
    training loss the gradient on the training data is ~0, and so is the estimate.

    Args:
        model: a classifier, ``model(X)`` → logits (B, n_classes); left unchanged.
        X: (B, ...) inputs; y: (B,) integer labels.
        X_corrupt: (B, ...) corrupted inputs, the same shape as ``X``; default zero patching.
        layers: names of ``nn.Linear`` modules, each run once per forward; default every Linear.

    Returns:
        ``{layer name: A}``, ``A`` (n_out, n_in) like the layer's weight, in model order.

    Raises:
        ValueError: mismatched ``X``/``y``/``X_corrupt``, labels outside the logits, or
            ``layers`` naming anything but Linear modules that run once.
        TypeError: ``X`` or ``y`` not a tensor, or ``y`` not integer labels.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> A = edge_attributions(model, torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
        >>> A["0"].shape, A["2"].shape
        (torch.Size([3, 4]), torch.Size([2, 3]))

    Introduced in notebook 04.
    """
    check_module(model)
    modules = _linears(model, layers)
    X, y = _data(model, X, y)
    if X_corrupt is not None and (not isinstance(X_corrupt, Tensor) or X_corrupt.shape != X.shape):
        raise ValueError(f"'X_corrupt' must be a tensor of the same shape as 'X' {tuple(X.shape)}."
                         f" Got {describe(X_corrupt)}.")
    with eval_mode(model), torch.enable_grad():
        X_in = X.detach().requires_grad_(True) if X.is_floating_point() else X  # frozen weights
        logits, acts = _run(model, modules, X_in, y)
        outs = [acts[n][1] for n in modules]
        grads = torch.autograd.grad(_log_prob(logits, y), outs, allow_unused=True)
    if X_corrupt is not None:
        with eval_mode(model), torch.no_grad():
            _, corrupt = _run(model, modules, X_corrupt.to(X.device), y)
    result = {}
    for (n, m), out, g in zip(modules.items(), outs, grads, strict=True):
        x = acts[n][0].detach()
        dx = corrupt[n][0] - x if X_corrupt is not None else -x
        g = torch.zeros_like(out) if g is None else g  # the layer does not reach the logits
        # (n_out, B') @ (B', n_in), B' = all leading dims (examples, tokens)
        grad_w = g.detach().flatten(0, -2).T.float() @ dx.flatten(0, -2).float()
        result[n] = grad_w * m.weight.detach().float()
    return result


@torch.no_grad()
def true_edge_effects(model: nn.Module, X: Tensor, y: Tensor, layer: str, edges: Tensor
                      ) -> Tensor:
    """The real change of the metric of :func:`edge_attributions` when each edge is zeroed.

    Each listed weight ``W[i, j]`` of ``layer`` is zeroed alone, the model re-run on ``X`` and
    restored: one forward pass per edge, for validating the attributions.

    Args:
        model: the classifier (restored afterwards); X: (B, ...) inputs; y: (B,) labels.
        layer: name of an ``nn.Linear`` module.
        edges: (E, 2) integer ``(i, j)`` = (output neuron, input neuron) pairs.

    Returns:
        (E,) ``m(edge zeroed) − m(clean)``, ``m`` the mean log-prob of the correct class.

    Raises:
        ValueError: as :func:`edge_attributions`, or ``edges`` not (E, 2) inside the weight.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 2))
        >>> X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
        >>> true_edge_effects(model, X, y, "0", torch.tensor([[0, 1], [1, 3]])).shape
        torch.Size([2])

    Introduced in notebook 04.
    """
    check_module(model)
    if not isinstance(layer, str):
        raise TypeError(f"'layer' must be the name (str) of an nn.Linear module. "
                        f"Got {describe(layer)}.")
    modules = _linears(model, [layer])
    X, y = _data(model, X, y)
    shape = tuple(modules[layer].weight.shape)
    check_tensor(edges, "edges", kind="int")
    inside = edges.ndim == 2 and edges.shape[1] == 2 and edges.numel() > 0 and not bool(
        (edges.min() < 0) | (edges.max(0).values >= torch.tensor(shape).to(edges.device)).any())
    if not inside:
        raise ValueError(f"'edges' must be an (E, 2) tensor, E >= 1, of (i, j) inside the "
                         f"weight of shape {shape}. Got {describe(edges)}.")
    with eval_mode(model):
        clean = _log_prob(_run(model, modules, X, y)[0], y)
        effects = []
        for i, j in edges.long().tolist():
            keep = torch.ones(shape, dtype=torch.bool)
            keep[i, j] = False
            with masked_weights(modules, {layer: keep}):
                effects.append(_log_prob(model(X), y) - clean)
    return torch.stack(effects)


@torch.no_grad()
def circuit(model: nn.Module, X: Tensor, y: Tensor, *, keep: float = 0.9,
            layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The fewest top-``|attribution|`` edges that keep ``keep`` of the model's logit margin.

    Edges of all ``layers`` are ranked together by ``|A|`` of :func:`edge_attributions`
    (largest first). The task metric for the circuit is the **logit margin**, the mean over
    examples of the correct logit minus the largest other one (0 when every weight is zeroed
    in a bias-free network), measured for real on the model with only the top ``n`` edges kept.
    ``n`` grows 1, 2, 4, … until the margin reaches ``keep`` × the full model's, then is
    bisected: O(log E) forward passes, in which the modules that run before the first of
    ``layers`` replay their outputs instead of running again. The returned circuit always
    passed that real check; if the margin is not monotone in ``n`` it is the smallest passing
    ``n`` that bisection finds.

    Args:
        model: a classifier (restored afterwards); X: (B, ...) inputs, e.g. one class's; y: (B,).
        keep: share of the full model's margin to keep, in (0, 1].
        layers: names of ``nn.Linear`` modules; default every Linear.

    Returns:
        ``{layer name: mask}``, bool (n_out, n_in), True for the circuit's edges.

    Raises:
        ValueError: ``keep`` outside (0, 1], a full-model margin <= 0 (nothing to keep), or as
            :func:`edge_attributions`.
        TypeError: ``keep`` not a real number, or as :func:`edge_attributions`.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> X = torch.randn(16, 4)
        >>> masks = circuit(model, X, model(X).argmax(1), keep=0.5)
        >>> 0 < circuit_size(masks) <= 1
        True

    Introduced in notebook 04.
    """
    check_module(model)
    keep = check_real(keep, "keep", minimum=0, maximum=1, low_open=True)
    attr = edge_attributions(model, X, y, layers=layers)
    modules, (X, y) = _linears(model, list(attr)), _data(model, X, y)
    order = torch.cat([a.abs().flatten() for a in attr.values()]).argsort(descending=True,
                                                                           stable=True)
    sizes = [a.numel() for a in attr.values()]

    def masks(n: int) -> dict[str, Tensor]:
        flat = torch.zeros(sum(sizes), dtype=torch.bool, device=order.device)
        flat[order[:n]] = True
        parts = flat.split(sizes)
        return {name: p.view(a.shape) for (name, a), p in zip(attr.items(), parts, strict=True)}

    with eval_mode(model), frozen_prefix(model, list(modules.values()), X):
        target = keep * _margin(model(X), y)
        if target <= 0:
            raise ValueError(f"The full model's logit margin on (X, y) is {target / keep:.4g} "
                             f"<= 0: there is no task performance to keep.")

        def ok(n: int) -> bool:
            with masked_weights(modules, masks(n)):
                return _margin(model(X), y) >= target

        lo, hi, total = 0, 1, sum(sizes)  # invariant: n = lo failed (0 assumed), n = hi passes
        while hi < total and not ok(hi):
            lo, hi = hi, min(2 * hi, total)  # the whole model (hi = total) passes by definition
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return masks(hi)


def _check_masks(masks: dict[str, Tensor], name: str = "masks") -> None:
    if not isinstance(masks, dict):
        raise TypeError(f"'{name}' must be a non-empty dict {{layer name: bool (n_out, n_in) "
                        f"tensor}}, as returned by circuit(). Got {describe(masks)}.")
    if not masks or not all(
            isinstance(m, Tensor) and m.dtype == torch.bool and m.ndim == 2 and m.numel()
            for m in masks.values()):
        raise ValueError(f"'{name}' must be a non-empty dict {{layer name: bool (n_out, n_in) "
                         f"tensor}}, as returned by circuit(). Got {describe(masks)}.")


def circuit_size(masks: dict[str, Tensor]) -> float:
    """Fraction of the edges of the masked layers that the circuit keeps, in [0, 1].

    Raises:
        ValueError: ``masks`` not a non-empty dict of 2-D bool tensors.

    Example:
        >>> circuit_size({"fc": torch.tensor([[True, False], [False, False]])})
        0.25

    Introduced in notebook 04.
    """
    _check_masks(masks)
    return sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


def jaccard(masks_a: dict[str, Tensor], masks_b: dict[str, Tensor]) -> float:
    """Overlap of two circuits: shared edges over edges in either; 1.0 when both are empty.

    Raises:
        ValueError: masks that are not dicts of 2-D bool tensors with the same layers and shapes.

    Example:
        >>> a = {"fc": torch.tensor([[True, True, False]])}
        >>> jaccard(a, {"fc": torch.tensor([[True, False, True]])})
        0.3333333333333333

    Introduced in notebook 04.
    """
    _check_masks(masks_a, "masks_a")
    _check_masks(masks_b, "masks_b")
    shapes_a = {n: tuple(m.shape) for n, m in masks_a.items()}
    shapes_b = {n: tuple(m.shape) for n, m in masks_b.items()}
    if shapes_a != shapes_b:
        raise ValueError(f"'masks_a' and 'masks_b' must have the same layers and shapes. Got "
                         f"{shapes_a} and {shapes_b}.")
    both = sum(int((a & masks_b[n].to(a.device)).sum()) for n, a in masks_a.items())
    either = sum(int((a | masks_b[n].to(a.device)).sum()) for n, a in masks_a.items())
    return both / either if either else 1.0


def inside_share(masks: dict[str, Tensor], partitions: dict[str, Partition]) -> float:
    """Share of a circuit's clustered-layer edges that lie inside a cluster.

    An edge ``(i, j)`` of a layer lies inside a cluster when ``rows[i] == cols[j]``. The share is
    counted over the **clustered layers only**, the layers of ``partitions``: the circuit's
    edges in any other layer of ``masks`` (e.g. the last layer, which has no partition) are
    neither inside nor outside and enter neither count. For a circuit that ignores the
    clusters the share is about the partitions' chance level, ``1/k`` for equal blocks.

    Args:
        masks: ``{layer name: bool (n_out, n_in)}``, as :func:`circuit` returns; it may hold
            layers that are not clustered.
        partitions: ``{layer name: Partition}``, each layer one of ``masks``.

    Returns:
        (circuit edges inside a cluster) / (circuit edges), both summed over the layers of
        ``partitions``; a float in [0, 1].

    Raises:
        TypeError: ``masks`` or ``partitions`` not dicts (of bool tensors, of Partitions).
        ValueError: bad ``masks``, a partition's layer missing from ``masks``, a partition
            whose shape does not fit that layer's mask, or a circuit with no edge in those
            layers (the share would be 0 / 0).

    Example:
        >>> p = Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), k=2)
        >>> masks = {"fc": torch.tensor([[True, True], [False, True]]),
        ...          "out": torch.ones(3, 2, dtype=torch.bool)}  # a layer without a partition
        >>> inside_share(masks, {"fc": p})  # 2 of fc's 3 edges; the 6 of "out" do not count
        0.6666666666666666

    Introduced in notebook 04.
    """
    _check_masks(masks)
    check_partitions(partitions)
    missing = [n for n in partitions if n not in masks]
    if missing:
        raise ValueError(f"'partitions' has layers that are not in 'masks': {missing}. "
                         f"Known: {list(masks)}.")
    inside = total = 0
    for n, part in partitions.items():
        part.check_fits(masks[n], f"masks['{n}']")
        inside += int((masks[n] & part.mask().to(masks[n].device)).sum())
        total += int(masks[n].sum())
    if not total:
        raise ValueError(f"'masks' has no edge in the layers of 'partitions' "
                         f"{list(partitions)}: the share inside the clusters is undefined.")
    return inside / total
