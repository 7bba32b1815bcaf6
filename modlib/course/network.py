"""Whole-network pictures: every layer's neurons in cluster order and the strongest edges.

:func:`plot_network` draws a chain of consecutive layers (the ``n_in`` of each layer equals the
``n_out`` of the one before) as columns of dots, inputs on the left, outputs on the right, and the
largest edges of each layer as line segments whose opacity and width grow with |W_ij|. An edge whose
two ends lie in the same cluster takes that cluster's colour; an edge between clusters is black;
an edge with an end that no partition names is grey. The title gives the inside share of the
drawn (clustered) edges: near 100 % for a modular network, near the chance level for a baseline.
:func:`plot_networks` puts runs side by side (baseline | modular | BIMT), and
:func:`plot_network_frames` and :func:`network_animation` show modules forming during training,
from weights that :func:`snapshot_weights` copies inside a training loop.

Where a neuron goes (:func:`network_layout`): a neuron between two layers, the output of one and
the input of the next, is ONE dot. It is ordered (stably, by cluster label) and coloured by the
partition of the layer whose output it is, if that layer has one, else by the partition of the
layer whose input it is; with neither it keeps its index order and is grey. The first column
(the inputs) follows the first layer's partition. Clusters are separated by a small gap. An edge
is inside when its two dots have the same cluster, as drawn: with the aligned partitions of
training from scratch (:func:`modlib.aligned_partitions`) that is each layer's own partition;
partitions found layer by layer (spectral co-clustering) number their clusters independently, so
there a column follows one of its two layers, and :func:`modlib.course.viz.plot_weights` shows each
layer on its own partition.

Large layers: a column of more than ``max_neurons`` neurons is drawn as about ``max_neurons``
square dots, each a run of neighbouring neurons (in display order, never across two clusters).
The edge between two dots weighs sqrt(Σ W_ij²) over the neurons they stand for, which keeps each
cluster's share of Σ W², the quantity clusterability measures. The column's label says so
("784 inputs, as 128 dots"). Introduced in notebooks 03, 06 and 08.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from torch import Tensor, nn

from ..core.graph import layer_matrix, weight_layers
from ..core.partition import Partition
from ..validate import (
    check_bool,
    check_instance,
    check_int,
    check_layer_names,
    check_mapping,
    check_matrix,
    check_module,
    describe,
)

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

__all__ = ["network_layout", "plot_network", "plot_networks", "plot_network_frames",
           "network_animation", "snapshot_weights"]

_GREY = (0.6, 0.6, 0.6, 1.0)  # neurons and edges that no partition names
_BLACK = (0.0, 0.0, 0.0, 1.0)  # edges between two clusters
Weights = Mapping[str, Tensor] | nn.Module


@dataclass(frozen=True)
class NetworkColumn:
    """One column of neurons in :func:`plot_network`, from :func:`network_layout`.

    Attributes:
        name: ``"input"`` for the first column, else the layer whose outputs these neurons are.
        labels: (n,) cluster of each neuron; -1 where no partition names it.
        order: (n,) neuron indices from the top down: by cluster, stable within a cluster.
        dot: (n,) the dot each neuron is drawn as; dots are numbered from the top.
        y: (n_dots,) height of each dot, 1 at the top and 0 at the bottom.
        dot_labels: (n_dots,) the cluster of each dot (-1: none).
    """

    name: str
    labels: Tensor
    order: Tensor
    dot: Tensor
    y: Tensor
    dot_labels: Tensor

    @property
    def n(self) -> int:
        """The number of neurons."""
        return self.labels.numel()

    @property
    def n_dots(self) -> int:
        """The number of dots drawn: ``n`` unless the column is grouped."""
        return self.y.numel()


def snapshot_weights(model: nn.Module, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Detached float CPU copies of ``model``'s weight matrices: one frame of training.

    :func:`modlib.fit` has no per-step hook, and changing it would change the numbers of every
    existing run; collect snapshots in a plain loop instead (below), or before and after ``fit``.

    Args:
        model: the network.
        layers: names of its Linear / Conv2d / Conv1D modules, in drawing order (default: all of
            them, in registration order).

    Returns:
        ``{layer name: W (n_out, n_in)}`` as :func:`modlib.layer_matrix` gives it, copied, so
        that later training steps do not change it.

    Raises:
        TypeError: ``model`` is not a module, ``layers`` not a list of str.
        ValueError: a name that is not a weight layer of ``model``, or a model without one.

    Example:
        >>> model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> X, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
        >>> snapshots = [("step 0", snapshot_weights(model))]
        >>> for step in range(1, 4):
        ...     opt.zero_grad()
        ...     nn.functional.cross_entropy(model(X), y).backward()
        ...     opt.step()
        ...     snapshots.append((f"step {step}", snapshot_weights(model)))
        >>> len(snapshots), list(snapshots[-1][1])
        (4, ['0', '2'])
        >>> fig = plot_network_frames(snapshots)

    Introduced in notebook 03.
    """
    check_module(model)
    modules = weight_layers(model)
    if layers is None:
        names = list(modules)
    else:
        names = check_layer_names(layers, (), "layers", check_known=False)
        unknown = [n for n in names if n not in modules]
        if unknown:
            raise ValueError(f"'layers' names modules that are not Linear/Conv2d/Conv1D layers "
                             f"of the model: {unknown}. Known: {list(modules)}.")
    if not names:
        raise ValueError(f"'model' ({type(model).__name__}) has no Linear/Conv2d/Conv1D layer.")
    with torch.no_grad():
        return {n: layer_matrix(modules[n]).detach().float().cpu().clone() for n in names}


def _chain(weights: object, layers: object, name: str) -> tuple[dict[str, Tensor], list[str]]:
    """The layers to draw {name: W} (checked, detached float CPU) and every name known."""
    if isinstance(weights, nn.Module):
        return snapshot_weights(weights, layers), list(weight_layers(weights))
    check_mapping(weights, name, "{layer name: W} or a torch.nn.Module")
    assert isinstance(weights, Mapping)
    for key in weights:
        check_instance(key, f"{name} key", str, "a layer name (str)")
    names = list(weights) if layers is None else check_layer_names(layers, (), check_known=False)
    unknown = [n for n in names if n not in weights]
    if unknown:
        raise ValueError(f"'layers' names layers that are not in '{name}': {unknown}. "
                         f"Known: {list(weights)}.")
    chain = {}
    for key in names:
        W = check_matrix(weights[key], f"{name}[{key!r}]").detach().float().cpu()
        bad = int((~torch.isfinite(W)).sum())
        if bad:
            raise ValueError(f"'{name}[{key!r}]' of shape {tuple(W.shape)} has {bad} NaN/Inf "
                             f"entries.")
        chain[key] = W
    return chain, list(weights)


def _check_consecutive(chain: dict[str, Tensor], name: str) -> None:
    """Each layer's n_in must equal the n_out of the layer before it."""
    names = list(chain)
    runs = [[names[0]]]
    for prev, key in zip(names, names[1:], strict=False):
        if chain[key].shape[1] == chain[prev].shape[0]:
            runs[-1].append(key)
        else:
            runs.append([key])
    for prev, key in zip(names, names[1:], strict=False):
        n_out, n_in = chain[prev].shape[0], chain[key].shape[1]
        if n_in != n_out:
            raise ValueError(
                f"'{name}' must be consecutive layers (each layer's n_in equals the n_out of the "
                f"one before). Layer {key!r} of shape {tuple(chain[key].shape)} takes {n_in} "
                f"inputs, but layer {prev!r} before it gives {n_out} outputs. Draw a consecutive "
                f"run alone, e.g. layers={max(runs, key=len)} (a Linear on a flattened Conv2d "
                f"output does not continue the conv's columns).")


def _partitions(partitions: object, chain: dict[str, Tensor], known: list[str],
                name: str = "partitions") -> dict[str, Partition]:
    """The partitions of the drawn layers; those of known layers left out are ignored."""
    if partitions is None:
        return {}
    check_mapping(partitions, name, "{layer name: Partition} or None", nonempty=False,
                  values=Partition, values_what="a modlib Partition")
    assert isinstance(partitions, Mapping)
    unknown = [key for key in partitions if key not in known]
    if unknown:
        raise ValueError(f"'{name}' names layers that are not in the weights: {unknown}. "
                         f"Known: {known}.")
    out = {}
    for key, part in partitions.items():
        if key in chain:
            part.check_fits(chain[key], f"weights[{key!r}]")
            out[key] = part.to("cpu")
    return out


def _column_labels(chain: dict[str, Tensor], parts: dict[str, Partition]) -> list[Tensor]:
    """Labels of the L + 1 columns: the output side's partition first, else the input side's."""
    names = list(chain)
    first = parts.get(names[0])
    labels = [first.cols if first else torch.full((chain[names[0]].shape[1],), -1)]
    for i, key in enumerate(names):
        here = parts.get(key)
        after = parts.get(names[i + 1]) if i + 1 < len(names) else None
        if here is not None:
            labels.append(here.rows)
        elif after is not None:
            labels.append(after.cols)
        else:
            labels.append(torch.full((chain[key].shape[0],), -1))
    return labels


def _column(name: str, labels: Tensor, max_neurons: int) -> NetworkColumn:
    """Neurons in cluster order, grouped into about ``max_neurons`` dots when there are more."""
    n = labels.numel()
    order = torch.sort(labels, stable=True).indices
    values, counts = torch.unique_consecutive(labels[order], return_counts=True)
    dot_in_order, dot_labels, start = [], [], 0
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        slots = count if n <= max_neurons else min(count, max(1, round(max_neurons * count / n)))
        dot_in_order.append(start + torch.arange(count) * slots // count)
        dot_labels.append(torch.full((slots,), value))
        start += slots
    dot = torch.empty(n, dtype=torch.long)
    dot[order] = torch.cat(dot_in_order)
    dot_labels = torch.cat(dot_labels)
    m = dot_labels.numel()
    if m == 1:
        y = torch.tensor([0.5])
    else:  # a gap between clusters, of about 6 % of the column
        cluster = torch.cat([torch.zeros(1), (dot_labels[1:] != dot_labels[:-1]).float()]).cumsum(0)
        pos = torch.arange(m) + max(1.0, 0.06 * m) * cluster
        y = 1 - pos / pos[-1]
    return NetworkColumn(name, labels, order, dot, y, dot_labels)


def network_layout(weights: Weights, partitions: Mapping[str, Partition] | None = None, *,
                   layers: Sequence[str] | None = None, max_neurons: int = 128
                   ) -> list[NetworkColumn]:
    """Where :func:`plot_network` draws each neuron: one column per layer side, in cluster order.

    Args:
        weights: ``{layer name: W (n_out, n_in)}`` of consecutive layers, in order, or a model
            (its weight layers are read with :func:`modlib.layer_matrix`).
        partitions: ``{layer name: Partition}`` for some or all of the layers; None for none.
        layers: the layers to draw, in order (default: all of ``weights`` or of the model).
        max_neurons: a column with more neurons is drawn as about this many dots.

    Returns:
        L + 1 :class:`NetworkColumn`: the first layer's inputs, then each layer's outputs. A
        neuron shared by two layers is one entry of one column, ordered by the rule in the
        module docstring.

    Raises:
        TypeError: a wrong type (weights, a matrix, a partition, layers, max_neurons).
        ValueError: layers that are not consecutive (the message names the pair), a partition
            that does not fit its layer or names an unknown layer, NaN/Inf weights.

    Example:
        >>> from modlib.core.partition import contiguous_partition
        >>> W = {"fc1": torch.randn(4, 6), "fc2": torch.randn(2, 4)}
        >>> cols = network_layout(W, {"fc1": contiguous_partition(4, 6, 2)})
        >>> [c.n for c in cols], cols[1].labels.tolist()
        ([6, 4, 2], [0, 0, 1, 1])
    """
    chain, parts = _prepare(weights, partitions, layers, "weights")
    return _columns(chain, parts, check_int(max_neurons, "max_neurons", minimum=2))


def _columns(chain: dict[str, Tensor], parts: dict[str, Partition], max_neurons: int
             ) -> list[NetworkColumn]:
    return [_column(n, lab, max_neurons)
            for n, lab in zip(["input", *chain], _column_labels(chain, parts), strict=True)]


def _prepare(weights: object, partitions: object, layers: object, name: str
             ) -> tuple[dict[str, Tensor], dict[str, Partition]]:
    chain, known = _chain(weights, layers, name)
    _check_consecutive(chain, name)
    return chain, _partitions(partitions, chain, known)


def _check_top(top: object) -> float | int:
    """``top``: a fraction in (0, 1] or a count >= 1 of the edges drawn per layer."""
    what = "'top' must be a fraction in (0, 1] or a count >= 1 of the edges drawn per layer"
    if isinstance(top, bool) or not isinstance(top, numbers.Real):
        raise TypeError(f"{what}. Got {describe(top)}.")
    if isinstance(top, numbers.Integral):
        if top < 1:
            raise ValueError(f"{what}. Got {top}.")
        return int(top)
    if not 0 < float(top) <= 1:  # NaN fails too
        raise ValueError(f"{what}. Got {float(top)!r}.")
    return float(top)


def _options(top: object, max_neurons: object, title: object, name: str = "title") -> float | int:
    check_int(max_neurons, "max_neurons", minimum=2)
    if title is not None:
        check_instance(title, name, str, "a str or None")
    return _check_top(top)


def _palette(columns: list[NetworkColumn]) -> np.ndarray:
    """(k, 4) RGBA colours of the clusters: tab10, or tab20 beyond 10 clusters (then cycled)."""
    k = max(1, max(int(c.labels.max()) + 1 for c in columns))
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
    return np.array([cmap(i % cmap.N) for i in range(k)])


def _colours(labels: Tensor, palette: np.ndarray) -> np.ndarray:
    """RGBA of each label: its cluster's colour, grey for -1."""
    out = np.tile(np.array(_GREY), (labels.numel(), 1))
    named = (labels >= 0).numpy()
    out[named] = palette[labels.numpy()[named]]
    return out


def _edges(W: Tensor, c_in: NetworkColumn, c_out: NetworkColumn, top: float | int
           ) -> tuple[Tensor, Tensor, Tensor]:
    """(dot rows, dot cols, weights) of the drawn edges between dots, weakest first."""
    A = torch.zeros(c_out.n_dots, W.shape[1]).index_add_(0, c_out.dot, W.square())
    A = torch.zeros(c_out.n_dots, c_in.n_dots).index_add_(1, c_in.dot, A).sqrt()  # (out, in)
    count = min(A.numel(), top if isinstance(top, int) else math.ceil(top * A.numel()))
    values, flat = A.flatten().topk(count)
    keep = values > 0  # no line for a zero weight
    values, flat = values[keep].flip(0), flat[keep].flip(0)
    return flat // A.shape[1], flat % A.shape[1], values


def _draw_layer(ax: Axes, x: int, name: str, W: Tensor, c_in: NetworkColumn,
                c_out: NetworkColumn, top: float | int, palette: np.ndarray) -> tuple[int, int]:
    """One layer's strongest edges as a LineCollection; returns (clustered, inside) counts."""
    rows, cols, values = _edges(W, c_in, c_out, top)
    lab_in, lab_out = c_in.dot_labels[cols], c_out.dot_labels[rows]
    clustered = (lab_in >= 0) & (lab_out >= 0)
    inside = clustered & (lab_in == lab_out)
    colours = _colours(torch.where(inside, lab_in, -1), palette)
    colours[(clustered & ~inside).numpy()] = _BLACK
    strength = (values / values.max()).numpy() if values.numel() else np.zeros(0)
    colours[:, 3] = np.where(clustered.numpy(), 0.12 + 0.78 * strength, 0.08 + 0.5 * strength)
    start = np.stack([np.full(len(values), x), c_in.y[cols].numpy()], axis=1)
    end = np.stack([np.full(len(values), x + 1), c_out.y[rows].numpy()], axis=1)
    ax.add_collection(LineCollection(np.stack([start, end], axis=1), colors=colours,
                                     linewidths=0.3 + 1.4 * strength, zorder=1,
                                     gid=f"edges {name}"))
    n_clustered, n_inside = int(clustered.sum()), int(inside.sum())
    share = f"\n{100 * n_inside / n_clustered:.0f} % inside" if n_clustered else ""
    ax.text(x + 0.5, 1.035, f"{name}{share}", ha="center", va="bottom", fontsize=7)
    return n_clustered, n_inside


def _draw_column(ax: Axes, x: int, column: NetworkColumn, palette: np.ndarray) -> str:
    """One column of dots; returns its axis label."""
    grouped = column.n_dots < column.n
    ax.scatter(np.full(column.n_dots, x), column.y.numpy(), s=min(30.0, 1200.0 / column.n_dots),
               c=_colours(column.dot_labels, palette), marker="s" if grouped else "o",
               linewidths=0, zorder=3, gid=f"neurons {column.name}")
    label = f"{column.n} inputs" if column.name == "input" else f"{column.n}"
    return f"{label}\nas {column.n_dots} dots" if grouped else label


def _top_words(top: float | int) -> str:
    return f"top {top} edges" if isinstance(top, int) else f"top {100 * top:g} % of edges"


def _draw(ax: Axes, chain: dict[str, Tensor], parts: dict[str, Partition], *, top: float | int,
          max_neurons: int, title: str | None, legend: bool) -> None:
    columns = _columns(chain, parts, max_neurons)
    palette = _palette(columns)
    clustered = inside = 0
    for x, (name, W) in enumerate(chain.items()):
        c, i = _draw_layer(ax, x, name, W, columns[x], columns[x + 1], top, palette)
        clustered, inside = clustered + c, inside + i
    ticks = [_draw_column(ax, x, col, palette) for x, col in enumerate(columns)]
    ax.set_xticks(range(len(columns)), ticks, fontsize=7)
    ax.set(xlim=(-0.25, len(chain) + 0.25), ylim=(-0.04, 1.04 + 0.1), yticks=[])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    share = f": {100 * inside / clustered:.0f} % inside clusters" if clustered else ""
    line = f"{_top_words(top)} per layer{share}"
    ax.set_title(f"{title}\n{line}" if title else line, fontsize=9)
    if legend:
        ax.legend(handles=_legend_handles(palette), loc="upper center", fontsize=7, ncol=3,
                  bbox_to_anchor=(0.5, -0.12), frameon=False)


def _legend_handles(palette: np.ndarray) -> list[Line2D]:
    return [Line2D([], [], color=palette[0], lw=1.5, label="inside a cluster (its colour)"),
            Line2D([], [], color=_BLACK, lw=1.5, label="between clusters"),
            Line2D([], [], color=_GREY, lw=1.5, label="no partition")]


def plot_network(weights: Weights, partitions: Mapping[str, Partition] | None = None, *,
                 layers: Sequence[str] | None = None, ax: Axes | None = None,
                 title: str | None = None, top: float | int = 0.1, max_neurons: int = 128,
                 legend: bool = True) -> Figure:
    """A whole network's weight graph: neurons in cluster order, the strongest edges drawn.

    Args:
        weights: ``{layer name: W (n_out, n_in)}`` of consecutive layers, in order (each
            ``n_in`` equals the ``n_out`` before it), or a model (its Linear / Conv2d / Conv1D
            layers, read with :func:`modlib.layer_matrix`). A Linear on a flattened Conv2d
            output does not continue the conv's columns: that is refused, with the consecutive
            run to draw instead.
        partitions: ``{layer name: Partition}`` for some or all of the drawn layers (e.g.
            ``result.partitions`` of :func:`modlib.reproduce`); None draws index order in grey.
        layers: the layers to draw, in order (default: all).
        ax: axes to draw on (default: a new figure).
        title: a first title line (the second gives the inside share of the drawn edges).
        top: per layer, the share in (0, 1] (a float; 1.0 draws all) or the number (an int) of
            the largest edges between dots to draw.
        max_neurons: a column with more neurons is drawn as about this many dots, each
            standing for neighbouring neurons of one cluster (see the module docstring).
        legend: explain the edge colours under the axes.

    Returns:
        The figure. Dots are one scatter per column (gid ``"neurons <column>"``), edges one
        LineCollection per layer (gid ``"edges <layer>"``), weakest first.

    Raises:
        TypeError, ValueError: as :func:`network_layout`; ``top`` not a fraction in (0, 1] or a
            count >= 1; ``title`` not a str.

    Example:
        >>> from modlib.core.partition import contiguous_partition
        >>> W = {"fc1": torch.randn(8, 12), "fc2": torch.randn(4, 8)}
        >>> parts = {n: contiguous_partition(*w.shape, 2) for n, w in W.items()}
        >>> fig = plot_network(W, parts, top=0.2)
        >>> fig.axes[0].get_title().startswith("top 20 % of edges per layer")
        True

    Introduced in notebook 03.
    """
    chain, parts = _prepare(weights, partitions, layers, "weights")
    top = _options(top, max_neurons, title)
    check_bool(legend, "legend")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 * len(chain) + 2.2, 4.4), layout="constrained")
    else:
        check_instance(ax, "ax", Axes, "matplotlib Axes or None")
    _draw(ax, chain, parts, top=top, max_neurons=max_neurons, title=title, legend=legend)
    return ax.figure


def _run_partitions(partitions: object, names: list[str]) -> dict[str, Any]:
    """One (possibly None) partitions dict per run: shared, or given per run."""
    if isinstance(partitions, Mapping) and partitions and all(
            v is None or (isinstance(v, Mapping) and not isinstance(v, Partition))
            for v in partitions.values()):
        unknown = [key for key in partitions if key not in names]
        if unknown:
            raise ValueError(f"'partitions' given per run names runs that are not in 'runs': "
                             f"{unknown}. Runs: {names}.")
        return {n: partitions.get(n) for n in names}
    return dict.fromkeys(names, partitions)


def _panels(items: list[tuple[str, Any, str]], partitions: object, layers: object, top: object,
            max_neurons: object, suptitle: object, ncols: int, size: tuple[float, float, float]
            ) -> Figure:
    """Panels of :func:`plot_network`, checked before any figure is made; ``size`` gives a
    panel's width per layer, its extra width and its height, in inches."""
    top = _options(top, max_neurons, suptitle, "suptitle")
    per_run = _run_partitions(partitions, [t for t, _, _ in items])
    prepared = [(t, *_prepare(w, per_run[t], layers, name)) for t, w, name in items]
    width = size[0] * max(len(chain) for _, chain, _ in prepared) + size[1]
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, size[2] * nrows + 0.4),
                             layout="constrained", squeeze=False)
    for ax, (t, chain, parts) in zip(axes.flat, prepared, strict=False):
        _draw(ax, chain, parts, top=top, max_neurons=max_neurons, title=t, legend=False)
    for ax in axes.flat[len(items):]:
        ax.set_visible(False)
    palette = plt.get_cmap("tab10")(0)
    fig.legend(handles=_legend_handles(np.array([palette])), loc="outside lower center",
               ncol=3, fontsize=8, frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_networks(runs: Mapping[str, Weights], partitions: Mapping[str, Any] | None = None, *,
                  layers: Sequence[str] | None = None, top: float | int = 0.1,
                  max_neurons: int = 128, suptitle: str | None = None) -> Figure:
    """Side-by-side :func:`plot_network` panels, e.g. baseline | modular | BIMT.

    Args:
        runs: ``{run name: weights}``, each a dict of consecutive layers or a model.
        partitions: one ``{layer name: Partition}`` for every run (e.g. ``result.partitions``),
            or ``{run name: {layer name: Partition} or None}`` when runs have their own.
        layers: the layers to draw in every run (default: all).
        top: per layer, the share or number of the largest edges to draw.
        max_neurons: a column with more neurons is drawn as about this many dots.
        suptitle: a title over all panels.

    Returns:
        The figure: one panel per run, titled by its name and its inside share.

    Raises:
        TypeError, ValueError: as :func:`plot_network` (the message names the run), an empty
            ``runs``, per-run partitions for a run that is not in ``runs``.

    Example:
        >>> net = lambda: {"fc1": torch.randn(8, 12), "fc2": torch.randn(4, 8)}
        >>> fig = plot_networks({"baseline": net(), "modular": net()})
        >>> [ax.get_title().split("\\n")[0] for ax in fig.axes]
        ['baseline', 'modular']

    Introduced in notebook 03.
    """
    check_mapping(runs, "runs", "{run name: weights}")
    for name in runs:
        check_instance(name, "runs key", str, "a run name (str)")
    items = [(t, w, f"runs[{t!r}]") for t, w in runs.items()]
    return _panels(items, partitions, layers, top, max_neurons, suptitle, len(runs),
                   (1.2, 1.4, 3.9))


def _check_snapshots(snapshots: object) -> list[tuple[str, Any, str]]:
    """``snapshots`` as [(panel title, weights, name)]; an int label ``s`` reads ``step s``."""
    what = "a non-empty list of (label, weights) pairs, as snapshot_weights collects them"
    if isinstance(snapshots, (str, Mapping)) or not isinstance(snapshots, Sequence):
        raise TypeError(f"'snapshots' must be {what}. Got {describe(snapshots)}.")
    if not snapshots:
        raise ValueError(f"'snapshots' must be {what}. Got an empty {type(snapshots).__name__}.")
    out = []
    for i, pair in enumerate(snapshots):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"'snapshots[{i}]' must be a (label, weights) pair. "
                            f"Got {describe(pair)}.")
        label, weights = pair
        if isinstance(label, bool) or not isinstance(label, (str, numbers.Integral)):
            raise TypeError(f"'snapshots[{i}]' label must be a str or an int (a step). "
                            f"Got {describe(label)}.")
        title = label if isinstance(label, str) else f"step {label}"
        out.append((title, weights, f"snapshots[{i}] weights"))
    return out


def plot_network_frames(snapshots: Sequence[tuple[str | int, Weights]],
                        partitions: Mapping[str, Partition] | None = None, *,
                        layers: Sequence[str] | None = None, top: float | int = 0.1,
                        max_neurons: int = 128, ncols: int | None = None,
                        suptitle: str | None = None) -> Figure:
    """A strip of small :func:`plot_network` panels: modules forming during training.

    Every panel uses the same ``partitions``, so a neuron keeps its place from frame to frame.

    Args:
        snapshots: ``[(label, weights)]`` in training order: a label (``"epoch 2"``, or an int
            read as ``step n``) and ``{layer name: W}`` from :func:`snapshot_weights`.
        partitions: ``{layer name: Partition}`` (the training partitions), or None.
        layers: the layers to draw (default: all).
        top: per layer, the share or number of the largest edges to draw.
        max_neurons: a column with more neurons is drawn as about this many dots.
        ncols: panels per row (default: all in one row).
        suptitle: a title over all panels.

    Returns:
        The figure: one panel per snapshot, titled by its label and inside share.

    Raises:
        TypeError, ValueError: a snapshot that is not a (str or int, weights) pair, an empty
            list, ``ncols`` < 1, or as :func:`plot_network`.

    Example:
        >>> frames = [(s, {"fc1": torch.randn(6, 8), "fc2": torch.randn(3, 6)}) for s in (0, 10)]
        >>> len(plot_network_frames(frames).axes)
        2

    Introduced in notebook 03.
    """
    items = _check_snapshots(snapshots)
    ncols = min(len(items), check_int(ncols, "ncols", minimum=1, none_ok=True) or len(items))
    return _panels(items, partitions, layers, top, max_neurons, suptitle, ncols,
                   (0.8, 1.2, 3.3))


def network_animation(snapshots: Sequence[tuple[str | int, Weights]],
                      partitions: Mapping[str, Partition] | None = None, *,
                      layers: Sequence[str] | None = None, top: float | int = 0.1,
                      max_neurons: int = 128, interval: int = 500) -> FuncAnimation:
    """The snapshots of :func:`plot_network_frames` as an animation, one frame each.

    The figure is closed (no stray still image in a notebook); show the animation with
    ``IPython.display.HTML(anim.to_jshtml())``, which needs no ffmpeg.

    Args:
        snapshots: ``[(label, weights)]`` in training order, as for :func:`plot_network_frames`.
        partitions: ``{layer name: Partition}``, or None.
        layers: the layers to draw (default: all).
        top: per layer, the share or number of the largest edges to draw.
        max_neurons: a column with more neurons is drawn as about this many dots.
        interval: milliseconds between frames.

    Returns:
        A ``matplotlib.animation.FuncAnimation`` of ``len(snapshots)`` frames.

    Raises:
        TypeError, ValueError: as :func:`plot_network_frames`; ``interval`` < 1.

    Example:
        >>> frames = [(s, {"fc1": torch.randn(6, 8), "fc2": torch.randn(3, 6)}) for s in (0, 10)]
        >>> anim = network_animation(frames)
        >>> "<script" in anim.to_jshtml()
        True

    Introduced in notebook 03.
    """
    from matplotlib.animation import FuncAnimation

    items = _check_snapshots(snapshots)
    top = _options(top, max_neurons, None)
    check_int(interval, "interval", minimum=1)
    prepared = [(t, *_prepare(w, partitions, layers, name)) for t, w, name in items]
    fig, ax = plt.subplots(figsize=(1.5 * len(prepared[0][1]) + 2.2, 4.4), layout="constrained")

    def frame(i: int) -> list[Any]:
        ax.clear()
        t, chain, parts = prepared[i]
        _draw(ax, chain, parts, top=top, max_neurons=max_neurons, title=t, legend=True)
        return []

    frame(0)
    plt.close(fig)
    return FuncAnimation(fig, frame, frames=len(prepared), interval=interval, blit=False)
