"""Networks whose circuit is known, to check the circuit measures against the truth.

A circuit measure (attribution patching, :func:`modlib.analysis.patching.circuit`; the paper's
greedy pruning, :func:`modlib.analysis.circuits.prune_circuit`) returns edge masks; on a trained
model nobody knows which edges are right. :func:`planted_circuit` builds a small ReLU network by
hand in which one label provably uses exactly a known set of weights, hidden among large weights
it does not use; :func:`circuit_recovery` scores a found circuit against it (precision and recall
over edges). Introduced in notebook 04.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..validate import (
    check_choice,
    check_data,
    check_int,
    check_mapping,
    check_module,
    check_real,
    check_tensor,
)

__all__ = ["PlantedCircuit", "circuit_recovery", "planted_circuit"]

Case = Literal["unique", "redundant"]

# Sizes per class (the label's circuit lives in its class's blocks): input features, units of
# layer "0" and of layer "2"; and, shared by all classes, always-on noise features and units that
# never fire (layer "0" and layer "2").
_FEATURES, _UNITS1, _UNITS2, _NOISE, _DEAD1, _DEAD2 = 4, 4, 2, 4, 4, 2
_MASK_WHAT = "{layer name: bool (n_out, n_in) tensor}"


@dataclass(frozen=True)
class PlantedCircuit:
    """A network, one label's examples, and the true circuit of that label on them.

    Built by :func:`planted_circuit`; a hand-made one is checked the same way (the truth must
    give one bool mask, shaped like the weight, for every Linear layer of ``model``).
    """

    model: nn.Module  # Linear "0", ReLU, Linear "2", ReLU, Linear "4": the logits
    X: Tensor  # (n, n_in) the label's examples
    y: Tensor  # (n,) the label, n times
    label: int  # the class whose circuit is planted
    truth: dict[str, Tensor]  # {layer name: bool (n_out, n_in)}: True for the circuit's edges
    case: str  # "unique" or "redundant" (see planted_circuit)

    def __post_init__(self) -> None:
        check_module(self.model)
        check_data(self.X, self.y)
        check_int(self.label, "label", minimum=0)
        check_choice(self.case, "case", get_args(Case))
        weights = {n: tuple(m.weight.shape) for n, m in self.model.named_modules()
                   if isinstance(m, nn.Linear)}
        if not weights:
            raise ValueError("'model' has no nn.Linear layer: no edge to plant a circuit in.")
        _check_same(_shapes(self.truth, "truth"), weights, "truth",
                    "the model's Linear weights")


def _shapes(masks: object, name: str) -> dict[str, tuple[int, ...]]:
    """``{layer: shape}`` of a dict of 2-D bool masks, checked."""
    check_mapping(masks, name, _MASK_WHAT)
    for layer, mask in masks.items():  # type: ignore[union-attr]
        check_tensor(mask, f"{name}[{layer!r}]", kind="bool", ndim=2, nonempty=True)
    return {n: tuple(m.shape) for n, m in masks.items()}  # type: ignore[union-attr]


def _check_same(shapes_a: dict[str, tuple[int, ...]], shapes_b: dict[str, tuple[int, ...]],
                name_a: str, what_b: str) -> None:
    if shapes_a != shapes_b:
        raise ValueError(f"'{name_a}' must have the layers and shapes of {what_b}. Got "
                         f"{shapes_a} and {shapes_b}.")


def circuit_recovery(found: dict[str, Tensor], truth: dict[str, Tensor]) -> tuple[float, float]:
    """Precision and recall of a found circuit's edges against the true circuit's.

    Precision is the share of the found edges that are true edges; recall the share of the true
    edges that were found. Both are counted over all layers together.

    Args:
        found: ``{layer name: bool (n_out, n_in)}``, e.g. from
            :func:`modlib.analysis.patching.circuit` or
            :func:`modlib.analysis.circuits.class_circuits`.
        truth: the true circuit, the same layers and shapes (``PlantedCircuit.truth``).

    Returns:
        ``(precision, recall)``, each in [0, 1]; precision is 0.0 when ``found`` has no edge.

    Raises:
        TypeError: ``found`` or ``truth`` not a dict, or a mask not a bool tensor.
        ValueError: an empty dict, a mask not 2-D or empty, layers or shapes that differ, or a
            ``truth`` without any edge (recall would be 0 / 0).

    Example:
        >>> truth = {"fc": torch.tensor([[True, True, False, False]])}
        >>> circuit_recovery({"fc": torch.tensor([[True, False, True, False]])}, truth)
        (0.5, 0.5)

    Introduced in notebook 04.
    """
    _check_same(_shapes(found, "found"), _shapes(truth, "truth"), "found", "'truth'")
    n_true = sum(int(m.sum()) for m in truth.values())
    if not n_true:
        raise ValueError(f"'truth' has no edge in {list(truth)}: recall is undefined.")
    n_found = sum(int(m.sum()) for m in found.values())
    shared = sum(int((m & truth[n].to(m.device)).sum()) for n, m in found.items())
    return (shared / n_found if n_found else 0.0), shared / n_true


def _uniform(shape: tuple[int, ...], low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _weights(n_classes: int, label: int, g: torch.Generator) -> list[Tensor]:
    """W1 (n1, n_in), W2 (n2, n1), W3 (n_classes, n2) in block order, before any label case."""
    f, u1, u2 = _FEATURES, _UNITS1, _UNITS2
    n_in, n1, n2 = n_classes * f + _NOISE, n_classes * u1 + _DEAD1, n_classes * u2 + _DEAD2
    W1 = -_uniform((n1, n_in), 0.5, 2.0, g)  # inhibition: large, unused on the label's data
    W1[: n_classes * u1, n_classes * f:] = 0  # class units ignore the noise features
    W2 = -_uniform((n2, n1), 0.5, 2.0, g)
    W2[:, n_classes * u1:] = _uniform((n2, _DEAD1), 1.0, 2.0, g)  # large, from dead units
    W3 = torch.zeros(n_classes, n2)
    W3[:, n_classes * u2:] = _uniform((n_classes, _DEAD2), 1.0, 2.0, g)  # same
    for c in range(n_classes):  # each class's own path: features -> units -> units -> logit
        W1[c * u1:(c + 1) * u1, c * f:(c + 1) * f] = _uniform((u1, f), 0.5, 1.5, g)
        W2[c * u2:(c + 1) * u2, c * u1:(c + 1) * u1] = _uniform((u2, u1), 0.5, 1.5, g)
        W3[c, c * u2:(c + 1) * u2] = _uniform((u2,), 0.5, 1.5, g)
    rows1, rows2 = slice(label * u1, (label + 1) * u1), slice(label * u2, (label + 1) * u2)
    small1 = torch.randint(f, (u1,), generator=g)  # one small but necessary weight a unit
    W1[rows1, label * f:(label + 1) * f][torch.arange(u1), small1] = _uniform((u1,), .02, .05, g)
    small2 = torch.randint(u1, (u2,), generator=g)
    W2[rows2, label * u1:(label + 1) * u1][torch.arange(u2), small2] = _uniform((u2,), .02, .05, g)
    return [W1, W2, W3]


def _redundant(W: list[Tensor], label: int) -> None:
    """Two paths for the label, joined by a gate ``min(S_a + S_b, t)`` (bias set later)."""
    W1, W2, W3 = W
    f, u1, u2 = _FEATURES, _UNITS1, _UNITS2
    block = W1[label * u1:(label + 1) * u1, label * f:(label + 1) * f]  # (u1, f), a view
    block[block < 0.5] = 1.0  # no small weights: each path alone is ample
    block[: u1 // 2, f // 2:] = 0  # units a read features a only ...
    block[u1 // 2:, : f // 2] = 0  # ... units b features b only
    u, v = label * u2, label * u2 + 1
    W2[v, label * u1:(label + 1) * u1] = W2[u, label * u1:(label + 1) * u1] = 1.0
    W3[label, u], W3[label, v] = 1.0, -1.0  # logit = u - v = S - relu(S - t) = min(S, t)


def planted_circuit(case: Case = "unique", *, seed: int = 0, n_classes: int = 4,
                    n_examples: int = 64, margin: float = 3.0) -> PlantedCircuit:
    """A ReLU network in which label 0 provably uses exactly the edges of ``truth``.

    The model is ``Linear "0" -> ReLU -> Linear "2" -> ReLU -> Linear "4"``, hand-set (every
    bias 0 but the redundant gate's threshold), with units and input features shuffled
    (``seed``) so that an edge's index says nothing. Each
    class ``c`` has 4 input features, 4 units in layer "0" and 2 in layer "2", joined by
    positive weights to logit ``c``; 4 noise features are on for every example, and 4 + 2 units
    never fire. All other weights are as large as the circuit's or larger (|W| in [0.5, 2]):
    negative into every unit from inputs that are active on the label's data, anything from
    inputs that are not; the weights into the label's logit from other classes' units are 0.
    The label's examples ``X`` have their class's features and the noise features in
    [0.5, 1.5] and every other feature exactly 0.

    Why ``truth`` is the truth (``case="unique"``): on the label's examples, with *any* set of
    weights zeroed, every unit outside the label's path has a pre-activation that sums
    (weight <= 0) x (activation >= 0), so it outputs exactly 0; every other edge either reads
    an input that is exactly 0 or feeds a unit that stays at 0, and so changes no logit, however
    large it is. Every edge of ``truth`` is positive on a path of positive activations to the
    label's logit (each unit keeps at least one other positive input), while every other logit
    is exactly 0: zeroing it alone lowers the margin on every example, so it is necessary, even
    the 6 small ones (|W| in [0.02, 0.05]). With ``case="redundant"`` the label's units form
    two paths (features 0-1 and 2-3) summed into ``S`` and gated, ``logit = min(S, t)`` with
    ``t`` below each path's sum on every example: ``truth`` is every edge on an active path (both
    paths and the gate), but either path alone gives the same logits, so no single path edge is
    necessary: a circuit is no longer unique, and the measures legitimately differ.

    Args:
        case: ``"unique"`` or ``"redundant"`` (see above).
        seed: seeds the weights, the shuffles and the examples.
        n_classes: logits; at least 2.
        n_examples: examples of the label.
        margin: the label's mean logit margin (every example's, in ``"redundant"``). Above about
            17, float32 softmax rounds the right class's probability to 1 and both measures go
            blind: the loss stops rising and the log-probability's gradient is 0.

    Returns:
        A :class:`PlantedCircuit` with ``label`` 0; ``truth`` has 26 edges (``"unique"``) or
        18 (``"redundant"``) of 640 with the default sizes.

    Raises:
        ValueError: an unknown ``case``; ``n_classes`` < 2, ``n_examples`` < 1, ``margin`` <= 0.
        TypeError: ``seed``, ``n_classes`` or ``n_examples`` not an int, ``margin`` not a real.

    Example:
        >>> net = planted_circuit(seed=0)
        >>> {name: int(mask.sum()) for name, mask in net.truth.items()}
        {'0': 16, '2': 8, '4': 2}
        >>> bool((net.model(net.X).argmax(1) == net.label).all())
        True

    Introduced in notebook 04.
    """
    case = check_choice(case, "case", get_args(Case))
    seed = check_int(seed, "seed")
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    n_examples = check_int(n_examples, "n_examples", minimum=1)
    margin = check_real(margin, "margin", minimum=0, low_open=True)
    g, label = torch.Generator().manual_seed(seed), 0
    W = _weights(n_classes, label, g)
    if case == "redundant":
        _redundant(W, label)
    f, u1, u2 = _FEATURES, _UNITS1, _UNITS2
    X = torch.zeros(n_examples, W[0].shape[1])
    X[:, label * f:(label + 1) * f] = _uniform((n_examples, f), 0.5, 1.5, g)
    X[:, n_classes * f:] = _uniform((n_examples, _NOISE), 0.5, 1.5, g)
    bias = torch.zeros(W[1].shape[0])
    h1 = (X @ W[0].T).relu()
    if case == "redundant":  # the gate's threshold: 0.8 x the smaller path's smallest sum
        w = W[1][label * u2, label * u1:(label + 1) * u1] * h1[:, label * u1:(label + 1) * u1]
        t = 0.8 * float(torch.minimum(w[:, : u1 // 2].sum(1), w[:, u1 // 2:].sum(1)).min())
        bias[label * u2 + 1] = -t
        W[2][label, label * u2:(label + 1) * u2] *= margin / t
    else:  # scale the label's logit weights to the asked mean margin
        z = (h1 @ W[1].T).relu() @ W[2][label]
        W[2][label, label * u2:(label + 1) * u2] *= margin / float(z.mean())
    truth = [torch.zeros_like(w, dtype=torch.bool) for w in W]
    truth[0][label * u1:(label + 1) * u1, label * f:(label + 1) * f] = True
    truth[1][label * u2:(label + 1) * u2, label * u1:(label + 1) * u1] = True
    truth[2][label, label * u2:(label + 1) * u2] = True
    truth = [t & (w != 0) for t, w in zip(truth, W, strict=True)]
    return _shuffled(W, bias, truth, X, label, case, g)


def _shuffled(W: list[Tensor], bias: Tensor, truth: list[Tensor], X: Tensor, label: int,
              case: str, g: torch.Generator) -> PlantedCircuit:
    """Shuffle inputs and hidden units (an edge's index carries no hint) and build the model."""
    p_in, p1, p2 = (torch.randperm(n, generator=g) for n in (*W[0].shape[::-1], W[1].shape[0]))
    W = [W[0][p1][:, p_in], W[1][p2][:, p1], W[2][:, p2]]
    truth = [truth[0][p1][:, p_in], truth[1][p2][:, p1], truth[2][:, p2]]
    linears = [nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[0]) for w in W]  # no RNG used
    with torch.no_grad():
        for layer, w, b in zip(linears, W, [None, bias[p2], None], strict=True):
            layer.weight.copy_(w)
            layer.bias.copy_(torch.zeros(w.shape[0]) if b is None else b)
    model = nn.Sequential(linears[0], nn.ReLU(), linears[1], nn.ReLU(), linears[2]).eval()
    masks = {name: t for name, t in zip(("0", "2", "4"), truth, strict=True)}
    y = torch.full((len(X),), label, dtype=torch.long)
    return PlantedCircuit(model, X[:, p_in], y, label, masks, case)
