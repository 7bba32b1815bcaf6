import matplotlib
import pytest
import torch

import modlib
from modlib.viz import plot_ablation, plot_history, plot_weight_grid, plot_weights

matplotlib.use("Agg")


def test_plot_weights_outlines_clusters_and_titles_clusterability():
    W = torch.randn(12, 8)
    p = modlib.contiguous_partition(12, 8, 3)
    fig = plot_weights(W, p)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert ax.get_title().startswith("C = ") and "chance 0.333" in ax.get_title()


def test_plot_weight_grid_and_history():
    W = {"a": torch.randn(6, 4), "b": torch.randn(5, 6)}
    parts = {"a": modlib.contiguous_partition(6, 4, 2), "b": modlib.contiguous_partition(5, 6, 2)}
    assert len(plot_weight_grid(W, parts, suptitle="x").axes) == 2
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
    with pytest.raises(ValueError, match="'drops' is empty"):
        plot_ablation({})


def test_widgets_build_on_the_figures():
    import ipywidgets

    from modlib.widgets import planted_explorer, tradeoff_explorer

    rows = [{"k": 4, "lam": 0.0, "accuracy": 0.9, "clusterability": 0.25},
            {"k": 4, "lam": 20.0, "accuracy": 0.88, "clusterability": 0.99}]
    assert isinstance(tradeoff_explorer(rows), ipywidgets.interactive)
    assert isinstance(planted_explorer(), ipywidgets.interactive)
    with pytest.raises(ValueError, match="'rows' is empty"):
        tradeoff_explorer([])
