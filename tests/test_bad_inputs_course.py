"""Every public name of modlib.course (viz, widgets, student, exercises) refuses bad input up front.

The course-side twin of ``tests/test_bad_inputs.py`` (scikit-learn ``test_common`` style): one
table of bad calls, each with the exception it must raise and the words its message must hold
(the argument's name and what is expected), so that no bad input ends in an error from inside
matplotlib, torch or Python, or in a silently empty figure.
:func:`test_every_public_name_has_a_bad_input_row` fails when a new public name (in the
``__all__`` of those modules) comes without a row here.

The exercise checkers ``check_*(fn, *, seed=0)`` are the one exception to "raise": by design they
never crash a learner's notebook, so a non-callable ``fn`` prints a line and returns False
(:func:`test_checkers_report_a_non_function_without_raising`); their table rows cover ``seed``.
"""

from __future__ import annotations

import functools
import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import modlib.course.exercises as exercises  # noqa: E402
import modlib.course.network as network  # noqa: E402
import modlib.course.student as student  # noqa: E402
import modlib.course.viz as viz  # noqa: E402
import modlib.course.widgets as widgets  # noqa: E402
from modlib.analysis.interp import AblationResult  # noqa: E402
from modlib.analysis.lm_interp import LayerScore  # noqa: E402
from modlib.core.null import ShuffleTest  # noqa: E402
from modlib.core.partition import contiguous_partition  # noqa: E402
from modlib.course.network import (  # noqa: E402
    network_animation,
    network_layout,
    plot_network,
    plot_network_frames,
    plot_networks,
    snapshot_weights,
)
from modlib.course.student import (  # noqa: E402
    colab_url,
    fallback_check,
    install_source,
    make_student_notebook,
    make_student_notebooks,
    stub_source,
    student_link,
    sync_repository,
)
from modlib.course.viz import (  # noqa: E402
    glue,
    plot_ablation,
    plot_bipartite,
    plot_class_bars,
    plot_frequencies,
    plot_grokking,
    plot_history,
    plot_k_curve,
    plot_null,
    plot_overlaps,
    plot_runs,
    plot_tradeoff,
    plot_weight_grid,
    plot_weights,
)
from modlib.course.widgets import (  # noqa: E402
    lm_layer_explorer,
    plot_kind_ablation,
    plot_layer_scores,
    plot_lm_history,
    plot_lm_layer,
    plot_planted,
    tradeoff_explorer,
)
from modlib.training.train import History  # noqa: E402
from tests.badinput import assert_every_name_has_a_row, assert_refused, row_ids  # noqa: E402

MODULES = (viz, network, widgets, student, exercises)
CHECKERS = [name for name in exercises.__all__ if name.startswith("check_")]

# Public names that take no argument to check: constants and argument-less functions.
ALLOWED_WITHOUT_ROW = {
    "DISTRIBUTION",  # a constant str (the pip name of the course)
    "planted_explorer",  # takes no argument: sliders over plot_planted
}


def public_names() -> set[str]:
    """Every name in the ``__all__`` of viz, network, widgets, student and the exercises
    package."""
    return {name for m in MODULES for name in m.__all__}


# --- small inputs, built once -------------------------------------------------------------------

W = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
P = contiguous_partition(6, 4, 2)
P8 = contiguous_partition(8, 8, 2)
NAN = float("nan")
H = History(epochs=[{"train_loss": 1.0, "eval_loss": 2.0, "accuracy": 0.1}])
ROWS = [{"k": 2, "lam": 0.0, "clusterability": 0.5, "accuracy": 0.9}]
TEST = ShuffleTest(0.6, [0.5, 0.55], 0.3, 0.5, P)
SCORE = LayerScore(0.6, 0.5, P, (6, 4))
NO_ROOT = "/nonexistent/modlib-root"
NET = {"a": W, "b": torch.randn(3, 6)}  # a chain 4 -> 6 -> 3
GAP = {"a": W, "b": torch.ones(3, 5)}  # 'b' takes 5 inputs, 'a' gives 6


@functools.cache
def mlp() -> nn.Sequential:
    """Linear layers '0' (4 → 8), '2' (8 → 8), '4' (8 → 3)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def ablation_result() -> AblationResult:
    return AblationResult(torch.eye(2), torch.ones(2), 0.9, 0.1, torch.zeros(2, 2), [0.1])


def wrong(*args):
    raise AssertionError("a checker ran the learner's function despite a bad argument")


# (name covered, call, exception, regex of the message)
CASES = [
    # --- modlib.course.viz -----------------------------------------------------------------
    ("plot_weights", lambda: plot_weights([[1.0]]), TypeError,
     r"'W' must be a torch.Tensor. Got list"),
    ("plot_weights", lambda: plot_weights(None), TypeError,
     r"'W' must be a torch.Tensor. Got None"),
    ("plot_weights", lambda: plot_weights(torch.ones(3)), ValueError,
     r"'W' must be 2-D. Got shape \(3,\)"),
    ("plot_weights", lambda: plot_weights(torch.ones(0, 3)), ValueError,
     r"'W' must not be empty. Got shape \(0, 3\)"),
    ("plot_weights", lambda: plot_weights(W.clone().fill_(NAN)), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("plot_weights", lambda: plot_weights(W, 4), TypeError,
     r"'partition' must be a modlib Partition or None. Got int 4"),
    ("plot_weights", lambda: plot_weights(torch.ones(4, 4), P), ValueError,
     r"'W' of shape \(4, 4\) does not fit a partition of 6 rows and 4 columns"),
    ("plot_weights", lambda: plot_weights(W, title=3), TypeError,
     r"'title' must be a str or None. Got int 3"),
    ("plot_weight_grid", lambda: plot_weight_grid({}, {}), ValueError, r"'weights' is empty"),
    ("plot_weight_grid", lambda: plot_weight_grid([W], {}), TypeError,
     r"'weights' must be a dict \{layer name: W\}. Got list"),
    ("plot_weight_grid", lambda: plot_weight_grid({"a": W}, None), TypeError,
     r"'partitions' must be a dict \{layer name: Partition\}. Got None"),
    ("plot_weight_grid", lambda: plot_weight_grid({"a": "x"}, {}), TypeError,
     r"'W' must be a torch.Tensor. Got str 'x'"),
    ("plot_weight_grid", lambda: plot_weight_grid({"a": W}, {"a": 2}), TypeError,
     r"'partition' must be a modlib Partition or None. Got int 2"),
    ("plot_history", lambda: plot_history(None), TypeError,
     r"'histories' must be a dict \{run name: History\}. Got None"),
    ("plot_history", lambda: plot_history({"a": {}}), TypeError,
     r"'histories\['a'\]' must be a modlib History. Got dict"),
    ("plot_history", lambda: plot_history({"a": H}, k=0), ValueError,
     r"'k' must be an int >= 1 or None. Got 0"),
    ("plot_history", lambda: plot_history({"a": H}, k=2.5), TypeError,
     r"'k' must be an int >= 1 or None. Got float 2.5"),
    ("plot_history", lambda: plot_history({"a": H}, metric=None), TypeError,
     r"'metric' must be a str \(a key of the epoch rows\). Got None"),
    ("plot_bipartite", lambda: plot_bipartite(None), TypeError,
     r"'W' must be a torch.Tensor. Got None"),
    ("plot_bipartite", lambda: plot_bipartite(W.clone().fill_(NAN)), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("plot_bipartite", lambda: plot_bipartite(W, "p"), TypeError,
     r"'partition' must be a modlib Partition or None. Got str 'p'"),
    ("plot_bipartite", lambda: plot_bipartite(torch.ones(2, 2), P), ValueError,
     r"'W' of shape \(2, 2\) does not fit a partition"),
    ("plot_bipartite", lambda: plot_bipartite(torch.ones(2, 2, 2)), ValueError,
     r"'W' must be 2-D. Got shape \(2, 2, 2\)"),
    ("plot_tradeoff", lambda: plot_tradeoff([]), ValueError, r"'rows' is empty"),
    ("plot_runs", lambda: plot_runs({}, ["a"], {"x": "{run}_x"}), ValueError, r"'numbers'"),
    ("plot_runs", lambda: plot_runs({"a_x": 1}, "a", {"x": "{run}_x"}), TypeError,
     r"'runs' must be a non-empty list of run names \(str\). Got str 'a'"),
    ("plot_runs", lambda: plot_runs({"a_x": 1}, ["a"], {"x": "x"}), ValueError,
     r"'panels\['x'\]' must name a number with \{run\}"),
    ("plot_runs", lambda: plot_runs({"a_x": 1}, ["b"], {"x": "{run}_x"}), ValueError,
     r"No run has the number '\{run\}_x' of panel 'x'"),
    ("plot_k_curve", lambda: plot_k_curve([]), ValueError, r"'rows' is empty"),
    ("plot_k_curve", lambda: plot_k_curve([{"k": 2}]), ValueError,
     r"'rows\[0\]' must hold the keys \['k', 'lam', 'clusterability', 'accuracy'\]"),
    ("plot_k_curve", lambda: plot_k_curve(
        [{"k": 2, "lam": lam, "accuracy": 0.9, "clusterability": 0.9} for lam in (1.0, 2.0)]),
     ValueError, r"'rows' must hold one λ, as modlib.sweep\(..., lams=\[lam\]\) returns. "
     r"Got λ = \[1.0, 2.0\]"),
    ("plot_tradeoff", lambda: plot_tradeoff(None), TypeError,
     r"'rows' must be a list of dicts, as modlib.sweep returns. Got NoneType"),
    ("plot_tradeoff", lambda: plot_tradeoff(ROWS[0]), TypeError,
     r"'rows' must be a list of dicts, as modlib.sweep returns. Got dict"),
    ("plot_tradeoff", lambda: plot_tradeoff([3]), TypeError,
     r"'rows\[0\]' must be a dict, as modlib.sweep returns. Got int 3"),
    ("plot_tradeoff", lambda: plot_tradeoff([{"k": 2}]), ValueError,
     r"'rows\[0\]' must hold the keys \['k', 'lam', 'clusterability', 'accuracy'\]. "
     r"Missing: \['lam', 'clusterability', 'accuracy'\]"),
    ("plot_tradeoff", lambda: plot_tradeoff(ROWS, metric="loss"), ValueError,
     r"'rows\[0\]' must hold the keys .* Missing: \['loss'\]"),
    ("plot_tradeoff", lambda: plot_tradeoff(ROWS, metric=None), TypeError,
     r"'metric' must be a str \(a key of the rows\). Got None"),
    ("plot_null", lambda: plot_null({}), ValueError,
     r"'tests' must be a non-empty dict \{layer name: ShuffleTest\}. Got dict \{\}"),
    ("plot_null", lambda: plot_null([TEST]), TypeError,
     r"'tests' must be a non-empty dict \{layer name: ShuffleTest\}. Got list"),
    ("plot_null", lambda: plot_null({"a": 0.5}), TypeError,
     r"'tests\['a'\]' must be a modlib ShuffleTest. Got float 0.5"),
    ("plot_ablation", lambda: plot_ablation({}), ValueError, r"'drops' is empty"),
    ("plot_ablation", lambda: plot_ablation(None), TypeError,
     r"'drops' must be a dict \{model name: \(k, n_classes\) drops\}. Got None"),
    ("plot_ablation", lambda: plot_ablation({"a": [[1.0]]}), TypeError,
     r"'drops\['a'\]' must be a torch.Tensor. Got list"),
    ("plot_ablation", lambda: plot_ablation({"a": torch.ones(3)}), ValueError,
     r"'drops\['a'\]' must be 2-D. Got shape \(3,\)"),
    ("plot_ablation", lambda: plot_ablation({"a": torch.ones(2, 0)}), ValueError,
     r"'drops\['a'\]' must not be empty"),
    ("plot_ablation", lambda: plot_ablation({"a": torch.ones(2, 3)}, classes=["x", "y"]),
     ValueError, r"'classes' must name each of the 3 classes. Got 2 names"),
    ("plot_ablation", lambda: plot_ablation({"a": torch.ones(2, 3)}, classes="xyz"), TypeError,
     r"'classes' must be a list of class names or None. Got str 'xyz'"),
    ("plot_class_bars", lambda: plot_class_bars({}, ylabel="y"), ValueError,
     r"'values' must hold at least one model"),
    ("plot_class_bars", lambda: plot_class_bars({"a": [1.0], "b": [1.0, 2.0]}, ylabel="y"),
     ValueError, r"'values' must hold .* all the same length. Got lengths \{'a': 1, 'b': 2\}"),
    ("plot_class_bars", lambda: plot_class_bars(None, ylabel="y"), TypeError,
     r"'values' must be a dict \{model name: one value per class\}. Got None"),
    ("plot_class_bars", lambda: plot_class_bars({"a": 3}, ylabel="y"), TypeError,
     r"'values\['a'\]' must be a list or tensor of one value per class. Got int"),
    ("plot_class_bars", lambda: plot_class_bars({"a": [1.0]}, ylabel=None), TypeError,
     r"'ylabel' must be a str. Got None"),
    ("plot_class_bars", lambda: plot_class_bars({"a": [1.0, 2.0]}, ylabel="y", classes=["x"]),
     ValueError, r"'classes' must name each of the 2 classes. Got 1 names"),
    ("plot_overlaps", lambda: plot_overlaps({}), ValueError, r"'overlaps' is empty"),
    ("plot_overlaps", lambda: plot_overlaps(None), TypeError,
     r"'overlaps' must be a dict \{model name: \(n, n\) overlaps\}. Got None"),
    ("plot_overlaps", lambda: plot_overlaps({"a": [[1.0]]}), TypeError,
     r"'overlaps\['a'\]' must be a torch.Tensor. Got list"),
    ("plot_overlaps", lambda: plot_overlaps({"a": torch.ones(2, 3)}), ValueError,
     r"'overlaps' must hold square \(n, n\) matrices. Got shapes \{'a': \(2, 3\)\}"),
    ("plot_overlaps", lambda: plot_overlaps({"a": torch.eye(3)}, classes=["x"]), ValueError,
     r"'classes' must name each of the 3 classes. Got 1 names"),
    ("plot_grokking", lambda: plot_grokking({}), ValueError, r"'histories' is empty"),
    ("plot_grokking", lambda: plot_grokking(None), TypeError,
     r"'histories' must be a dict \{run name: History\}. Got None"),
    ("plot_grokking", lambda: plot_grokking({"a": 3}), TypeError,
     r"'histories\['a'\]' must be a modlib History. Got int 3"),
    ("plot_grokking", lambda: plot_grokking({"run": History(epochs=[{"accuracy": 0.5}])}),
     ValueError, r"'histories' entry 'run' has no epoch with train_loss, eval_loss and accuracy"),
    ("plot_frequencies", lambda: plot_frequencies([[1.0, 2.0]], ["a"]), TypeError,
     r"'spectra' must be a torch.Tensor. Got list"),
    ("plot_frequencies", lambda: plot_frequencies(torch.rand(3), ["a"]), ValueError,
     r"'spectra' must be a tensor of shape \(n_rows, n_freq\) with n_freq >= 2"),
    ("plot_frequencies", lambda: plot_frequencies(torch.rand(2, 1), ["a", "b"]), ValueError,
     r"'spectra' must be a tensor of shape \(n_rows, n_freq\) with n_freq >= 2"),
    ("plot_frequencies", lambda: plot_frequencies(torch.rand(2, 4), None), TypeError,
     r"'labels' must be a list of row names. Got NoneType"),
    ("plot_frequencies", lambda: plot_frequencies(torch.rand(2, 4), ["a"]), ValueError,
     r"'labels' must name each of the 2 rows. Got 1 labels"),
    ("glue", lambda: glue(3, 1.0), TypeError, r"'name' must be a str. Got int 3"),
    ("glue", lambda: glue("c", 1.0, display="yes"), TypeError,
     r"'display' must be True or False. Got str 'yes'"),
    # --- modlib.course.network -------------------------------------------------------------
    ("network_layout", lambda: network_layout([W]), TypeError,
     r"'weights' must be a non-empty dict \{layer name: W\} or a torch.nn.Module. Got list"),
    ("network_layout", lambda: network_layout({}), ValueError,
     r"'weights' must be a non-empty dict \{layer name: W\} or a torch.nn.Module. Got dict"),
    ("network_layout", lambda: network_layout({1: W}), TypeError,
     r"'weights key' must be a layer name \(str\). Got int 1"),
    ("network_layout", lambda: network_layout({"a": "x"}), TypeError,
     r"'weights\['a'\]' must be a torch.Tensor. Got str 'x'"),
    ("network_layout", lambda: network_layout({"a": torch.ones(3)}), ValueError,
     r"'weights\['a'\]' must be 2-D \(n_out, n_in\). Got shape \(3,\)"),
    ("network_layout", lambda: network_layout({"a": torch.ones(3, 2, dtype=torch.long)}),
     TypeError, r"'weights\['a'\]' must be a floating-point tensor. Got dtype torch.int64"),
    ("network_layout", lambda: network_layout({"a": W.clone().fill_(NAN)}), ValueError,
     r"'weights\['a'\]' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("network_layout", lambda: network_layout(GAP), ValueError,
     r"'weights' must be consecutive layers .* Layer 'b' of shape \(3, 5\) takes 5 inputs, but "
     r"layer 'a' before it gives 6 outputs"),
    ("network_layout", lambda: network_layout(NET, P), TypeError,
     r"'partitions' must be a dict \{layer name: Partition\} or None. Got Partition"),
    ("network_layout", lambda: network_layout(NET, {"a": 3}), TypeError,
     r"'partitions\['a'\]' must be a modlib Partition. Got int 3"),
    ("network_layout", lambda: network_layout(NET, {"b": P}), ValueError,
     r"'weights\['b'\]' of shape \(3, 6\) does not fit a partition of 6 rows and 4 columns"),
    ("network_layout", lambda: network_layout(NET, {"c": P}), ValueError,
     r"'partitions' names layers that are not in the weights: \['c'\]. Known: \['a', 'b'\]"),
    ("network_layout", lambda: network_layout(NET, layers=["c"]), ValueError,
     r"'layers' names layers that are not in 'weights': \['c'\]"),
    ("network_layout", lambda: network_layout(NET, layers="a"), TypeError,
     r"'layers' must be a list of layer names. Got str 'a'"),
    ("network_layout", lambda: network_layout(NET, max_neurons=1), ValueError,
     r"'max_neurons' must be an int >= 2. Got 1"),
    ("plot_network", lambda: plot_network(None), TypeError,
     r"'weights' must be a non-empty dict \{layer name: W\} or a torch.nn.Module. Got None"),
    ("plot_network", lambda: plot_network(GAP), ValueError,
     r"'weights' must be consecutive layers"),
    ("plot_network", lambda: plot_network(mlp(), layers=["1"]), ValueError,
     r"'layers' names modules that are not Linear/Conv2d/Conv1D layers of the model: \['1'\]"),
    ("plot_network", lambda: plot_network(mlp(), {"9": P}), ValueError,
     r"'partitions' names layers that are not in the weights: \['9'\]"),
    *[("plot_network", lambda top=top: plot_network(NET, top=top), error,
       r"'top' must be a fraction in \(0, 1\] or a count >= 1 of the edges drawn per layer. "
       + got) for top, error, got in [(0, ValueError, "Got 0"), (0.0, ValueError, "Got 0.0"),
                                       (1.5, ValueError, "Got 1.5"), (NAN, ValueError, "Got nan"),
                                       ("all", TypeError, "Got str 'all'"),
                                       (True, TypeError, "Got bool True")]],
    ("plot_network", lambda: plot_network(NET, title=3), TypeError,
     r"'title' must be a str or None. Got int 3"),
    ("plot_network", lambda: plot_network(NET, legend="yes"), TypeError,
     r"'legend' must be True or False. Got str 'yes'"),
    ("plot_network", lambda: plot_network(NET, ax="ax"), TypeError,
     r"'ax' must be matplotlib Axes or None. Got str 'ax'"),
    ("plot_networks", lambda: plot_networks(None), TypeError,
     r"'runs' must be a non-empty dict \{run name: weights\}. Got None"),
    ("plot_networks", lambda: plot_networks({}), ValueError,
     r"'runs' must be a non-empty dict \{run name: weights\}. Got dict \{\}"),
    ("plot_networks", lambda: plot_networks({1: NET}), TypeError,
     r"'runs key' must be a run name \(str\). Got int 1"),
    ("plot_networks", lambda: plot_networks({"a": 3}), TypeError,
     r"'runs\['a'\]' must be a non-empty dict \{layer name: W\} or a torch.nn.Module. Got 3"),
    ("plot_networks", lambda: plot_networks({"x": GAP}), ValueError,
     r"'runs\['x'\]' must be consecutive layers"),
    ("plot_networks", lambda: plot_networks({"a": NET}, {"b": {"a": P}}), ValueError,
     r"'partitions' given per run names runs that are not in 'runs': \['b'\]"),
    ("plot_networks", lambda: plot_networks({"a": NET}, suptitle=1), TypeError,
     r"'suptitle' must be a str or None. Got int 1"),
    ("plot_network_frames", lambda: plot_network_frames(None), TypeError,
     r"'snapshots' must be a non-empty list of \(label, weights\) pairs.* Got None"),
    ("plot_network_frames", lambda: plot_network_frames([]), ValueError,
     r"'snapshots' must be a non-empty list of \(label, weights\) pairs.* Got an empty list"),
    ("plot_network_frames", lambda: plot_network_frames({"s": NET}), TypeError,
     r"'snapshots' must be a non-empty list of \(label, weights\) pairs.* Got dict"),
    ("plot_network_frames", lambda: plot_network_frames([NET]), TypeError,
     r"'snapshots\[0\]' must be a \(label, weights\) pair. Got dict"),
    ("plot_network_frames", lambda: plot_network_frames([(1.5, NET)]), TypeError,
     r"'snapshots\[0\]' label must be a str or an int \(a step\). Got float 1.5"),
    ("plot_network_frames", lambda: plot_network_frames([(0, None)]), TypeError,
     r"'snapshots\[0\] weights' must be a non-empty dict \{layer name: W\}"),
    ("plot_network_frames", lambda: plot_network_frames([(0, NET)], ncols=0), ValueError,
     r"'ncols' must be an int >= 1 or None. Got 0"),
    ("network_animation", lambda: network_animation([]), ValueError,
     r"'snapshots' must be a non-empty list of \(label, weights\) pairs"),
    ("network_animation", lambda: network_animation([(0, NET)], interval=0), ValueError,
     r"'interval' must be an int >= 1. Got 0"),
    ("network_animation", lambda: network_animation([(0, NET)], top=-1), ValueError,
     r"'top' must be a fraction in \(0, 1\] or a count >= 1"),
    ("network_animation", lambda: network_animation([(0, GAP)]), ValueError,
     r"'snapshots\[0\] weights' must be consecutive layers"),
    ("snapshot_weights", lambda: snapshot_weights(None), TypeError,
     r"'model' must be a torch.nn.Module. Got None"),
    ("snapshot_weights", lambda: snapshot_weights(mlp(), ["1"]), ValueError,
     r"'layers' names modules that are not Linear/Conv2d/Conv1D layers of the model: \['1'\]. "
     r"Known: \['0', '2', '4'\]"),
    ("snapshot_weights", lambda: snapshot_weights(mlp(), "0"), TypeError,
     r"'layers' must be a list of layer names. Got str '0'"),
    ("snapshot_weights", lambda: snapshot_weights(nn.ReLU()), ValueError,
     r"'model' \(ReLU\) has no Linear/Conv2d/Conv1D layer"),
    # --- modlib.course.widgets -------------------------------------------------------------
    ("plot_planted", lambda: plot_planted(noise=NAN), ValueError,
     r"'noise' must be a finite real >= 0. Got nan"),
    ("plot_planted", lambda: plot_planted(k=0), ValueError, r"'k' must be an int >= 1. Got 0"),
    ("plot_planted", lambda: plot_planted(k=50), ValueError, r"'k' must be an int in \[1, 40\]"),
    ("plot_planted", lambda: plot_planted(seed="a"), TypeError,
     r"'seed' must be an int. Got str 'a'"),
    ("plot_planted", lambda: plot_planted(n_out=None), TypeError,
     r"'n_out' must be an int >= 1. Got None"),
    ("tradeoff_explorer", lambda: tradeoff_explorer([]), ValueError, r"'rows' is empty"),
    ("tradeoff_explorer", lambda: tradeoff_explorer(None), TypeError,
     r"'rows' must be a list of dicts"),
    ("tradeoff_explorer", lambda: tradeoff_explorer(ROWS, metric="loss"), ValueError,
     r"'rows\[0\]' must hold the keys .* Missing: \['loss'\]"),
    ("plot_layer_scores", lambda: plot_layer_scores({}, 2), ValueError, r"'scores' is empty"),
    ("plot_layer_scores", lambda: plot_layer_scores(None, 2), TypeError,
     r"'scores' must be a dict \{layer name: LayerScore\}. Got None"),
    ("plot_layer_scores", lambda: plot_layer_scores({"a": 0.5}, 2), TypeError,
     r"'scores\['a'\]' must be a modlib LayerScore. Got float 0.5"),
    ("plot_layer_scores", lambda: plot_layer_scores({"a": SCORE}, 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("plot_layer_scores", lambda: plot_layer_scores({"a": SCORE}, None), TypeError,
     r"'k' must be an int >= 1. Got None"),
    ("plot_layer_scores", lambda: plot_layer_scores({"a": SCORE}, 2, title=1), TypeError,
     r"'title' must be a str or None. Got int 1"),
    ("plot_lm_history", lambda: plot_lm_history({}), ValueError, r"'histories' is empty"),
    ("plot_lm_history", lambda: plot_lm_history({"a": H}, window=0), ValueError,
     r"'window' must be an int >= 1. Got 0"),
    ("plot_lm_history", lambda: plot_lm_history(None), TypeError,
     r"'histories' must be a dict \{run name: History\}. Got None"),
    ("plot_lm_history", lambda: plot_lm_history({"a": []}), TypeError,
     r"'histories\['a'\]' must be a modlib History. Got list"),
    ("plot_lm_history", lambda: plot_lm_history({"a": H}, k=0), ValueError,
     r"'k' must be an int >= 1 or None. Got 0"),
    ("plot_lm_layer", lambda: plot_lm_layer({}, {"2": P8}, "2"), ValueError,
     r"'models' is empty"),
    ("plot_lm_layer", lambda: plot_lm_layer({"a": mlp()}, {"2": P8}, "9"), ValueError,
     r"'layer' must be one of \['2'\]. Got '9'"),
    ("plot_lm_layer", lambda: plot_lm_layer({"a": mlp()}, {"2": P8}, None), TypeError,
     r"'layer' must be a layer name \(str\). Got None"),
    ("plot_lm_layer", lambda: plot_lm_layer({"a": None}, {"2": P8}, "2"), TypeError,
     r"'models\['a'\]' must be a torch.nn.Module. Got None"),
    ("plot_lm_layer", lambda: plot_lm_layer([mlp()], {"2": P8}, "2"), TypeError,
     r"'models' must be a dict \{run name: model\}. Got list"),
    ("plot_lm_layer", lambda: plot_lm_layer({"a": mlp()}, {"2": 3}, "2"), TypeError,
     r"'partitions\['2'\]' must be a modlib Partition. Got int 3"),
    ("plot_lm_layer", lambda: plot_lm_layer({"a": mlp()}, None, "2"), TypeError,
     r"'partitions' must be a dict \{layer name: Partition\}. Got None"),
    ("plot_kind_ablation", lambda: plot_kind_ablation({}), ValueError, r"'results' is empty"),
    ("plot_kind_ablation", lambda: plot_kind_ablation(None), TypeError,
     r"'results' must be a dict \{model name: AblationResult\}. Got None"),
    ("plot_kind_ablation", lambda: plot_kind_ablation({"a": torch.ones(2, 2)}), TypeError,
     r"'results\['a'\]' must be a modlib AblationResult. Got Tensor"),
    ("lm_layer_explorer", lambda: lm_layer_explorer({"a": None}, {}), ValueError,
     r"'partitions' is empty"),
    ("lm_layer_explorer", lambda: lm_layer_explorer({}, {"x": None}), ValueError,
     r"'models' is empty"),
    ("lm_layer_explorer", lambda: lm_layer_explorer({"a": None}, {"2": P8}), TypeError,
     r"'models\['a'\]' must be a torch.nn.Module. Got None"),
    ("lm_layer_explorer", lambda: lm_layer_explorer(None, {"2": P8}), TypeError,
     r"'models' must be a dict \{run name: model\}. Got None"),
    ("lm_layer_explorer", lambda: lm_layer_explorer({"a": mlp()}, {"2": "p"}), TypeError,
     r"'partitions\['2'\]' must be a modlib Partition. Got str 'p'"),
    # --- modlib.course.student -------------------------------------------------------------
    ("stub_source", lambda: stub_source(None), TypeError,
     r"'source' must be a str of Python code. Got None"),
    ("stub_source", lambda: stub_source(["def f(): pass"]), TypeError,
     r"'source' must be a str of Python code. Got list"),
    ("colab_url", lambda: colab_url(None), TypeError,
     r"'name' must be a notebook name \(str\). Got None"),
    ("colab_url", lambda: colab_url(""), ValueError,
     r"'name' must be a notebook name such as '00_setup'. Got ''"),
    ("colab_url", lambda: colab_url("a/b"), ValueError,
     r"'name' must be a notebook name such as '00_setup'. Got 'a/b'"),
    ("install_source", lambda: install_source(3), TypeError,
     r"'root' must be a str or Path of the repository root, or None. Got int 3"),
    ("install_source", lambda: install_source(NO_ROOT), ValueError,
     r"'root' must be a repository root holding _config.yml. Got '/nonexistent/modlib-root'"),
    ("sync_repository", lambda: sync_repository(3), TypeError,
     r"'root' must be a str or Path of the repository root, or None. Got int 3"),
    ("sync_repository", lambda: sync_repository(NO_ROOT), ValueError,
     r"'root' must be a repository root holding _config.yml"),
    ("make_student_notebook", lambda: make_student_notebook(None, "x.ipynb"), TypeError,
     r"'src' must be a str or Path. Got None"),
    ("make_student_notebook", lambda: make_student_notebook("x.ipynb", 3), TypeError,
     r"'dst' must be a str or Path. Got int 3"),
    ("make_student_notebooks", lambda: make_student_notebooks(None), TypeError,
     r"'src_dir' must be a str or Path. Got None"),
    ("make_student_notebooks", lambda: make_student_notebooks("notebooks", 3), TypeError,
     r"'dst_dir' must be a str or Path. Got int 3"),
    # --- modlib.course.exercises: a bad seed, refused before the learner's function runs ------
    ("fallback_check", lambda: fallback_check(None), TypeError,
     r"'source' must be a str of Python code. Got None"),
    ("student_link", lambda: student_link(None), TypeError,
     r"'name' must be a notebook name \(str\). Got None"),
    ("student_link", lambda: student_link("00_setup", NO_ROOT), ValueError,
     r"'root' must be a repository root holding _config.yml"),
    ("reference", lambda: exercises.reference(3), TypeError, r"'name' must be a str"),
    ("reference", lambda: exercises.reference("nope"), ValueError, r"'name' .*Known: "),
    *[(name, functools.partial(getattr(exercises, name), wrong, seed=seed), error, match)
      for name in CHECKERS
      for seed, error, match in [("a", TypeError, r"'seed' must be an int. Got str 'a'"),
                                 (None, TypeError, r"'seed' must be an int. Got None"),
                                 (1.5, TypeError, r"'seed' must be an int. Got float 1.5"),
                                 (True, TypeError, r"'seed' must be an int. Got bool True")]],
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name, call, error, match", CASES, ids=row_ids(CASES))
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, match):
    assert_refused(call, error, match)


@pytest.mark.parametrize("name", CHECKERS)
def test_checkers_report_a_non_function_without_raising(name, capsys):
    """A checker never crashes a notebook: a non-callable ``fn`` is a printed ✗ and False."""
    for fn in (None, 3, "f", {}):
        assert getattr(exercises, name)(fn) is False
        out = capsys.readouterr().out
        assert out.startswith("✗") and "expected a function" in out, out


def test_every_public_name_has_a_bad_input_row():
    """A public name (in an ``__all__``) without a row here, and not allow-listed, fails."""
    assert_every_name_has_a_row(CASES, public_names(), ALLOWED_WITHOUT_ROW)


def test_allow_list_holds_only_constants_and_functions_without_arguments():
    """The allow-list is not a way around a row: every entry takes no argument to check."""
    for name in ALLOWED_WITHOUT_ROW:
        value = next(getattr(m, name) for m in MODULES if name in m.__all__)
        is_constant = isinstance(value, (str, tuple))
        no_arguments = callable(value) and not inspect.signature(value).parameters
        assert is_constant or no_arguments, name


def test_every_row_is_well_formed():
    """Rows are (name, call, TypeError or ValueError, regex quoting the argument it names)."""
    for name, call, error, match in CASES:
        assert isinstance(name, str) and callable(call), name
        assert error in (TypeError, ValueError), name
        assert "'" in match, (name, match)
