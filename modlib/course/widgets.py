"""Interactive explorers (ipywidgets) built on the same functions as the static figures.

Each ``*_explorer()`` draws its default figure first, so a static page (the book) shows a
meaningful picture, and then returns the widget for a live notebook. Introduced in notebook 01;
the language-model figures and explorer (``plot_layer_scores``, ``plot_lm_history``,
``plot_lm_layer``, ``plot_kind_ablation``, ``lm_layer_explorer``) in notebook 07.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..analysis.interp import AblationResult
from ..analysis.lm_interp import LayerScore
from ..core.graph import layer_matrix, weight_layers
from ..core.metrics import clusterability
from ..core.partition import Partition
from ..core.spectral import spectral_cocluster
from ..core.stats import group_seeds
from ..core.toy import planted_matrix
from ..training.train import History
from ..validate import check_instance, check_int, check_mapping, check_module
from .viz import _check_histories, _check_rows, plot_ablation, plot_tradeoff, plot_weights

__all__ = ["plot_planted", "planted_explorer", "tradeoff_explorer", "plot_layer_scores",
           "plot_lm_history", "plot_lm_layer", "plot_kind_ablation", "lm_layer_explorer"]


def plot_planted(noise: float = 0.3, k: int = 4, seed: int = 0, *, n_out: int = 60,
                 n_in: int = 40) -> plt.Figure:
    """Three panels: a shuffled planted matrix, its planted order, and the order that
    spectral co-clustering finds (with clusterability and chance in each title).

    Introduced in notebook 01.
    """
    toy = planted_matrix(n_out, n_in, k, noise=noise, seed=seed)
    found = spectral_cocluster(toy.W, k, seed=seed)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    plot_weights(toy.W, ax=axes[0], title="as the layer stores it")
    plot_weights(toy.W, toy.partition, ax=axes[1])
    axes[1].set_title(f"planted modules\n{axes[1].get_title()}", fontsize=9)
    plot_weights(toy.W, found, ax=axes[2])
    axes[2].set_title(f"found by spectral co-clustering\n{axes[2].get_title()}", fontsize=9)
    fig.suptitle(f"noise {noise:g}, k = {k}, seed {seed}: planted C = "
                 f"{float(clusterability(toy.W, toy.partition)):.3f}")
    return fig


def planted_explorer() -> Any:
    """Sliders for noise, k and seed over :func:`plot_planted`.

    Returns:
        An ``ipywidgets`` interactive widget (display it as a cell's last line).

    Introduced in notebook 01.
    """
    import ipywidgets as w

    return _explorer(plot_planted, noise=w.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.05),
                     k=w.IntSlider(value=4, min=2, max=8), seed=w.IntSlider(value=0, max=9))


def tradeoff_explorer(rows: list[dict[str, Any]], *, metric: str = "accuracy") -> Any:
    """A λ slider over the runs of :func:`modlib.sweep`: the trade-off curve with the chosen
    λ highlighted and its numbers (mean ± 95 % interval over seeds) in the title.

    Args:
        rows: what :func:`modlib.sweep` returned.
        metric: the key on the y axis.

    Returns:
        An ``ipywidgets`` interactive widget.

    Raises:
        ValueError: ``rows`` is empty.

    Introduced in notebook 03.
    """
    _check_rows(rows, metric)
    import ipywidgets as w

    lams = sorted({r["lam"] for r in rows})

    def draw(lam: float) -> plt.Figure:
        fig = plot_tradeoff(rows, metric=metric)
        ax = fig.axes[0]
        for g in (g for g in group_seeds(rows, ["clusterability", metric]) if g["lam"] == lam):
            c, m = g["clusterability"], g[metric]
            ax.scatter([c.mean], [m.mean], s=160, facecolors="none", edgecolors="tab:red",
                       linewidths=2, zorder=5)
            seeds = f" (mean of {g['n_seeds']} seeds)" if g["n_seeds"] > 1 else ""
            ax.set_title(f"λ = {lam:g}: {metric} {m.format()}, clusterability "
                         f"{c.format()}{seeds}", fontsize=9)
        return fig

    return _explorer(draw, lam=w.SelectionSlider(options=lams, value=lams[-1], description="λ"))


def plot_layer_scores(scores: Mapping[str, LayerScore], k: int, *, title: str | None = None
                      ) -> plt.Figure:
    """Clusterability of each matrix of a model (bars) beside its chance level and 1/k.

    Args:
        scores: ``{layer name: LayerScore}`` from :func:`modlib.analysis.lm_interp.layer_scores`.
        k: clusters per matrix (the 1/k line).
        title: the figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: ``scores`` is empty.

    Introduced in notebook 07.
    """
    check_mapping(scores, "scores", "{layer name: LayerScore}", nonempty=False,
                  values=LayerScore, values_what="a modlib LayerScore")
    if not scores:
        raise ValueError("'scores' is empty: nothing to plot.")
    check_int(k, "k", minimum=1)
    if title is not None:
        check_instance(title, "title", str, "a str or None")
    fig, ax = plt.subplots(figsize=(min(0.9 * len(scores) + 2.5, 12), 3.4), layout="constrained")
    x = range(len(scores))
    ax.bar(x, [s.clusterability for s in scores.values()], width=0.6, color="tab:blue",
           label="spectral clusterability")
    for i, s in enumerate(scores.values()):
        ax.plot([i - 0.3, i + 0.3], [s.chance_level] * 2, color="k", lw=1.5,
                label="chance level" if i == 0 else None)
    ax.axhline(1 / k, color="grey", ls="--", lw=1, label="1/k")
    names = [n.removeprefix("transformer.").removeprefix("gpt_neox.") for n in scores]
    ax.set_xticks(list(x), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="clusterability", ylim=(0, 1.02),
           title=title or f"every MLP matrix at k = {k}")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_lm_history(histories: Mapping[str, History], *, k: int | None = None,
                    window: int = 20) -> plt.Figure:
    """Fine-tuning curves step by step: the language-model loss (a moving average) and the
    mean clusterability of the clustered layers.

    A fine-tuning run is often shorter than one epoch, so per-step curves say more than the
    per-epoch ones of :func:`modlib.course.viz.plot_history`.

    Args:
        histories: ``{run name: History}`` from :func:`modlib.fit` (e.g. both runs of
            :func:`modlib.reproduce`).
        k: draws the 1/k line on the clusterability panel when given.
        window: steps in the moving average of the loss (shortened for short runs).

    Returns:
        The figure.

    Raises:
        ValueError: ``histories`` is empty or ``window`` < 1.

    Introduced in notebook 07.
    """
    _check_histories(histories)
    if not histories:
        raise ValueError("'histories' is empty: nothing to plot.")
    check_int(window, "window", minimum=1)
    check_int(k, "k", minimum=1, none_ok=True)
    fig, (ax_loss, ax_c) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for name, h in histories.items():
        loss = torch.tensor(h.column("task_loss", per="steps"), dtype=torch.float64)
        if loss.numel():
            w = min(window, loss.numel())
            smooth = loss.unfold(0, w, 1).mean(1)  # (n_steps - w + 1,) moving average
            ax_loss.plot(range(w - 1, loss.numel()), smooth.tolist(), label=name)
        rows = [r for r in h.steps if "clusterability" in r]
        if rows:
            ax_c.plot([r["step"] for r in rows], [r["clusterability"] for r in rows],
                      label=name)
    if k is not None:
        ax_c.axhline(1 / k, color="grey", ls="--", lw=1, label="1/k")
    ax_loss.set(xlabel="step", ylabel="next-token loss (nats)",
                title=f"training loss, moving average of {window} steps")
    ax_c.set(xlabel="step", ylabel="mean clusterability", ylim=(0, 1.02),
             title="clusterability of the clustered layers")
    for ax in (ax_loss, ax_c):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def plot_lm_layer(models: Mapping[str, nn.Module], partitions: Mapping[str, Partition],
                  layer: str) -> plt.Figure:
    """One layer of several models, each in the cluster order of the same partition.

    Args:
        models: ``{run name: model}``, e.g. pretrained, fine-tuned and modular.
        partitions: ``{layer name: Partition}``, e.g. the fine-tuning partitions.
        layer: the layer to show; its clusterability and chance level are in each title.

    Returns:
        The figure.

    Raises:
        ValueError: ``models`` is empty, or ``layer`` is not in ``partitions`` or a model.

    Introduced in notebook 07.
    """
    _check_models(models, partitions)
    if not models:
        raise ValueError("'models' is empty: nothing to plot.")
    check_instance(layer, "layer", str, "a layer name (str)")
    if layer not in partitions:
        raise ValueError(f"'layer' must be one of {list(partitions)}. Got {layer!r}.")
    fig, axes = plt.subplots(1, len(models), figsize=(3.3 * len(models), 3.5),
                             layout="constrained", squeeze=False)
    for ax, (run, model) in zip(axes[0], models.items(), strict=True):
        modules = weight_layers(model)
        if layer not in modules:
            raise ValueError(f"'layer' {layer!r} is not a weight layer of model {run!r}.")
        plot_weights(layer_matrix(modules[layer]).detach().float().cpu(),
                     partitions[layer].to("cpu"), ax=ax)
        ax.set_title(f"{run}\n{ax.get_title()}", fontsize=9)
    fig.suptitle(f"{layer}, rows and columns in cluster order", fontsize=10)
    return fig


def _check_models(models: object, partitions: object) -> None:
    """``models`` a dict {run name: nn.Module}, ``partitions`` a dict {layer name: Partition}."""
    check_mapping(models, "models", "{run name: model}", nonempty=False)
    assert isinstance(models, Mapping)
    for run, model in models.items():
        check_module(model, f"models[{run!r}]")
    check_mapping(partitions, "partitions", "{layer name: Partition}", nonempty=False,
                  values=Partition, values_what="a modlib Partition")


def plot_kind_ablation(results: Mapping[str, AblationResult]) -> plt.Figure:
    """Heatmaps of the loss increase on each kind of token when each cluster is zeroed.

    Args:
        results: ``{model name: AblationResult}`` from
            :func:`modlib.analysis.lm_interp.ablate_by_kind`.

    Returns:
        The figure: one panel per model, a shared colour scale, the number of tokens of each
        kind under its name (few tokens: a noisy column).

    Raises:
        ValueError: ``results`` is empty.

    Introduced in notebook 07.
    """
    check_mapping(results, "results", "{model name: AblationResult}", nonempty=False,
                  values=AblationResult, values_what="a modlib AblationResult")
    if not results:
        raise ValueError("'results' is empty: nothing to plot.")
    first = next(iter(results.values()))
    labels = [f"{kind}\n({int(n):,})" for kind, n in zip(first.labels, first.counts, strict=True)]
    fig = plot_ablation({name: r.drop.nan_to_num(0.0).float() for name, r in results.items()},
                        classes=labels)
    for ax, (name, r) in zip(fig.axes, results.items(), strict=False):
        controls = r.controls or [r.control]
        spread = (f"control {controls[0]:.2f}" if len(controls) == 1 else
                  f"controls {min(controls):.2f}–{max(controls):.2f}")
        ax.set(xlabel="kind of the next token (how many)",
               title=f"{name}: loss increase (nats)\nspecialization {r.specialization:.2f} "
                     f"({spread})")
    return fig


def lm_layer_explorer(models: Mapping[str, nn.Module], partitions: Mapping[str, Partition]
                      ) -> Any:
    """A slider over the clustered layers: :func:`plot_lm_layer` for the chosen one.

    Args:
        models: ``{run name: model}`` (as :func:`plot_lm_layer`).
        partitions: ``{layer name: Partition}``; the slider runs over its names.

    Returns:
        An ``ipywidgets`` interactive widget; building it draws the first layer.

    Raises:
        ValueError: ``partitions`` or ``models`` is empty.

    Introduced in notebook 07.
    """
    check_mapping(partitions, "partitions", "{layer name: Partition}", nonempty=False)
    check_mapping(models, "models", "{run name: model}", nonempty=False)
    if not partitions:
        raise ValueError("'partitions' is empty: nothing to explore.")
    if not models:
        raise ValueError("'models' is empty: nothing to explore.")
    _check_models(models, partitions)
    import ipywidgets as w

    names = list(partitions)

    def draw(layer: str) -> plt.Figure:
        return plot_lm_layer(models, partitions, layer)

    return _explorer(draw, layer=w.SelectionSlider(options=names, value=names[0],
                                                   description="layer"))


def _explorer(draw: Callable[..., plt.Figure], **controls: Any) -> Any:
    """An ``ipywidgets.interactive`` over ``draw`` that also carries a PNG of its first view.

    A front end that draws widgets shows the sliders; one that cannot (a static page, a viewer
    without the widget scripts, Colab before its widget manager is on) shows the figure of the
    controls' initial values instead of nothing. Works with ipywidgets 7.7 (Colab's) and 8.
    """
    first = draw(**{name: control.value for name, control in controls.items()})
    buffer = io.BytesIO()
    first.savefig(buffer, format="png", dpi=72)
    plt.close(first)

    def show(**kwargs: Any) -> None:
        draw(**kwargs)
        plt.show()

    widget = _explorer_class()(show, **controls)
    widget.static_png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return widget


@functools.cache
def _explorer_class() -> type:
    import ipywidgets as w

    class Explorer(w.interactive):
        """``interactive`` whose display also offers ``image/png``: its first view."""

        def _ipython_display_(self, **kwargs: Any) -> None:  # 7.x and 8.x both honour it
            from IPython import display as ipython_display

            data = {"text/plain": "An interactive figure: run the notebook to move its sliders.",
                    "image/png": self.static_png}
            if self._view_name is not None:
                data["application/vnd.jupyter.widget-view+json"] = {
                    "version_major": 2, "version_minor": 0, "model_id": self._model_id}
            ipython_display.display(data, raw=True)
            handle = getattr(self, "_handle_displayed", None)  # ipywidgets 7 only
            if handle is not None and self._view_name is not None:
                handle(**kwargs)

    return Explorer
