import matplotlib
import pytest
import torch

import modlib
from modlib import History
from modlib.course.viz import (
    plot_ablation,
    plot_class_bars,
    plot_frequencies,
    plot_grokking,
    plot_history,
    plot_overlaps,
    plot_weight_grid,
    plot_weights,
)

matplotlib.use("Agg")


def test_plot_weights_outlines_clusters_and_titles_clusterability():
    W = torch.randn(12, 8)
    p = modlib.contiguous_partition(12, 8, 3)
    fig = plot_weights(W, p)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert ax.get_title().startswith("C = ") and "chance 0.333" in ax.get_title()


def test_plot_weights_has_a_labelled_colorbar_unless_asked_not_to():
    W = torch.randn(12, 8)
    fig = plot_weights(W)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "|w|"
    assert fig.axes[0].title.get_fontsize() >= 9
    assert len(plot_weights(W, colorbar=False).axes) == 1
    with pytest.raises(TypeError, match="'colorbar' must be True or False"):
        plot_weights(W, colorbar="yes")


def test_plot_weight_grid_and_history():
    W = {"a": torch.randn(6, 4), "b": torch.randn(5, 6)}
    parts = {"a": modlib.contiguous_partition(6, 4, 2), "b": modlib.contiguous_partition(5, 6, 2)}
    fig = plot_weight_grid(W, parts, suptitle="x")
    assert len(fig.axes) == 4  # two panels, each with its colorbar
    assert all(ax.title.get_fontsize() >= 9 for ax in fig.axes[:2])
    h = modlib.History(steps=[{"step": 0, "clusterability": 0.3}, {"step": 1,
                                                                  "clusterability": 0.5}],
                       epochs=[{"epoch": 1, "accuracy": 0.8}])
    fig = plot_history({"modular": h}, k=4)
    assert len(fig.axes[1].lines) == 2  # the curve and the 1/k line


def test_empty_grid_is_refused():
    with pytest.raises(ValueError, match="'weights' is empty"):
        plot_weight_grid({}, {})


def test_plot_ablation_one_panel_per_model():
    fig = plot_ablation({"baseline": torch.rand(4, 10), "modular": torch.rand(4, 10)})
    assert len(fig.axes) == 3  # two heatmaps and the colour bar
    assert fig.axes[0].get_ylabel() == "cluster removed"
    fig = plot_ablation({"modular": torch.rand(4, 3)}, classes=list("abc"), ylabel="cluster kept")
    assert fig.axes[0].get_ylabel() == "cluster kept"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="'drops' is empty"):
        plot_ablation({})


def _seed_rows(ks=(4,), lams=(0.0, 20.0), seeds=3):
    return [{"seed": s, "k": k, "lam": lam, "accuracy": 0.9 - lam / 1000 + s / 100,
             "clusterability": min(1.0, 0.25 + lam / 25) + s / 200}
            for s in range(seeds) for k in ks for lam in lams]


def test_plot_tradeoff_draws_means_with_95_percent_intervals():
    from modlib.core.stats import mean_interval
    from modlib.course.viz import plot_tradeoff

    rows = _seed_rows()
    fig = plot_tradeoff(rows)
    ax = fig.axes[0]
    assert "mean of 3 seeds" in ax.get_title()
    line = ax.lines[0]  # the means, in λ order
    acc0 = mean_interval([r["accuracy"] for r in rows if r["lam"] == 0.0])
    assert line.get_ydata()[0] == pytest.approx(acc0.mean)
    # the error bars span the interval: one vertical segment per point
    segments = [c for c in ax.collections if len(c.get_segments()) == 2]
    spans = sorted(float(seg[1][1] - seg[0][1]) for c in segments for seg in c.get_segments())
    assert pytest.approx(2 * acc0.half_width) in spans
    one = plot_tradeoff(_seed_rows(seeds=1))  # one seed: points without bars
    assert "one seed" in one.axes[0].get_title() and not one.axes[0].collections


def test_plot_k_curve_one_point_per_k_with_intervals():
    from modlib.course.viz import plot_k_curve

    rows = _seed_rows(ks=(2, 4, 8, 16), lams=(20.0,))
    fig = plot_k_curve(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16"]
    assert list(ax.lines[0].get_xdata()) == [2, 4, 8, 16]
    assert "mean of 3 seeds" in ax.get_title() and "λ = 20" in ax.get_title()
    assert len(ax.collections) == 2  # error bars of accuracy and of clusterability


def test_widgets_build_on_the_figures():
    import ipywidgets

    from modlib.course.widgets import planted_explorer, tradeoff_explorer

    rows = [{"k": 4, "lam": 0.0, "accuracy": 0.9, "clusterability": 0.25},
            {"k": 4, "lam": 20.0, "accuracy": 0.88, "clusterability": 0.99}]
    tradeoff = tradeoff_explorer(rows)
    assert isinstance(tradeoff, ipywidgets.interactive)
    slider = tradeoff.children[0]  # one position per λ, starting at the largest
    assert list(slider.options) == [0.0, 20.0] and slider.value == 20.0
    planted = planted_explorer()
    assert [c.description for c in planted.children[:3]] == ["noise", "k", "seed"]
    assert [c.value for c in planted.children[:3]] == [0.3, 4, 0]
    with pytest.raises(ValueError, match="'rows' is empty"):
        tradeoff_explorer([])


def test_plot_class_bars_one_bar_per_model_and_class():
    fig = plot_class_bars({"baseline": [0.1, 0.2, 0.3], "modular": torch.tensor([0.3, 0.2, 0.1])},
                          ylabel="circuit size", classes=["a", "b", "c"])
    ax = fig.axes[0]
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]


@pytest.mark.parametrize("values", [{}, {"a": [1.0], "b": [1.0, 2.0]}, {"a": []}])
def test_plot_class_bars_refuses_ragged_or_empty_values(values):
    with pytest.raises(ValueError, match="'values' must hold at least one model"):
        plot_class_bars(values, ylabel="x")


def test_plot_overlaps_one_panel_per_model():
    fig = plot_overlaps({"baseline": torch.eye(3), "modular": torch.ones(3, 3)})
    assert len(fig.axes) == 3  # two heatmaps and the colour bar
    assert fig.axes[0].images[0].get_clim() == (0, 1)
    with pytest.raises(ValueError, match="'overlaps' is empty"):
        plot_overlaps({})
    with pytest.raises(ValueError, match=r"square \(n, n\) matrices. Got shapes \{'a': \(2, 3\)"):
        plot_overlaps({"a": torch.zeros(2, 3)})


def test_every_explorer_also_offers_a_png_of_its_first_view(monkeypatch):
    """Where widgets cannot be drawn (a static page, Colab before its widget manager), the
    display still holds a figure: the widget's first view as image/png."""
    import base64

    import IPython.display

    from modlib.course.widgets import planted_explorer, tradeoff_explorer

    rows = [{"k": 4, "lam": 0.0, "accuracy": 0.9, "clusterability": 0.25},
            {"k": 4, "lam": 20.0, "accuracy": 0.88, "clusterability": 0.99}]
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw: shown.append(data))
    for widget in (planted_explorer(), tradeoff_explorer(rows)):
        widget._ipython_display_()
        data = shown.pop()
        assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
        assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
        assert "interactive figure" in data["text/plain"]


# Widgets that ipywidgets 7.7 (Colab's) has; the explorers were also run under 7.7.1 by hand.
_IPYWIDGETS_7_7 = {"interactive", "FloatSlider", "IntSlider", "SelectionSlider", "Dropdown",
                   "Output", "HBox", "VBox", "Layout", "Checkbox", "ToggleButtons", "Button"}


def test_widgets_use_only_what_colabs_ipywidgets_7_7_has():
    """pyproject accepts ipywidgets>=7.7 so that pip leaves Colab's own in place."""
    import ast
    import inspect

    import modlib.course.widgets

    tree = ast.parse(inspect.getsource(modlib.widgets))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "w"}
    assert used and used <= _IPYWIDGETS_7_7, used - _IPYWIDGETS_7_7


def test_grokking_and_frequency_plots(tmp_path):
    h = History(epochs=[{"epoch": e, "train_loss": 1 / e, "eval_loss": 2.0, "accuracy": e / 10}
                        for e in range(1, 11)])
    fig = plot_grokking({"baseline": h, "modular": h})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 2
    assert fig.axes[0].get_yscale() == "log"
    fig = plot_frequencies(torch.rand(3, 9), ["a", "b", "c"], title="t")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "t"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
    fig = plot_frequencies(torch.rand(2, 24), ["a", "b"])  # 23 frequencies: every other one
    assert [int(t) for t in fig.axes[0].get_xticks()] == list(range(1, 24, 2))
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


@pytest.mark.parametrize("call, match", [
    (lambda: plot_grokking({}), r"'histories' is empty"),
    (lambda: plot_grokking({"run": History(epochs=[{"accuracy": 0.5}])}),
     r"'histories' entry 'run' has no epoch with train_loss, eval_loss and accuracy"),
    (lambda: plot_frequencies(torch.rand(3), ["a"]),
     r"'spectra' must be a tensor of shape \(n_rows, n_freq\) with n_freq >= 2\. Got"),
    (lambda: plot_frequencies(torch.rand(2, 4), ["a"]),
     r"'labels' must name each of the 2 rows\. Got 1 labels"),
])
def test_grokking_and_frequency_plot_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
