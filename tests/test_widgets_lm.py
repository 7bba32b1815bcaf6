"""The language-model figures and explorer of notebook 07 (modlib.widgets)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from modlib import History, contiguous_partition  # noqa: E402
from modlib.analysis.lm_interp import KINDS, ablate_by_kind, layer_scores  # noqa: E402
from modlib.course.widgets import (  # noqa: E402
    lm_layer_explorer,
    plot_kind_ablation,
    plot_layer_scores,
    plot_lm_history,
    plot_lm_layer,
)

ipywidgets = pytest.importorskip("ipywidgets")
pytest.importorskip("transformers")
from modlib.training.models import tiny_gpt2  # noqa: E402

LAYERS = ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def models():
    torch.manual_seed(0)
    a = tiny_gpt2(20, n_layer=2, n_head=2, n_embd=16, n_positions=16)
    b = tiny_gpt2(20, n_layer=2, n_head=2, n_embd=16, n_positions=16)
    part = contiguous_partition(64, 16, 4)
    with torch.no_grad():  # b: block-diagonal MLP-in matrices (Conv1D stores (n_in, n_out))
        for block in b.transformer.h:
            block.mlp.c_fc.weight.mul_(part.mask().T)
    return {"pretrained": a, "modular": b}


@pytest.fixture
def partitions():
    return {name: contiguous_partition(64, 16, 4) for name in LAYERS}


def test_plot_layer_scores_draws_a_bar_and_a_chance_mark_per_layer(models):
    scores = layer_scores(models["pretrained"], 4)
    fig = plot_layer_scores(scores, 4, title="test")
    ax = fig.axes[0]
    assert len(ax.patches) == len(scores) == 4
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([s.clusterability for s in scores.values()])
    assert ax.get_title() == "test"
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "h.0.mlp.c_fc"
    with pytest.raises(ValueError, match="'scores' is empty"):
        plot_layer_scores({}, 4)


def test_plot_lm_history_moving_average_and_clusterability():
    modular = History(steps=[{"step": i, "task_loss": float(i), "clusterability": 0.1 * i}
                             for i in range(10)])
    short = History(steps=[{"step": i, "task_loss": 1.0} for i in range(3)])
    fig = plot_lm_history({"modular": modular, "short": short}, k=4, window=4)
    ax_loss, ax_c = fig.axes
    x, y = ax_loss.lines[0].get_data()
    assert list(x) == [3, 4, 5, 6, 7, 8, 9] and list(y) == [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]
    x, y = ax_loss.lines[1].get_data()  # a run shorter than the window: one point
    assert list(x) == [2] and list(y) == [1.0]
    assert len(ax_c.lines) == 2  # the modular run and the 1/k line; 'short' has no loss term
    assert list(ax_c.lines[1].get_ydata()) == [0.25, 0.25]


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(histories={}), r"'histories' is empty"),
    (dict(window=0), r"'window' must be an int >= 1. Got 0"),
])
def test_plot_lm_history_errors(kwargs, match):
    args = {"histories": {"run": History()}, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_lm_history(**args)


def test_plot_lm_layer_one_panel_per_model_with_its_clusterability(models, partitions):
    fig = plot_lm_layer(models, partitions, LAYERS[1])
    titles = [ax.get_title() for ax in fig.axes if ax.get_ylabel() != "|w|"]  # not colorbars
    assert len(titles) == 2 and len(fig.axes) == 4
    assert titles[0].startswith("pretrained\nC = ")
    assert titles[1] == "modular\nC = 1.000 (chance 0.250)"


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(layer="transformer.h.5.mlp.c_fc"), r"'layer' must be one of"),
    (dict(models={}), r"'models' is empty"),
])
def test_plot_lm_layer_errors(models, partitions, kwargs, match):
    args = {"models": models, "partitions": partitions, "layer": LAYERS[0], **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_lm_layer(**args)


def test_plot_lm_layer_refuses_a_layer_missing_from_a_model(partitions):
    small = tiny_gpt2(20, n_layer=1, n_head=2, n_embd=16, n_positions=16)
    with pytest.raises(ValueError, match=r"is not a weight layer of model 'small'"):
        plot_lm_layer({"small": small}, partitions, LAYERS[1])


def test_plot_kind_ablation(models, partitions):
    data = torch.randint(20, (4, 9), generator=torch.Generator().manual_seed(0))
    kind_of_id = torch.arange(20) % len(KINDS)
    results = {run: ablate_by_kind(m, partitions, data, kind_of_id, n_controls=1 + i)
               for i, (run, m) in enumerate(models.items())}
    fig = plot_kind_ablation(results)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    assert panels[0].get_title().startswith("pretrained: loss increase (nats)")
    assert panels[0].get_title().endswith(f"(control {results['pretrained'].control:.2f})")
    lo, hi = min(results["modular"].controls), max(results["modular"].controls)
    assert panels[1].get_title().endswith(f"(controls {lo:.2f}–{hi:.2f})")
    labels = [t.get_text() for t in panels[0].get_xticklabels()]
    n = int(results["pretrained"].counts[0])
    assert labels[0] == f"letter\n({n:,})" and len(labels) == len(KINDS)
    with pytest.raises(ValueError, match="'results' is empty"):
        plot_kind_ablation({})


def test_lm_layer_explorer_draws_at_once_and_on_every_change(models, partitions, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append([a.get_title() for a in
                                                           plt.gcf().axes]))
    widget = lm_layer_explorer(models, partitions)
    assert isinstance(widget, ipywidgets.interactive)
    slider = widget.children[0]
    assert list(slider.options) == LAYERS and slider.value == LAYERS[0]
    assert len(shown) == 1  # the default figure: what a static page shows
    slider.value = LAYERS[1]
    assert len(shown) == 2 and shown[1][1] == "modular\nC = 1.000 (chance 0.250)"


@pytest.mark.parametrize(("models_", "partitions_", "match"), [
    ({"a": None}, {}, r"'partitions' is empty"),
    ({}, {"x": None}, r"'models' is empty"),
])
def test_lm_layer_explorer_errors(models_, partitions_, match):
    with pytest.raises(ValueError, match=match):
        lm_layer_explorer(models_, partitions_)
