"""Whole-network pictures (modlib.course.network): geometry, edges, colours, frames."""

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from torch import nn  # noqa: E402

import modlib  # noqa: E402
from modlib.core.partition import Partition, contiguous_partition  # noqa: E402
from modlib.course.network import (  # noqa: E402
    network_animation,
    network_layout,
    plot_network,
    plot_network_frames,
    plot_networks,
    snapshot_weights,
)

TAB10 = np.array([plt.get_cmap("tab10")(i) for i in range(10)])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def chain(sizes, seed=0):
    """{fc1: W, fc2: W ...} of consecutive layers with widths ``sizes`` (inputs first)."""
    g = torch.Generator().manual_seed(seed)
    return {f"fc{i + 1}": torch.randn(n_out, n_in, generator=g)
            for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False))}


def block_diagonal(sizes, k, seed=0):
    """A perfectly modular chain: weights only inside k aligned contiguous blocks."""
    W = chain(sizes, seed)
    parts = {n: contiguous_partition(*w.shape, k) for n, w in W.items()}
    return {n: w * parts[n].mask() for n, w in W.items()}, parts


def dots(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def edges(ax):
    return {c.get_gid(): c for c in ax.collections if isinstance(c, LineCollection)}


def inside_share(ax):
    return int(re.search(r"(\d+) % inside clusters", ax.get_title()).group(1))


# --- geometry ------------------------------------------------------------------------------------

def test_one_dot_per_neuron_and_a_shared_neuron_has_one_position():
    W = chain([6, 8, 5, 3])
    ax = plot_network(W, top=1.0).axes[0]
    columns = dots(ax)
    assert [len(c.get_offsets()) for c in columns] == [6, 8, 5, 3]  # 22, not 6+8 + 8+5 + 5+3
    assert sum(len(c.get_offsets()) for c in columns) == 6 + 8 + 5 + 3
    assert [c.get_gid() for c in columns] == ["neurons input", "neurons fc1", "neurons fc2",
                                              "neurons fc3"]
    # the ends of fc1's edges at x = 1 and the starts of fc2's edges are the same 8 dots
    segs = edges(ax)
    ends = {round(float(s[1][1]), 9) for s in segs["edges fc1"].get_segments()}
    starts = {round(float(s[0][1]), 9) for s in segs["edges fc2"].get_segments()}
    column = {round(float(y), 9) for y in columns[1].get_offsets()[:, 1]}
    assert ends == starts == column and len(column) == 8
    assert all(np.allclose(c.get_offsets()[:, 0], x) for x, c in enumerate(columns))


def test_neurons_are_drawn_in_cluster_order_from_the_top():
    g = torch.Generator().manual_seed(1)
    rows = torch.randint(0, 3, (12,), generator=g)
    part = Partition(rows, torch.randint(0, 3, (7,), generator=g), 3)
    column = network_layout({"a": torch.randn(12, 7)}, {"a": part})[1]
    assert torch.equal(column.labels, rows)
    assert torch.equal(column.labels[column.order], torch.sort(rows).values)
    heights = column.y[column.dot[column.order]]
    assert bool((heights[1:] < heights[:-1]).all())  # strictly downwards in display order
    same = column.labels[column.order]
    within = column.order[same == same[0]]
    assert within.tolist() == sorted(within.tolist())  # stable: index order inside a cluster
    assert column.y.max() == 1 and column.y.min() == 0


def test_a_shared_neuron_follows_the_layer_it_is_an_output_of_else_the_next_layer():
    W = chain([4, 6, 6, 2])
    out_side = Partition(torch.tensor([1, 1, 1, 0, 0, 0]), torch.tensor([0, 0, 1, 1]), 2)
    in_side = Partition(torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([0, 1, 0, 1, 0, 1]), 2)
    last = Partition(torch.tensor([0, 1]), torch.tensor([1, 0, 1, 0, 1, 0]), 2)
    cols = network_layout(W, {"fc1": out_side, "fc2": in_side})
    assert cols[0].labels.tolist() == [0, 0, 1, 1]  # the first layer's inputs
    assert cols[1].labels.tolist() == out_side.rows.tolist()  # fc1's outputs win over fc2's cols
    assert cols[2].labels.tolist() == in_side.rows.tolist()
    assert cols[3].labels.tolist() == [-1, -1]  # no partition on either side
    cols = network_layout(W, {"fc3": last})
    assert cols[2].labels.tolist() == last.cols.tolist()  # no fc2 partition: fc3's inputs
    assert cols[1].labels.tolist() == [-1] * 6 and cols[1].order.tolist() == list(range(6))


# --- edges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("top, expected", [(0.1, [math.ceil(0.1 * 48), math.ceil(0.1 * 40)]),
                                           (7, [7, 7]), (1.0, [48, 40]), (1000, [48, 40])])
def test_top_keeps_the_largest_edges_of_each_layer(top, expected):
    W = chain([6, 8, 5])
    ax = plot_network(W, top=top).axes[0]
    segs = edges(ax)
    assert [len(segs[f"edges {n}"].get_segments()) for n in W] == expected
    widths = segs["edges fc1"].get_linewidths()
    assert list(widths) == sorted(widths)  # weakest first: strong edges lie on top
    kept = math.ceil(top * 48) if isinstance(top, float) else min(top, 48)
    threshold = W["fc1"].abs().flatten().sort(descending=True).values[kept - 1]
    drawn = {(round(float(s[0][1]), 6), round(float(s[1][1]), 6))
             for s in segs["edges fc1"].get_segments()}
    cols = network_layout(W)
    y_in, y_out = cols[0].y, cols[1].y
    strongest = {(round(float(y_in[j]), 6), round(float(y_out[i]), 6))
                 for i, j in (W["fc1"].abs() >= threshold).nonzero().tolist()}
    assert drawn == strongest


def test_zero_weights_are_never_drawn():
    W, _ = block_diagonal([8, 8, 4], 2)
    ax = plot_network(W, top=1.0).axes[0]
    counts = {n: len(c.get_segments()) for n, c in edges(ax).items()}
    assert counts == {"edges fc1": 32, "edges fc2": 16}


def test_a_perfectly_modular_network_draws_only_inside_edges_in_its_clusters_colours():
    W, parts = block_diagonal([12, 16, 16, 8], 4)
    ax = plot_network(W, parts, top=0.5).axes[0]
    assert inside_share(ax) == 100
    for name, lc in edges(ax).items():
        colours = lc.get_colors()[:, :3]
        assert len(colours) > 0, name
        assert not np.any(np.all(colours == 0, axis=1)), name  # no black (cross) edge
        assert {tuple(c) for c in colours} <= {tuple(c) for c in TAB10[:4, :3]}
    assert len({tuple(c) for c in edges(ax)["edges fc2"].get_colors()[:, :3]}) == 4


def test_inside_and_cross_edges_are_counted_as_coloured():
    W = chain([8, 8, 8], seed=3)
    parts = {n: contiguous_partition(8, 8, 2) for n in W}
    ax = plot_network(W, parts, top=1.0).axes[0]
    black = inside = 0
    for lc in edges(ax).values():
        rgb = lc.get_colors()[:, :3]
        black += int(np.all(rgb == 0, axis=1).sum())
        inside += int((~np.all(rgb == 0, axis=1)).sum())
    assert black == inside == 64  # two equal clusters: half of all 2 * 64 edges inside
    assert inside_share(ax) == 50


def test_edges_without_a_partition_at_one_end_are_grey_and_not_counted():
    W, parts = block_diagonal([8, 8, 8], 2)
    ax = plot_network(W, {"fc2": parts["fc2"]}, top=1.0).axes[0]
    fc1 = edges(ax)["edges fc1"].get_colors()[:, :3]
    assert np.allclose(fc1, 0.6)  # inputs have no partition: grey
    assert inside_share(ax) == 100  # only fc2's edges count
    assert plot_network(W).axes[0].get_title() == "top 10 % of edges per layer"


def test_dots_take_their_clusters_colours_and_grey_without_one():
    part = Partition(torch.tensor([2, 0, 1, 0, 2]), torch.tensor([0, 1, 1]), 3)
    ax = plot_network({"a": torch.randn(5, 3)}, {"a": part}).axes[0]
    inputs, outputs = dots(ax)
    assert np.allclose(outputs.get_facecolors(), TAB10[[0, 0, 1, 2, 2]])  # cluster order
    assert np.allclose(inputs.get_facecolors(), TAB10[[0, 1, 1]])
    ax = plot_network({"a": torch.randn(5, 3)}).axes[0]
    assert np.allclose(dots(ax)[1].get_facecolors()[:, :3], 0.6)


def test_more_than_ten_clusters_use_tab20():
    W = chain([24, 24])
    ax = plot_network(W, {"fc1": contiguous_partition(24, 24, 12)}).axes[0]
    assert len({tuple(c) for c in dots(ax)[1].get_facecolors()}) == 12


# --- large layers --------------------------------------------------------------------------------

def test_a_784_256_128_10_mlp_draws_with_its_large_columns_grouped_and_said_so():
    W = chain([784, 256, 128, 10])
    parts = {"fc2": contiguous_partition(128, 256, 4)}
    ax = plot_network(W, parts).axes[0]
    sizes = [len(c.get_offsets()) for c in dots(ax)]
    assert sizes[0] <= 130 and sizes[1] <= 130 and sizes[2:] == [128, 10]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == f"784 inputs\nas {sizes[0]} dots" and labels[1].endswith(" dots")
    assert labels[2:] == ["128", "10"]


def test_grouped_dots_never_mix_clusters_and_keep_each_clusters_squared_weight():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(40, 300, generator=g)
    part = Partition(torch.randint(0, 3, (40,), generator=g),
                     torch.randint(0, 3, (300,), generator=g), 3)
    c_in, c_out = network_layout({"a": W}, {"a": part}, max_neurons=30)
    assert (c_in.n, c_out.n) == (300, 40)
    assert abs(c_in.n_dots - 30) <= 3 and abs(c_out.n_dots - 30) <= 3  # about max_neurons
    for c in (c_in, c_out):  # a dot stands for neurons of one cluster
        for d in range(c.n_dots):
            assert set(c.labels[c.dot == d].tolist()) == {int(c.dot_labels[d])}
    A = torch.zeros(c_out.n_dots, 300).index_add_(0, c_out.dot, W.square())  # Σ W² per dot
    A = torch.zeros(c_out.n_dots, c_in.n_dots).index_add_(1, c_in.dot, A)
    grouped = Partition(c_out.dot_labels, c_in.dot_labels, 3)
    assert torch.isclose(modlib.clusterability(A.sqrt(), grouped),
                         modlib.clusterability(W, part))


# --- models, runs, frames ------------------------------------------------------------------------

def test_a_model_is_read_with_layer_matrix():
    model = modlib.models.PaperMLP(hidden=16)
    parts = modlib.aligned_partitions(model, 4)
    ax = plot_network(model, parts).axes[0]
    assert [len(c.get_offsets()) for c in dots(ax)] == [128, 16, 16, 16, 10]
    ax = plot_network(model, parts, layers=["fc2", "fc3"]).axes[0]  # fc2's partition only
    assert [c.get_gid() for c in dots(ax)] == ["neurons input", "neurons fc2", "neurons fc3"]


def test_a_conv_followed_by_a_flattened_linear_is_refused_with_the_run_to_draw():
    model = modlib.models.MnistCNN(width=4)
    with pytest.raises(ValueError, match=r"Layer 'fc1' of shape \(32, 392\) takes 392 inputs, "
                                         r"but layer 'conv2' before it gives 8 outputs.*"
                                         r"layers=\['fc1', 'fc2', 'fc3'\]"):
        plot_network(model)
    assert len(dots(plot_network(model, layers=["fc1", "fc2", "fc3"]).axes[0])) == 4


def test_plot_networks_one_panel_per_run_with_shared_or_per_run_partitions():
    W, parts = block_diagonal([8, 8, 8], 2)
    runs = {"baseline": chain([8, 8, 8]), "modular": W, "bimt": chain([8, 8, 8], 1)}
    fig = plot_networks(runs, parts, suptitle="x")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["baseline", "modular", "bimt"]
    assert inside_share(axes[1]) == 100
    fig = plot_networks(runs, {"modular": parts, "bimt": None})
    assert "inside" not in fig.axes[0].get_title() and inside_share(fig.axes[1]) == 100
    with pytest.raises(ValueError, match=r"'partitions' given per run names runs that are not in "
                                         r"'runs': \['bmit'\]"):
        plot_networks(runs, {"bmit": parts})


def test_snapshot_weights_are_copies_that_training_does_not_change():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(12, 4))
    snap = snapshot_weights(model)
    assert list(snap) == ["0", "2"] and snap["0"].shape == (3, 1)
    assert not snap["2"].requires_grad
    before = snap["2"].clone()
    with torch.no_grad():
        model[2].weight.add_(1.0)
    assert torch.equal(snap["2"], before)
    assert list(snapshot_weights(model, ["2"])) == ["2"]


def test_modules_form_during_training_frame_by_frame():
    """A manual loop with the clusterability loss: the inside share rises from frame to frame."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    cl = modlib.ClusterabilityLoss(model, 4, layers=["2"])
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    X, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    snapshots = [(0, snapshot_weights(model))]
    for step in range(1, 61):
        opt.zero_grad()
        (nn.functional.cross_entropy(model(X), y) + 5.0 * cl()).backward()
        opt.step()
        if step % 20 == 0:
            snapshots.append((step, snapshot_weights(model)))
    fig = plot_network_frames(snapshots, cl.partitions, top=0.25)
    assert len(fig.axes) == 4
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "step 0", "step 20", "step 40", "step 60"]
    shares = [inside_share(ax) for ax in fig.axes]
    assert shares[-1] >= 90 and shares[0] < 60, shares


def test_frame_strip_wraps_into_rows():
    frames = [(f"epoch {i}", chain([6, 4, 2], i)) for i in range(5)]
    fig = plot_network_frames(frames, ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5 and len(fig.axes) == 6
    assert len(plot_network_frames(frames, ncols=9).axes) == 5


def test_network_animation_has_one_frame_per_snapshot_and_plays_without_ffmpeg():
    frames = [(i, chain([6, 4, 2], i)) for i in range(3)]
    anim = network_animation(frames, {"fc1": contiguous_partition(4, 6, 2)}, interval=100)
    assert len(list(anim.new_frame_seq())) == 3
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 3 and "<script" in html
