"""Brain-inspired modular training (BIMT): modules left to emerge instead of imposed.

Liu, Gan & Tegmark (2023), *Seeing is Believing: Brain-Inspired Modular Training for
Mechanistic Interpretability*, implemented from the paper's description. Every neuron of a chain
of layers gets a place in the plane: the input neurons of the first layer on one horizontal line,
each layer's output neurons on the next, evenly spaced in [0, 1] along their line, ``gap`` apart
from line to line. Training minimises ``task loss + lam * cost`` with::

    cost = Σ_layers Σ_ij |W_ij| · d_ij,    d_ij = sqrt((x_i − x_j)² + gap²),

``d_ij`` the length of the connection from input neuron j to output neuron i: an L1 penalty that
charges long connections more than short ones. Every ``swap_every`` steps :meth:`BIMTLoss.swap`
moves the hidden neurons: each in turn trades places with the neuron of its line that shortens
the weighted connections most, if any does. A swap permutes the weights (and AdamW's running
moments), so the network computes the same function before and after. In the paper, what is
left is a network of short, local connections whose modules can be seen in a drawing of it.

Neurons: a Linear layer's inputs and outputs; a Conv2d layer's channels; a Linear layer that takes
a flattened Conv2d output has one input neuron per channel (its columns grouped by channel, as
:func:`modlib.aligned_partitions` groups them). Only weights are penalised, not biases. Only the
hidden lines move: the first layer's inputs (pixels, or a transformer's residual stream) and the
last layer's outputs keep their order. Introduced in notebook 08.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..core.graph import weight_layers
from ..validate import (
    check_int,
    check_layer_names,
    check_matrix,
    check_module,
    check_real,
    describe,
)

__all__ = ["BIMTLoss", "connection_lengths", "connection_cost", "place_costs", "swap_deltas"]


def _positions(n: int) -> Tensor:
    """``n`` evenly spaced places in [0, 1]: the centres of n equal cells."""
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def connection_lengths(n_out: int, n_in: int, gap: float = 0.2) -> Tensor:
    """The (n_out, n_in) lengths of the connections between two lines of neurons.

    Neuron i of a line of n sits at x = (i + 0.5) / n; the lines are ``gap`` apart, so the
    connection from input j to output i is sqrt((x_i − x_j)² + gap²) long (float64).

    Example:
        >>> connection_lengths(1, 2, gap=0.0)
        tensor([[0.2500, 0.2500]], dtype=torch.float64)

    Introduced in notebook 08.
    """
    n_out = check_int(n_out, "n_out", minimum=1)
    n_in = check_int(n_in, "n_in", minimum=1)
    gap = check_real(gap, "gap", minimum=0)
    x_out, x_in = _positions(n_out), _positions(n_in)
    return torch.sqrt((x_out[:, None] - x_in[None, :]) ** 2 + gap ** 2)


def connection_cost(W: Tensor, gap: float = 0.2) -> float:
    """BIMT's cost of one layer: ``Σ_ij |W_ij|`` times the length of connection ij.

    ``W`` is (n_out, n_in), the output neurons on one line and the input neurons on the line
    ``gap`` below (:func:`connection_lengths`).

    Example:
        >>> connection_cost(torch.tensor([[2.0, -1.0]]), gap=0.0)
        0.75

    Introduced in notebook 08.
    """
    W = check_matrix(W, "W")
    gap = check_real(gap, "gap", minimum=0)
    return float((W.double().abs() * connection_lengths(*W.shape, gap)).sum())


def place_costs(W_in: Tensor, W_out: Tensor, gap: float = 0.2) -> Tensor:
    """C[s, p]: the cost of the connections of the neuron in place s of a line, were it in
    place p instead (every other neuron staying where it is).

    Args:
        W_in: (n, n_before) weights into the line's n neurons, from the line before.
        W_out: (n_after, n) weights out of them, to the line after.
        gap: the distance between two lines.

    Returns:
        (n, n) float64: ``C[s, p] = Σ_a |W_in[s, a]| d(p, a) + Σ_b |W_out[b, s]| d(b, p)``, with
        the lengths d of :func:`connection_lengths`. The diagonal holds each neuron's cost
        where it is.

    Raises:
        ValueError: ``W_in`` and ``W_out`` disagree on n (the message gives both shapes).

    Example:
        >>> place_costs(torch.tensor([[1.0], [0.0]]), torch.zeros(1, 2), gap=0.0)
        tensor([[0.2500, 0.2500],
                [0.0000, 0.0000]], dtype=torch.float64)

    Introduced in notebook 08.
    """
    W_in, W_out = check_matrix(W_in, "W_in"), check_matrix(W_out, "W_out")
    gap = check_real(gap, "gap", minimum=0)
    n = W_in.shape[0]
    if W_out.shape[1] != n:
        raise ValueError(f"'W_out' must have one column per neuron of the line (W_in has "
                         f"{n} rows). Got W_in of shape {tuple(W_in.shape)} and W_out of shape "
                         f"{tuple(W_out.shape)}.")
    d_in = connection_lengths(n, W_in.shape[1], gap).to(W_in.device)  # (n places, n_before)
    d_out = connection_lengths(W_out.shape[0], n, gap).to(W_out.device)  # (n_after, n places)
    return W_in.double().abs() @ d_in.T + W_out.double().abs().T @ d_out


def swap_deltas(C: Tensor, s: int) -> Tensor:
    """The change of the total cost if the neuron in place s traded places with each other one.

    Args:
        C: (n, n) place costs (:func:`place_costs`).
        s: the place of the neuron that moves.

    Returns:
        (n,): entry t is C[s, t] + C[t, s] − C[s, s] − C[t, t] (0 at t = s); negative entries
        are swaps that shorten the connections.

    Example:
        >>> swap_deltas(torch.tensor([[2.0, 1.0], [1.0, 2.0]]), 0)
        tensor([ 0., -2.])

    Introduced in notebook 08.
    """
    C = check_matrix(C, "C")
    if C.shape[0] != C.shape[1]:
        raise ValueError(f"'C' must be square (places by places). Got shape {tuple(C.shape)}.")
    s = check_int(s, "s", minimum=0, maximum=C.shape[0] - 1)
    here = C.diagonal()
    return C[s] + C[:, s] - C[s, s] - here


class BIMTLoss(nn.Module):
    """The connection cost of BIMT over a chain of layers, and the neuron swaps that shorten it.

    Args:
        model: the network.
        layers: names of consecutive Linear / Conv2d layers, input to output, each taking the
            previous one's outputs (a Linear after a Conv2d may take its flattened feature maps)
            through element-wise activations or per-channel pooling only: the swaps keep the
            network's function only then. Default: every Linear and Conv2d layer, in the model's
            order, for a model that has no other layer with parameters (a plain MLP or CNN).
        gap: the distance between two lines of neurons (> 0): the cost of the shortest
            connection. The smaller, the more the across-line distance matters.
        swap_every: training steps between two rounds of swaps (``fit`` calls :meth:`swap`).

    Calling the loss returns the cost (a scalar tensor with gradient); :meth:`connection_cost`
    returns it as a float.

    Raises:
        TypeError: ``model`` not a module, ``layers`` not a list of str, ``gap`` or ``swap_every``
            of the wrong type, a named layer that is not a Linear or Conv2d.
        ValueError: unknown layer names, a layer named twice, layers that do not form a chain
            (the message names the pair and their sizes), no ``layers`` for a model with other
            layers with parameters (embeddings, norms), ``gap <= 0`` or ``swap_every < 1``.

    Example:
        >>> net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> bimt = BIMTLoss(net)
        >>> bimt.layer_names, bimt.hidden_sizes
        (['0', '2'], [8])
        >>> x = torch.randn(5, 6)
        >>> before = net(x)
        >>> cost = bimt.connection_cost()
        >>> swaps = bimt.swap()  # the same function, connections no longer
        >>> torch.allclose(net(x), before, atol=1e-6), bimt.connection_cost() <= cost + 1e-9
        (True, True)

    Introduced in notebook 08.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None, *, gap: float = 0.2,
                 swap_every: int = 200) -> None:
        super().__init__()
        check_module(model)
        self.gap = check_real(gap, "gap", minimum=0, low_open=True)
        self.swap_every = check_int(swap_every, "swap_every", minimum=1)
        found = {n: m for n, m in weight_layers(model).items()
                 if isinstance(m, (nn.Linear, nn.Conv2d))}
        if layers is None:
            names = list(found)
            if not names:
                raise ValueError("'model' has no Linear or Conv2d layer for BIMT to place.")
            others = [n for n, m in model.named_modules() if n not in found
                      and any(True for _ in m.parameters(recurse=False))]
            if others:  # embeddings, norms, attention: the layers may not be one chain
                raise ValueError(f"'model' has layers other than Linear and Conv2d with "
                                 f"parameters ({others[:3]}), so its Linear and Conv2d layers "
                                 f"may not form one chain. Name the chain with 'layers', e.g. a "
                                 f"transformer block's MLP (['mlp.fc_in', 'mlp.fc_out']).")
        else:
            names = check_layer_names(layers, dict(model.named_modules()), "layers")
            odd = [n for n in names if n not in found]
            if odd:
                m = dict(model.named_modules())[odd[0]]
                raise TypeError(f"BIMT places the neurons of Linear and Conv2d layers; layer "
                                f"'{odd[0]}' is {describe(m)}.")
            if len(set(names)) != len(names):
                raise ValueError(f"'layers' names a layer twice: {names}.")
        self.layer_names: list[str] = names
        self.layers: dict[str, nn.Module] = {n: found[n] for n in names}  # not sub-modules
        self.shapes: dict[str, tuple[int, ...]] = {n: tuple(m.weight.shape)
                                                   for n, m in self.layers.items()}
        # per layer: how many of its input columns make one input neuron (a channel's map)
        self.groups: list[int] = [1]
        mods = list(self.layers.values())
        for i in range(1, len(mods)):
            self.groups.append(self._group(names[i - 1], mods[i - 1], names[i], mods[i]))
        sizes = [self._sides(0)[1]] + [self._sides(i)[0] for i in range(len(mods))]
        self.sizes: list[int] = sizes  # neurons per line: the inputs, then each layer's outputs
        for i in range(len(names)):
            d = connection_lengths(sizes[i + 1], sizes[i], self.gap)
            self.register_buffer(f"_dist{i}", d.float(), persistent=False)

    @staticmethod
    def _group(prev_name: str, prev: nn.Module, name: str, module: nn.Module) -> int:
        n_prev = prev.out_features if isinstance(prev, nn.Linear) else prev.out_channels
        n_in = module.in_features if isinstance(module, nn.Linear) else module.in_channels
        if n_in == n_prev and (isinstance(module, nn.Linear) or isinstance(prev, nn.Conv2d)):
            return 1
        if isinstance(prev, nn.Conv2d) and isinstance(module, nn.Linear) and n_in % n_prev == 0:
            return n_in // n_prev  # the flattened feature map of each channel
        raise ValueError(f"'layers' must form a chain, each layer taking the previous one's "
                         f"outputs: '{name}' takes {n_in} inputs, but '{prev_name}' gives "
                         f"{n_prev} outputs. Name consecutive layers, e.g. a transformer "
                         f"block's MLP (['mlp.fc_in', 'mlp.fc_out']).")

    def _sides(self, i: int) -> tuple[int, int]:
        """(output neurons, input neurons) of layer ``i``."""
        m = list(self.layers.values())[i]
        n_out = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        n_in = m.in_features if isinstance(m, nn.Linear) else m.in_channels
        return n_out, n_in // self.groups[i]

    @property
    def hidden_sizes(self) -> list[int]:
        """Neurons per hidden line: the lines whose neurons :meth:`swap` moves."""
        return self.sizes[1:-1]

    def _strengths(self, i: int) -> Tensor:
        """Layer ``i``'s ``|W|`` summed per (output neuron, input neuron): (n_out, n_in)."""
        W = list(self.layers.values())[i].weight
        A = W.abs()
        if A.dim() == 4:  # Conv2d: (out, in, kh, kw)
            return A.sum((2, 3))
        if self.groups[i] > 1:
            return A.view(A.shape[0], -1, self.groups[i]).sum(-1)
        return A

    def forward(self) -> Tensor:
        """The connection cost ``Σ |W_ij| d_ij`` over every layer (differentiable)."""
        total = None
        for i in range(len(self.layer_names)):
            d = getattr(self, f"_dist{i}")
            S = self._strengths(i)
            term = (S * d.to(S.device, S.dtype)).sum()
            total = term if total is None else total + term
        return total

    def connection_cost(self) -> float:
        """The connection cost as a float."""
        with torch.no_grad():
            return float(self())

    @torch.no_grad()
    def swap(self, optimizer: torch.optim.Optimizer | Any | None = None) -> int:
        """One round of swaps on every hidden line; the function the network computes is kept.

        For each hidden neuron in turn, the other neuron of its line whose place would shorten
        the weighted connections of the two the most trades places with it (no trade when none
        shortens them). The rows of the layer before and the input neurons of the layer after
        are permuted, with the optimiser's per-parameter state (AdamW's moments) alike.

        Args:
            optimizer: the optimiser training the model (its state is permuted too), or None.

        Returns:
            The number of swaps made.
        """
        mods = list(self.layers.values())
        swaps = 0
        state = getattr(getattr(optimizer, "optimizer", optimizer), "state", None)
        for line in range(1, len(mods)):  # the line between layer line-1 and layer line
            before, after = mods[line - 1], mods[line]
            # C[s, p]: the cost of the connections of the neuron now at s, were it at place p
            C = place_costs(self._strengths(line - 1), self._strengths(line), self.gap)
            n = C.shape[0]
            perm = torch.arange(n, device=C.device)
            for s in range(n):
                delta = swap_deltas(C, s)  # the neuron at s trading places with each other one
                t = int(delta.argmin())
                if t != s and float(delta[t]) < -1e-9 * max(1.0, float(C[s, s])):
                    C[[s, t]] = C[[t, s]]
                    perm[[s, t]] = perm[[t, s]]
                    swaps += 1
            if not bool((perm != torch.arange(n, device=perm.device)).any()):
                continue
            self._permute_param(before.weight, perm, 0, 1, state)
            if before.bias is not None:
                self._permute_param(before.bias, perm, 0, 1, state)
            self._permute_param(after.weight, perm, 1, self.groups[line], state)
        return swaps

    @staticmethod
    def _permute_param(p: Tensor, perm: Tensor, dim: int, group: int, state: Any) -> None:
        """Reorder ``p`` along ``dim`` in blocks of ``group`` by ``perm``, and its optimiser
        state alike."""
        perm = perm.to(p.device)
        if group > 1:  # a Linear's columns grouped by channel: move whole groups
            idx = (perm[:, None] * group + torch.arange(group, device=p.device)).flatten()
        else:
            idx = perm
        tensors = [p.data]
        if state is not None and p in state:
            tensors += [v for v in state[p].values()
                        if isinstance(v, Tensor) and v.shape == p.shape]
        for t in tensors:
            t.copy_(t.index_select(dim, idx))

    def extra_repr(self) -> str:
        return (f"layers={self.layer_names}, neurons per line={self.sizes}, gap={self.gap}, "
                f"swap_every={self.swap_every}")
