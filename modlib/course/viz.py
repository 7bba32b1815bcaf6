"""Figures of the course, all matplotlib; the widgets in notebooks build on these.

Every function draws on a given ``ax`` (or a new figure) and returns the figure, so notebooks
can compose them and the command line can save them. Introduced in notebooks 01, 03, 04 and 06.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from ..core.metrics import chance_level, clusterability
from ..core.null import ShuffleTest
from ..core.partition import Partition
from ..core.stats import Interval, group_seeds
from ..training.train import History
from ..validate import (
    check_bool,
    check_instance,
    check_int,
    check_mapping,
    check_tensor,
    describe,
)

__all__ = ["plot_weights", "plot_weight_grid", "plot_history", "plot_bipartite", "plot_k_curve",
           "plot_tradeoff", "plot_null", "plot_ablation", "plot_class_bars", "plot_overlaps",
           "plot_grokking", "plot_frequencies", "plot_runs", "glue"]


def _check_weights(W: object, partition: object) -> Tensor:
    """``W`` as a finite, non-empty 2-D tensor; ``partition`` a Partition or None."""
    W = check_tensor(W, "W", ndim=2, nonempty=True)
    if partition is not None:
        check_instance(partition, "partition", Partition, "a modlib Partition or None")
    bad = int((~torch.isfinite(W.detach())).sum()) if W.dtype.is_floating_point else 0
    if bad:
        raise ValueError(f"'W' of shape {tuple(W.shape)} has {bad} NaN/Inf entries.")
    return W


def _check_histories(histories: object) -> Mapping[str, History]:
    """``histories`` as a dict {run name: History} (possibly empty)."""
    return check_mapping(histories, "histories", "{run name: History}", nonempty=False,
                         values=History, values_what="a modlib History")


def _check_classes(classes: object, n: int) -> None:
    """``classes``: None, or a sequence of ``n`` names."""
    if classes is None:
        return
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"'classes' must be a list of class names or None. "
                        f"Got {describe(classes)}.")
    if len(classes) != n:
        raise ValueError(f"'classes' must name each of the {n} classes. "
                         f"Got {len(classes)} names.")


def _new_ax(ax: Axes | None, size: tuple[float, float] = (4, 4)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def plot_weights(W: Tensor, partition: Partition | None = None, *, ax: Axes | None = None,
                 title: str | None = None, colorbar: bool = True) -> Figure:
    """|W| as an image, rows and columns in cluster order, cluster blocks outlined.

    Args:
        W: (n_out, n_in) weights.
        partition: clusters to order by; None shows W as it is.
        ax: axes to draw on (default: a new figure).
        title: the title; by default the clusterability and its chance level.
        colorbar: draw a colorbar of |w| beside the image (the scale ends at the 99th
            percentile of |w|, so that a few large weights do not hide the rest).

    Returns:
        The figure.

    Example:
        >>> from modlib.core.partition import contiguous_partition
        >>> W = torch.randn(12, 8)
        >>> fig = plot_weights(W, contiguous_partition(12, 8, 2))

    Introduced in notebook 01.
    """
    _check_weights(W, partition)
    if title is not None:
        check_instance(title, "title", str, "a str or None")
    check_instance(colorbar, "colorbar", bool, "True or False")
    fig, ax = _new_ax(ax)
    W = W.detach().float().cpu()
    A = (partition.to("cpu").permute(W) if partition is not None else W).abs()
    vmax = float(torch.quantile(A.flatten()[:1_000_000], 0.99)) or float(A.max()) or 1.0
    im = ax.imshow(A.numpy(), cmap="Greys", vmin=0, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    if colorbar:
        bar = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
        bar.set_label("|w|", fontsize=9)
        bar.ax.tick_params(labelsize=8)
    if partition is not None:
        rows, cols = (s.cpu().tolist() for s in partition.sizes())
        r0 = c0 = 0
        for nr, nc in zip(rows, cols, strict=True):
            if nr and nc:
                ax.add_patch(matplotlib.patches.Rectangle(
                    (c0 - 0.5, r0 - 0.5), nc, nr, fill=False, edgecolor="tab:red", lw=1.2))
            r0, c0 = r0 + nr, c0 + nc
        if title is None:
            title = (f"C = {float(clusterability(W, partition)):.3f} "
                     f"(chance {chance_level(partition):.3f})")
    ax.set(title=title or "", xlabel="input neuron", ylabel="output neuron")
    ax.title.set_fontsize(10)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_weight_grid(weights: Mapping[str, Tensor], partitions: Mapping[str, Partition],
                     *, suptitle: str | None = None) -> Figure:
    """One :func:`plot_weights` panel per layer, side by side.

    Args:
        weights: ``{layer name: W}``.
        partitions: ``{layer name: Partition}`` with the same names.
        suptitle: a title over all panels.

    Returns:
        The figure.
    """
    check_mapping(weights, "weights", "{layer name: W}", nonempty=False)
    check_mapping(partitions, "partitions", "{layer name: Partition}", nonempty=False)
    n = len(weights)
    if n == 0:
        raise ValueError("'weights' is empty: nothing to plot.")
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), layout="constrained", squeeze=False)
    for ax, (name, W) in zip(axes[0], weights.items(), strict=True):
        plot_weights(W, partitions.get(name), ax=ax)
        ax.set_title(f"{name}\n{ax.get_title()}", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_history(histories: Mapping[str, History], *, metric: str = "accuracy",
                 k: int | None = None, axes: Sequence[Axes] | None = None) -> Figure:
    """Training curves: ``metric`` per epoch, and mean clusterability per step.

    Args:
        histories: ``{run name: History}``, e.g. ``{"baseline": h0, "modular": h1}``.
        metric: the per-epoch key to plot on the left (``accuracy``, ``perplexity`` …).
        k: draws the 1/k line on the clusterability panel when given.
        axes: two axes to draw on (default: a new figure).

    Returns:
        The figure.

    Introduced in notebook 03.
    """
    _check_histories(histories)
    check_instance(metric, "metric", str, "a str (a key of the epoch rows)")
    check_int(k, "k", minimum=1, none_ok=True)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    else:
        fig = axes[0].figure
    for name, h in histories.items():
        values = h.column(metric)
        if values:
            axes[0].plot(range(1, len(values) + 1), values, marker="o", label=name)
        steps = [r for r in h.steps if "clusterability" in r]
        if steps:
            axes[1].plot([r["step"] for r in steps], [r["clusterability"] for r in steps],
                         label=name)
    if k is not None:
        axes[1].axhline(1 / k, color="grey", ls="--", lw=1, label="1/k")
    axes[0].set(xlabel="epoch", ylabel=metric, title=metric)
    axes[1].set(xlabel="step", ylabel="mean clusterability", ylim=(0, 1.02),
                title="clusterability of the clustered layers")
    for ax in axes[:2]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def plot_bipartite(W: Tensor, partition: Partition | None = None, *, ax: Axes | None = None
                   ) -> Figure:
    """A small layer drawn as its bipartite graph: inputs left, outputs right, edge opacity
    ∝ |W_ij|, neurons coloured by cluster.

    Args:
        W: (n_out, n_in) weights; meant for small layers (up to a few dozen neurons a side).
        partition: colours neurons by cluster and sorts them by cluster.
        ax: axes to draw on (default: a new figure).

    Returns:
        The figure.

    Introduced in notebook 01.
    """
    _check_weights(W, partition)
    fig, ax = _new_ax(ax, (4, 4))
    W = W.detach().float().cpu()
    if partition is not None:
        W = partition.to("cpu").permute(W)
        rows, cols = (torch.sort(x).values for x in (partition.rows.cpu(), partition.cols.cpu()))
    else:
        rows, cols = torch.zeros(W.shape[0], dtype=torch.long), torch.zeros(W.shape[1],
                                                                              dtype=torch.long)
    n_out, n_in = W.shape
    y_out = torch.linspace(1, 0, n_out) if n_out > 1 else torch.tensor([0.5])
    y_in = torch.linspace(1, 0, n_in) if n_in > 1 else torch.tensor([0.5])
    A = W.abs() / W.abs().max().clamp_min(1e-12)
    for i in range(n_out):
        for j in range(n_in):
            ax.plot([0, 1], [float(y_in[j]), float(y_out[i])], color="k",
                    alpha=float(A[i, j]) ** 1.5 * 0.8, lw=0.8)
    colours = plt.get_cmap("tab10")
    ax.scatter([0] * n_in, y_in, c=[colours(int(c) % 10) for c in cols], s=60, zorder=3)
    ax.scatter([1] * n_out, y_out, c=[colours(int(c) % 10) for c in rows], s=60, zorder=3)
    ax.set(xlim=(-0.2, 1.2), xticks=[0, 1], xticklabels=["input neurons", "output neurons"],
           yticks=[])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return fig


def plot_tradeoff(rows: Sequence[Mapping[str, float]], *, metric: str = "accuracy",
                  ax: Axes | None = None) -> Figure:
    """Accuracy (or ``metric``) against clusterability, one point per λ, labelled by λ.

    With several seeds per (k, λ) (:func:`modlib.sweep` with ``seeds`` > 1) each point is the
    mean over seeds, with its 95 % interval as error bars on both axes.

    Args:
        rows: what :func:`modlib.course.experiments.sweep` returns.
        metric: the key on the y axis.
        ax: axes to draw on.

    Returns:
        The figure.

    Introduced in notebook 03.
    """
    _check_rows(rows, metric)
    fig, ax = _new_ax(ax, (5, 3.6))
    groups = group_seeds(rows, ["clusterability", metric])
    n_seeds = max(g["n_seeds"] for g in groups)
    for k in sorted({g["k"] for g in groups}):
        sub = sorted((g for g in groups if g["k"] == k), key=lambda g: g["lam"])
        x, y = [g["clusterability"] for g in sub], [g[metric] for g in sub]
        ax.errorbar([iv.mean for iv in x], [iv.mean for iv in y], xerr=_bars(x), yerr=_bars(y),
                    marker="o", capsize=3, label=f"k = {k}")
        for g, xi, yi in zip(sub, x, y, strict=True):
            ax.annotate(f"λ={g['lam']:g}", (xi.mean, yi.mean), fontsize=8, xytext=(3, 3),
                        textcoords="offset points")
        ax.axvline(1 / k, color="grey", ls=":", lw=1)
    seeds = f"mean of {n_seeds} seeds, bars: 95 % interval" if n_seeds > 1 else "one seed"
    ax.set(xlabel="clusterability (dotted: 1/k)", ylabel=metric,
           title=f"{metric} against clusterability ({seeds})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return fig


def plot_k_curve(rows: Sequence[Mapping[str, float]], *, metric: str = "accuracy",
                 ax: Axes | None = None) -> Figure:
    """``metric`` and clusterability against k (log scale), with 95 % intervals over seeds.

    Args:
        rows: what :func:`modlib.course.experiments.sweep` returns for several k (one λ).
        metric: the key drawn beside clusterability.
        ax: axes to draw on.

    Returns:
        The figure; the dashed line is 1/k, the chance level of k equal blocks.

    Raises:
        TypeError, ValueError: as :func:`plot_tradeoff`; rows with more than one λ.

    Introduced in notebook 03.
    """
    _check_rows(rows, metric)
    if len({r["lam"] for r in rows}) > 1:
        raise ValueError(f"'rows' must hold one λ, as modlib.sweep(..., lams=[lam]) returns. "
                         f"Got λ = {sorted({r['lam'] for r in rows})}.")
    fig, ax = _new_ax(ax, (5, 3.4))
    groups = sorted(group_seeds(rows, ["clusterability", metric]), key=lambda g: g["k"])
    ks = [g["k"] for g in groups]
    for key, marker in ((metric, "o"), ("clusterability", "s")):
        ivs = [g[key] for g in groups]
        ax.errorbar(ks, [iv.mean for iv in ivs], yerr=_bars(ivs), marker=marker, capsize=3,
                    label=f"test {key}" if key == metric else key)
    ax.plot(ks, [1 / k for k in ks], ls="--", color="grey", label="1/k")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    n_seeds = max(g["n_seeds"] for g in groups)
    seeds = f"mean of {n_seeds} seeds, bars: 95 % interval" if n_seeds > 1 else "one seed"
    ax.set(xlabel="k", ylim=(0, 1.02),
           title=f"λ = {rows[0]['lam']:g}, for each k ({seeds})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return fig


def _bars(intervals: Sequence[Interval]) -> list[list[float]] | None:
    """Error bars (below, above) of intervals for ``errorbar``; None when none has an interval."""
    if all(iv.low is None for iv in intervals):
        return None
    return [[0.0 if iv.low is None else iv.mean - iv.low for iv in intervals],
            [0.0 if iv.high is None else iv.high - iv.mean for iv in intervals]]


def plot_runs(numbers: Mapping[str, Any], runs: Sequence[str], panels: Mapping[str, str], *,
              null: Mapping[str, float] | None = None, suptitle: str | None = None) -> Figure:
    """Runs side by side on a few headline numbers: each a mean with its 95 % interval.

    Args:
        numbers: the summary's numbers (``result.results["summary"]["numbers"]``): each an
            :class:`modlib.core.stats.Interval` or its dict.
        runs: the runs to show, in order (``["baseline", "modular", "bimt"]``).
        panels: ``{panel title: key pattern}``, the pattern naming a number with ``{run}``
            (``{"accuracy": "{run}_accuracy"}``). A run without that number is left out of
            its panel.
        null: ``{panel title: value}`` drawn as a dotted line (e.g. 1 for a ratio).
        suptitle: a title over all panels.

    Returns:
        The figure: one panel per entry of ``panels``, one point per run.

    Raises:
        TypeError, ValueError: ``numbers`` or ``panels`` not a non-empty dict, ``runs`` not a
            non-empty list of str, a pattern without ``{run}``, or a panel that no run has a
            number for.

    Example:
        >>> iv = lambda m: {"mean": m, "low": m - 0.01, "high": m + 0.01, "n": 3}
        >>> fig = plot_runs({"a_acc": iv(0.9), "b_acc": iv(0.8)}, ["a", "b"],
        ...                 {"accuracy": "{run}_acc"})
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['a', 'b']

    Introduced in notebook 08.
    """
    check_mapping(numbers, "numbers", "{name: interval}, the summary's numbers")
    check_mapping(panels, "panels", "{panel title: key pattern with {run}}")
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs \
            or not all(isinstance(r, str) for r in runs):
        raise TypeError(f"'runs' must be a non-empty list of run names (str). "
                        f"Got {describe(runs)}.")
    runs = list(runs)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 0.4, 2.9),
                             layout="constrained", squeeze=False)
    for ax, (title, pattern) in zip(axes[0], panels.items(), strict=True):
        check_instance(pattern, f"panels[{title!r}]", str, "a key pattern with {run}")
        if "{run}" not in pattern:
            raise ValueError(f"'panels[{title!r}]' must name a number with {{run}}, e.g. "
                             f"'{{run}}_accuracy'. Got {pattern!r}.")
        shown = [(run, numbers[pattern.format(run=run)]) for run in runs
                 if pattern.format(run=run) in numbers]
        if not shown:
            raise ValueError(f"No run has the number {pattern!r} of panel {title!r}: the "
                             f"numbers are {sorted(numbers)[:6]}...")
        ivs = [iv if isinstance(iv, Interval) else Interval.from_dict(iv) for _, iv in shown]
        x = list(range(len(shown)))
        ax.errorbar(x, [iv.mean for iv in ivs], yerr=_bars(ivs), fmt="o", capsize=4,
                    color="black")
        if null is not None and title in null:
            ax.axhline(null[title], color="grey", ls=":", lw=1)
        ax.set_xticks(x, [run for run, _ in shown])
        ax.set_xlim(-0.5, len(shown) - 0.5)
        ax.set_title(title, fontsize=9)
    n = max((iv.n for iv in ivs if iv.n), default=1)
    fig.suptitle((suptitle + "\n" if suptitle else "")
                 + f"mean of {n} seeds, bars: 95 % interval", fontsize=9)
    return fig


def _check_rows(rows: object, metric: object) -> None:
    """``rows`` a non-empty list of dicts with k, lam, clusterability and ``metric``."""
    check_instance(metric, "metric", str, "a str (a key of the rows)")
    if isinstance(rows, (str, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"'rows' must be a list of dicts, as modlib.sweep returns. "
                        f"Got {type(rows).__name__}.")
    if not rows:
        raise ValueError("'rows' is empty: run modlib.sweep first.")
    keys = ("k", "lam", "clusterability", metric)
    for i, r in enumerate(rows):
        check_instance(r, f"rows[{i}]", Mapping, "a dict, as modlib.sweep returns")
        missing = [key for key in keys if key not in r]
        if missing:
            raise ValueError(f"'rows[{i}]' must hold the keys {list(keys)}. "
                             f"Missing: {missing}.")


def plot_null(tests: Mapping[str, Any], *, scaled: Mapping[str, Any] | None = None,
              ax: Axes | None = None) -> Figure:
    """Per layer: clusterability of the spectral partition, its chance level, and the range of
    the shuffled-weights null, with the p-value above each layer; optionally the range of the
    scale-matched null beside it.

    Args:
        tests: ``{layer name: ShuffleTest}`` from :func:`modlib.shuffle_test`.
        scaled: ``{layer name: ShuffleTest}`` from ``shuffle_test(..., null="scales")`` for the
            same layers, drawn in green with its p-value under the first.
        ax: axes to draw on.

    Returns:
        The figure.

    Raises:
        ValueError: ``scaled`` does not name the same layers as ``tests``.

    Introduced in notebook 02.
    """
    check_mapping(tests, "tests", "{layer name: ShuffleTest}", values=ShuffleTest,
                  values_what="a modlib ShuffleTest")
    if scaled is not None:
        check_mapping(scaled, "scaled", "{layer name: ShuffleTest}", values=ShuffleTest,
                      values_what="a modlib ShuffleTest")
        if list(scaled) != list(tests):
            raise ValueError(f"'scaled' must name the layers of 'tests' in the same order "
                             f"{list(tests)}. Got {list(scaled)}.")
    fig, ax = _new_ax(ax, (1.6 * len(tests) + 2, 3.6))
    x = range(len(tests))
    obs = [t.observed for t in tests.values()]
    ax.bar(x, obs, width=0.6, color="tab:blue", label="spectral partition")
    dx = 0.0 if scaled is None else -0.08
    for i, (name, t) in enumerate(tests.items()):
        ax.plot([i - 0.3, i + 0.3], [t.chance_level] * 2, color="k", ls="--", lw=1.2,
                label="chance level" if i == 0 else None)
        ax.plot([i + dx, i + dx], [min(t.null), max(t.null)], color="tab:orange", lw=5,
                alpha=0.8, label="shuffled weights (range)" if i == 0 else None)
        top, text = max(t.observed, max(t.null)), f"p = {t.p_value:.2g}"
        if scaled is not None:
            s = scaled[name]
            ax.plot([i - dx, i - dx], [min(s.null), max(s.null)], color="tab:green", lw=5,
                    alpha=0.8, label="scale-matched (range)" if i == 0 else None)
            top, text = max(top, max(s.null)), (f"shuffled p = {t.p_value:.2g}\n"
                                                 f"scaled p = {s.p_value:.2g}")
        ax.annotate(text, (i, top + 0.02), ha="center", fontsize=8)
    ax.set_xticks(list(x), list(tests), fontsize=8)
    ax.set(ylabel="clusterability", ylim=(0, 1.05), title="trained layers against chance")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_ablation(drops: Mapping[str, Tensor], *, classes: Sequence[str] | None = None,
                  ylabel: str = "cluster removed") -> Figure:
    """Heatmaps of class-wise accuracy drops when each cluster is ablated, one per model.

    Args:
        drops: ``{model name: (k, n_classes) accuracy drops}`` from
            :func:`modlib.analysis.interp.ablate_clusters`.
        classes: class names for the x axis (default 0..n_classes-1).
        ylabel: what a row is: ``"cluster removed"`` (OFF ablation) or ``"cluster kept"`` (ON).

    Returns:
        The figure.

    Introduced in notebook 04.
    """
    check_mapping(drops, "drops", "{model name: (k, n_classes) drops}", nonempty=False)
    if not drops:
        raise ValueError("'drops' is empty: nothing to plot.")
    for name, d in drops.items():
        check_tensor(d, f"drops[{name!r}]", ndim=2, nonempty=True)
        _check_classes(classes, d.shape[1])
    fig, axes = plt.subplots(1, len(drops), figsize=(4.2 * len(drops), 2.8),
                             layout="constrained", squeeze=False)
    vmax = max(float(d.abs().max()) for d in drops.values()) or 1.0
    for ax, (name, d) in zip(axes[0], drops.items(), strict=True):
        im = ax.imshow(d.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        n_classes = d.shape[1]
        ax.set_xticks(range(n_classes), classes or [str(c) for c in range(n_classes)],
                      fontsize=8)
        ax.set_yticks(range(d.shape[0]))
        ax.set(xlabel="class", ylabel=ylabel, title=f"{name}: accuracy drop")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy drop")
    return fig


def plot_class_bars(values: Mapping[str, Sequence[float] | Tensor], *, ylabel: str,
                    classes: Sequence[str] | None = None, ax: Axes | None = None,
                    title: str | None = None) -> Figure:
    """One group of bars per class, one bar per model: e.g. each class's circuit size.

    Args:
        values: ``{model name: one value per class}``, all of the same length.
        ylabel: what the values are.
        classes: class names for the x axis (default 0..n_classes-1).
        ax: axes to draw on (default: a new figure).
        title: the title (default ``ylabel``).

    Returns:
        The figure.

    Raises:
        ValueError: empty ``values``, or models with different numbers of classes.

    Example:
        >>> fig = plot_class_bars({"a": [0.1, 0.2], "b": [0.3, 0.1]}, ylabel="circuit size")

    Introduced in notebook 04.
    """
    check_mapping(values, "values", "{model name: one value per class}", nonempty=False)
    for name, v in values.items():
        if isinstance(v, (str, Mapping)) or not hasattr(v, "__len__"):
            raise TypeError(f"'values[{name!r}]' must be a list or tensor of one value per "
                            f"class. Got {type(v).__name__}.")
    check_instance(ylabel, "ylabel", str, "a str")
    lengths = {name: len(v) for name, v in values.items()}
    if not lengths or len(set(lengths.values())) != 1 or not min(lengths.values()):
        raise ValueError(f"'values' must hold at least one model, each with one value per "
                         f"class, all the same length. Got lengths {lengths}.")
    n = next(iter(lengths.values()))
    _check_classes(classes, n)
    fig, ax = _new_ax(ax, (max(5.0, 0.55 * n + 1.5), 3.2))
    width = 0.8 / len(values)
    for i, (name, v) in enumerate(values.items()):
        heights = [float(x) for x in v]
        ax.bar([c + (i - (len(values) - 1) / 2) * width for c in range(n)], heights,
               width=width, label=name)
    ax.set_xticks(range(n), classes or [str(c) for c in range(n)], fontsize=8)
    ax.set(xlabel="class", ylabel=ylabel, title=title or ylabel)
    ax.legend(fontsize=8)
    return fig


def plot_overlaps(overlaps: Mapping[str, Tensor], *, classes: Sequence[str] | None = None
                  ) -> Figure:
    """Heatmaps of the Jaccard overlap between classes' circuits, one panel per model.

    Args:
        overlaps: ``{model name: (n, n) overlaps in [0, 1]}``, e.g. from
            :func:`modlib.analysis.circuits.jaccard_matrix`.
        classes: class names for both axes (default 0..n-1).

    Returns:
        The figure.

    Raises:
        ValueError: empty ``overlaps``, or a matrix that is not square.

    Example:
        >>> fig = plot_overlaps({"model": torch.eye(3)})

    Introduced in notebook 04.
    """
    check_mapping(overlaps, "overlaps", "{model name: (n, n) overlaps}", nonempty=False)
    if not overlaps:
        raise ValueError("'overlaps' is empty: nothing to plot.")
    for name, J in overlaps.items():
        check_tensor(J, f"overlaps[{name!r}]")
    shapes = {name: tuple(J.shape) for name, J in overlaps.items()}
    if any(len(s) != 2 or s[0] != s[1] for s in shapes.values()):
        raise ValueError(f"'overlaps' must hold square (n, n) matrices. Got shapes {shapes}.")
    for J in overlaps.values():
        _check_classes(classes, J.shape[0])
    fig, axes = plt.subplots(1, len(overlaps), figsize=(3.6 * len(overlaps), 3.2),
                             layout="constrained", squeeze=False)
    for ax, (name, J) in zip(axes[0], overlaps.items(), strict=True):
        im = ax.imshow(J.detach().float().cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        labels = classes or [str(c) for c in range(J.shape[0])]
        ax.set_xticks(range(J.shape[0]), labels, fontsize=8)
        ax.set_yticks(range(J.shape[0]), labels, fontsize=8)
        ax.set(xlabel="class", ylabel="class", title=f"{name}: circuit overlap")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="Jaccard")
    return fig


def glue(name: str, value: Any, *, display: bool = False) -> None:
    """Make ``value`` quotable in the book's prose as ``{glue:text}`name```.

    Uses myst-nb's ``glue`` when it is installed (the book build) and does nothing otherwise
    (e.g. in Colab), so notebooks run everywhere.
    """
    check_instance(name, "name", str, "a str")
    check_bool(display, "display")
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)


def plot_grokking(histories: Mapping[str, History], *, axes: Sequence[Axes] | None = None
                  ) -> Figure:
    """Grokking curves: train and test loss (log scale), and test accuracy, per epoch.

    Args:
        histories: ``{run name: History}`` of full-batch runs evaluated on the test pairs every
            epoch (epoch rows with ``train_loss``, ``eval_loss`` and ``accuracy``), as
            ``modlib.reproduce("modadd")`` returns them.
        axes: two axes to draw on (default: a new figure).

    Returns:
        The figure: losses on the left (train dashed, test solid), test accuracy on the right.

    Raises:
        ValueError: ``histories`` is empty or a history has no epoch with those three keys.

    Example:
        >>> h = History(epochs=[{"train_loss": 1.0, "eval_loss": 2.0, "accuracy": 0.1}])
        >>> len(plot_grokking({"run": h}).axes)
        2
    """
    _check_histories(histories)
    if not histories:
        raise ValueError("'histories' is empty: pass {run name: History}.")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    fig = axes[0].figure
    for i, (name, h) in enumerate(histories.items()):
        rows = [r for r in h.epochs if {"train_loss", "eval_loss", "accuracy"} <= set(r)]
        if not rows:
            raise ValueError(f"'histories' entry {name!r} has no epoch with train_loss, "
                             f"eval_loss and accuracy: evaluate on the test pairs every epoch.")
        epochs, color = range(1, len(rows) + 1), f"C{i}"
        axes[0].plot(epochs, [r["train_loss"] for r in rows], color=color, ls="--",
                     label=f"{name}: train")
        axes[0].plot(epochs, [r["eval_loss"] for r in rows], color=color, label=f"{name}: test")
        axes[1].plot(epochs, [r["accuracy"] for r in rows], color=color, label=name)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02),
                title="accuracy on the held-out pairs")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    return fig


def plot_frequencies(spectra: Tensor, labels: Sequence[str], *, ax: Axes | None = None,
                     title: str = "", cbar_label: str = "share") -> Figure:
    """Heatmap of rows × frequencies 1..(p − 1) / 2, e.g. clusters by
    :func:`modlib.analysis.fourier.cluster_spectra`.

    Args:
        spectra: (n_rows, (p - 1) // 2 + 1) values per frequency; column 0 (the constant) is
            not drawn.
        labels: one name per row.
        ax: the axes to draw on (default: a new figure).
        title: the axes' title.
        cbar_label: the colour bar's label.

    Returns:
        The figure.

    Raises:
        ValueError: ``spectra`` not 2-D with at least 2 columns, or ``labels`` of another length.

    Example:
        >>> fig = plot_frequencies(torch.rand(4, 6), ["a", "b", "c", "d"])
        >>> len(fig.axes)  # the heatmap and its colour bar
        2
    """
    check_tensor(spectra, "spectra")
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"'labels' must be a list of row names. Got {type(labels).__name__}.")
    if spectra.ndim != 2 or spectra.shape[1] < 2:
        raise ValueError(f"'spectra' must be a tensor of shape (n_rows, n_freq) with n_freq >= 2. "
                         f"Got {getattr(spectra, 'shape', type(spectra).__name__)}.")
    if len(labels) != spectra.shape[0]:
        raise ValueError(f"'labels' must name each of the {spectra.shape[0]} rows. "
                         f"Got {len(labels)} labels.")
    if ax is None:
        n_freq = spectra.shape[1] - 1
        _, ax = plt.subplots(figsize=(min(12.0, 2 + 0.28 * n_freq), 0.9 + 0.35 * len(labels)),
                             layout="constrained")
    fig = ax.figure
    values = spectra[:, 1:].detach().float().cpu().numpy()
    im = ax.imshow(values, cmap="viridis", aspect="auto", interpolation="nearest",
                   extent=(0.5, values.shape[1] + 0.5, len(labels) - 0.5, -0.5))
    ax.set_yticks(range(len(labels)), labels)
    step = -(-values.shape[1] // 15)  # at most 15 labelled frequencies
    ax.set_xticks(range(1, values.shape[1] + 1, step))
    ax.set(xlabel="frequency f", title=title)
    fig.colorbar(im, ax=ax, label=cbar_label, shrink=0.9)
    return fig
