"""Every public name of modlib.core, modlib.analysis and modlib.hooks refuses bad input up front.

In the style of scikit-learn's ``test_common``: one table of bad calls, each with the exception
it must raise and the words its message must hold (the argument's name and what is expected), so
that no bad input ends in an error from inside torch, numpy or Python, or in a silent NaN or
empty result. :func:`test_every_public_name_has_a_bad_input_row` fails when a new public name
(one in an ``__all__`` of those packages) comes without a row here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import pkgutil
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import modlib.analysis
import modlib.core
import modlib.hooks
from modlib.analysis.circuits import (
    class_circuits,
    class_examples,
    compare_circuit_sizes,
    effective_circuit_size,
    jaccard_matrix,
    prune_circuit,
)
from modlib.analysis.fourier import (
    ablation_spectra,
    activation_table,
    all_pairs,
    basis_labels,
    cluster_frequencies,
    cluster_spectra,
    embedding_frequencies,
    energy_kept,
    fourier_basis,
    frequency_norms,
    key_frequencies,
    logit_frequencies,
    neuron_frequencies,
    selective_clusters,
    table_frequencies,
)
from modlib.analysis.interp import (
    AblationResult,
    ablate,
    ablate_clusters,
    class_accuracy,
    cluster_ablation,
    control_verdict,
    specialization,
    specialization_summary,
)
from modlib.analysis.llm import attention_layers, family, mlp_layers, spectral_partitions
from modlib.analysis.lm_interp import (
    ablate_by_kind,
    layer_scores,
    loss_by_kind,
    perplexity,
    token_kind,
    token_kinds,
    token_losses,
)
from modlib.analysis.patching import (
    circuit,
    circuit_size,
    edge_attributions,
    inside_share,
    jaccard,
    true_edge_effects,
)
from modlib.analysis.truth import PlantedCircuit, circuit_recovery, planted_circuit
from modlib.core.graph import aligned_partitions, default_layers, layer_matrix, weight_layers
from modlib.core.loss import ClusterabilityLoss, ScatteredMaskLoss
from modlib.core.metrics import chance_level, clusterability, near_zero_share, random_baseline
from modlib.core.null import scale_matched, shuffle_test
from modlib.core.partition import (
    Partition,
    check_partition,
    check_partitions,
    contiguous_labels,
    contiguous_partition,
)
from modlib.core.refine import refine_partition
from modlib.core.spectral import (
    choose_k,
    normalized_matrix,
    spectral_cocluster,
    spectral_embedding,
)
from modlib.core.stats import group_seeds, mean_interval, t_quantile
from modlib.core.toy import planted_matrix
from modlib.hooks import (
    capture,
    capture_once,
    eval_mode,
    forward_hooks,
    frozen_prefix,
    masked_weights,
    record,
    replace_forward,
    zero_outputs,
)
from modlib.training.models import ModAddTransformer, tiny_gpt2
from modlib.training.text import ByteTokenizer
from tests.badinput import assert_every_name_has_a_row, assert_refused, row_ids

# Public names that take no argument to check: type aliases, constants, and the frozen result
# records the library itself returns (their fields are filled by the functions that check).
ALLOWED_WITHOUT_ROW = {
    "Mode", "Method", "Family", "Which",  # typing.Literal aliases
    "Call",  # a tuple type alias of modlib.hooks
    "KINDS", "NULLS",  # constant tuples of str
    "KindAblation",  # an alias of AblationResult
    "ShuffleTest", "Planted", "SpectralEmbedding", "AblationResult", "SizeVerdict",
    "LayerScore", "Interval",  # result records (dataclasses) returned by the library
}

PACKAGES = (modlib.core, modlib.analysis)


def public_names() -> set[str]:
    """Every name in the ``__all__`` of modlib.hooks and of each module of core and analysis."""
    modules = [modlib.hooks]
    for package in PACKAGES:
        for info in pkgutil.iter_modules(package.__path__):
            modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    return {name for m in modules for name in getattr(m, "__all__", ())}


# --- small inputs, built once -------------------------------------------------------------------

W = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
P = contiguous_partition(6, 4, 2)
P8 = contiguous_partition(8, 8, 2)
X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
Y = torch.tensor([0, 1, 2, 0, 1, 2])
MASK = {"l": torch.ones(2, 2, dtype=torch.bool)}
NONE = {"l": torch.zeros(2, 2, dtype=torch.bool)}
P2 = Partition(torch.tensor([0, 1]), torch.tensor([0, 1]), k=2)
NAN = float("nan")
INF = float("inf")


@functools.cache
def mlp() -> nn.Sequential:
    """Linear layers '0' (4 → 8), '2' (8 → 8), '4' (8 → 3)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def zero_model() -> nn.Sequential:
    """A classifier that always answers class 0 (ties go to the first logit)."""
    model = nn.Sequential(nn.Linear(4, 3))
    nn.init.zeros_(model[0].weight)
    nn.init.zeros_(model[0].bias)
    return model


@functools.cache
def mod_add() -> ModAddTransformer:
    torch.manual_seed(0)
    return ModAddTransformer(5, d_model=8, d_mlp=16)


@functools.cache
def gpt() -> nn.Module:
    torch.manual_seed(0)
    return tiny_gpt2(20, n_layer=1, n_embd=16)


FC = "transformer.h.0.mlp.c_fc"
BLOCKS = torch.arange(20).repeat(2, 1)[:, :9]
KIND_OF_ID = torch.arange(20) % 5


def enter(cm: contextlib.AbstractContextManager) -> None:
    """Enter and leave a context manager: its checks run on entry."""
    with cm:
        pass


def quiet(call):
    """Run ``call`` with deprecation warnings silenced (random_baseline warns first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call()


def changed_layer_loss() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3))
    loss = ClusterabilityLoss(model, 2)
    model[1].weight = nn.Parameter(torch.ones(8, 6))  # reshaped after the loss was built
    loss()


def ablation_result(controls: list[float]) -> AblationResult:
    return AblationResult(torch.eye(2), torch.ones(2), 0.9, 0.1, torch.zeros(2, 2), controls)


ENERGY = torch.tensor([[0.0, 4.0, 4.0], [0.0, 1.0, 4.0], [0.0, 4.0, 2.0]])
KEYS = {0: [1], 1: [2]}

# (name covered, call, exception, regex of the message)
CASES = [
    # --- modlib.core.partition -------------------------------------------------------------
    ("Partition", lambda: Partition([0, 1], torch.tensor([0]), 2), TypeError,
     r"'rows' must be a torch.Tensor of integer labels. Got list"),
    ("Partition", lambda: Partition(torch.tensor([0.0]), torch.tensor([0]), 1), TypeError,
     r"'rows' must hold integer labels. Got dtype torch.float32"),
    ("Partition", lambda: Partition(torch.tensor([0]), torch.tensor([0]), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("Partition", lambda: Partition(torch.tensor([0]), torch.tensor([0]), 2.0), TypeError,
     r"'k' must be an int >= 1. Got float 2.0"),
    ("Partition", lambda: Partition(torch.tensor([0]), torch.tensor([0]), None), TypeError,
     r"'k' must be an int >= 1. Got None"),
    ("Partition", lambda: Partition(torch.tensor([0, 2]), torch.tensor([0]), 2), ValueError,
     r"'rows' labels must lie in \[0, 2\) for k=2. Got values in \[0, 2\]"),
    ("Partition", lambda: Partition(torch.tensor([0]), torch.tensor([-1]), 2), ValueError,
     r"'cols' labels must lie in \[0, 2\)"),
    ("Partition", lambda: Partition(torch.zeros(2, 2).long(), torch.tensor([0]), 2), ValueError,
     r"'rows' must be 1-D. Got shape \(2, 2\)"),
    ("Partition", lambda: P.check_fits([[1.0]]), TypeError, r"'W' must be a torch.Tensor"),
    ("Partition", lambda: P.permute(torch.ones(3, 3)), ValueError,
     r"'W' of shape \(3, 3\) does not fit a partition of 6 rows and 4 columns"),
    ("Partition", lambda: P.to(5), TypeError, r"'device' must be a torch.device or str. Got 5"),
    ("check_partition", lambda: check_partition(4), TypeError,
     r"'partition' must be a modlib Partition. Got int 4"),
    ("check_partition", lambda: check_partition(None, "p"), TypeError,
     r"'p' must be a modlib Partition. Got None"),
    ("check_partitions", lambda: check_partitions({}), ValueError,
     r"'partitions' must be a non-empty dict \{layer name: Partition\}"),
    ("check_partitions", lambda: check_partitions([P]), TypeError,
     r"'partitions' must be a non-empty dict \{layer name: Partition\}. Got list"),
    ("check_partitions", lambda: check_partitions({"a": 3}), TypeError,
     r"'partitions\['a'\]' must be a modlib Partition. Got int 3"),
    ("contiguous_labels", lambda: contiguous_labels(3, 4), ValueError,
     r"'k' must be an int in \[1, 3\] for 3 neurons. Got 4"),
    ("contiguous_labels", lambda: contiguous_labels(0, 1), ValueError,
     r"'n' must be an int >= 1. Got 0"),
    ("contiguous_labels", lambda: contiguous_labels(3, None), TypeError,
     r"'k' must be an int >= 1. Got None"),
    ("contiguous_partition", lambda: contiguous_partition(4, 6, 2, in_groups=4), ValueError,
     r"'in_groups' must be a positive divisor of n_in=6. Got 4"),
    ("contiguous_partition", lambda: contiguous_partition(4, 6, 2, in_groups=0), ValueError,
     r"'in_groups' must be an int >= 1. Got 0"),
    ("contiguous_partition", lambda: contiguous_partition(4.0, 6, 2), TypeError,
     r"'n_out' must be an int >= 1. Got float 4.0"),
    ("contiguous_partition", lambda: contiguous_partition(4, -6, 2), ValueError,
     r"'n_in' must be an int >= 1. Got -6"),
    # --- modlib.core.graph -----------------------------------------------------------------
    ("layer_matrix", lambda: layer_matrix(None), TypeError,
     r"'module' must be a torch.nn.Module. Got None"),
    ("layer_matrix", lambda: layer_matrix(nn.ReLU()), TypeError,
     r"No weight graph for module of type ReLU. Supported: nn.Linear"),
    ("layer_matrix", lambda: layer_matrix(nn.Conv2d(4, 4, 3, groups=2)), TypeError,
     r"No weight graph for module of type Conv2d with groups > 1"),
    ("weight_layers", lambda: weight_layers("resnet"), TypeError,
     r"'model' must be a torch.nn.Module. Got str 'resnet'"),
    ("default_layers", lambda: default_layers(mlp(), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("default_layers", lambda: default_layers(mlp(), 9), ValueError,
     r"No layer to cluster at k=9"),
    ("default_layers", lambda: default_layers(None, 2), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), 2, ["fc9"]), ValueError,
     r"'layers' has names that are not Linear/Conv2d/Conv1D modules of the model: \['fc9'\]"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), 2, []), ValueError,
     r"'layers' is empty"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), 2, "2"), TypeError,
     r"'layers' must be a list of layer names. Got str '2'"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), 9, ["2"]), ValueError,
     r"'k'=9 is larger than a side of layer '2'"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), NAN), TypeError,
     r"'k' must be an int >= 1. Got float nan"),
    ("aligned_partitions", lambda: aligned_partitions(mlp(), -1), ValueError,
     r"'k' must be an int >= 1. Got -1"),
    # --- modlib.core.metrics ---------------------------------------------------------------
    ("clusterability", lambda: clusterability(W, 4), TypeError,
     r"'partition' must be a modlib Partition. Got int 4"),
    ("clusterability", lambda: clusterability([[1.0, 2.0]], P), TypeError,
     r"'W' must be a torch.Tensor. Got list"),
    ("clusterability", lambda: clusterability(torch.ones(6), P), ValueError,
     r"'W' must be 2-D \(n_out, n_in\). Got shape \(6,\)"),
    ("clusterability", lambda: clusterability(torch.zeros(6, 4), P), ValueError,
     r"'W' of shape \(6, 4\) is all zeros"),
    ("clusterability", lambda: clusterability(W.clone().fill_(NAN), P), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("clusterability", lambda: clusterability(torch.ones(4, 4), P), ValueError,
     r"'W' of shape \(4, 4\) does not fit a partition of 6 rows and 4 columns"),
    ("clusterability", lambda: clusterability(torch.ones(6, 4).long(), P), TypeError,
     r"'W' must be a floating-point tensor. Got dtype torch.int64"),
    ("clusterability", lambda: clusterability(torch.ones(0, 4), P), ValueError,
     r"'W' is empty"),
    ("chance_level", lambda: chance_level(2), TypeError,
     r"'partition' must be a modlib Partition. Got int 2"),
    ("random_baseline", lambda: quiet(lambda: random_baseline(0)), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("random_baseline", lambda: quiet(lambda: random_baseline("4")), TypeError,
     r"'k' must be an int >= 1. Got str '4'"),
    ("near_zero_share", lambda: near_zero_share(torch.zeros(3, 2)), ValueError,
     r"'W' of shape \(3, 2\) is all zeros"),
    ("near_zero_share", lambda: near_zero_share(torch.ones(3, 2), rel=1.0), ValueError,
     r"'rel' must be a finite real > 0 and < 1. Got 1.0"),
    ("near_zero_share", lambda: near_zero_share(torch.ones(3, 2), rel="0.1"), TypeError,
     r"'rel' must be a finite real"),
    ("near_zero_share", lambda: near_zero_share(torch.tensor([[float("nan"), 1.0]])),
     ValueError, r"'W' of shape \(1, 2\) has 1 NaN/Inf entries"),
    # --- modlib.core.stats -----------------------------------------------------------------
    ("t_quantile", lambda: t_quantile(0), ValueError, r"'df' must be an int >= 1. Got 0"),
    ("group_seeds", lambda: group_seeds([]), ValueError, r"'rows' is empty"),
    ("group_seeds", lambda: group_seeds("rows"), TypeError, r"'rows' must be a list of dicts"),
    ("group_seeds", lambda: group_seeds([{"k": 4, "lam": 1.0}], ["accuracy"]), ValueError,
     r"'rows\[0\]' must hold the keys \['k', 'lam', 'accuracy'\]. Missing: \['accuracy'\]"),
    ("group_seeds", lambda: group_seeds([{"k": 4, "lam": 1.0}], [3]), TypeError,
     r"'keys\[0\]' must be a str"),
    ("t_quantile", lambda: t_quantile(2.0), TypeError, r"'df' must be an int >= 1. Got float"),
    ("mean_interval", lambda: mean_interval(0.5), TypeError,
     r"'values' must be a sequence of numbers. Got float"),
    ("mean_interval", lambda: mean_interval("0.5"), TypeError,
     r"'values' must be a sequence of numbers. Got str"),
    ("mean_interval", lambda: mean_interval([0.5, "x"]), TypeError,
     r"'values\[1\]' must be a number or None. Got str 'x'"),
    ("mean_interval", lambda: mean_interval([0.5], null=float("nan")), ValueError,
     r"'null' must be a finite real"),
    # --- modlib.core.null ------------------------------------------------------------------
    ("shuffle_test", lambda: shuffle_test(W, 2, n_shuffles=0, progress=False), ValueError,
     r"'n_shuffles' must be an int >= 1. Got 0"),
    ("shuffle_test", lambda: shuffle_test("W", 2), TypeError, r"'W' must be a torch.Tensor"),
    ("shuffle_test", lambda: shuffle_test(W, 0), ValueError, r"'k' must be an int >= 1. Got 0"),
    ("shuffle_test", lambda: shuffle_test(W, 5, progress=False), ValueError,
     r"'k' must be an int in \[1, 4\]"),
    ("shuffle_test", lambda: shuffle_test(W, 2, progress=1), TypeError,
     r"'progress' must be True or False. Got 1"),
    ("shuffle_test", lambda: shuffle_test(W, 2, seed=1.5), TypeError,
     r"'seed' must be an int. Got float 1.5"),
    ("shuffle_test", lambda: shuffle_test(W, 2, null="scale"), ValueError,
     r"'null' must be one of \('shuffle', 'scales'\). Got 'scale'"),
    ("scale_matched", lambda: scale_matched(torch.zeros(3, 4)), ValueError,
     r"'W' of shape \(3, 4\) is all zeros"),
    ("scale_matched", lambda: scale_matched(W, seed="0"), TypeError,
     r"'seed' must be an int. Got str '0'"),
    # --- modlib.core.toy -------------------------------------------------------------------
    ("planted_matrix", lambda: planted_matrix(k=0), ValueError, r"'k' must be an int >= 1"),
    ("planted_matrix", lambda: planted_matrix(6, 4, 5), ValueError,
     r"'k' must be an int in \[1, 4\]. Got 5"),
    ("planted_matrix", lambda: planted_matrix(noise=-1), ValueError,
     r"'noise' must be a finite real >= 0. Got -1.0"),
    ("planted_matrix", lambda: planted_matrix(noise=NAN), ValueError,
     r"'noise' must be a finite real >= 0. Got nan"),
    ("planted_matrix", lambda: planted_matrix(n_out=0), ValueError,
     r"'n_out' must be an int >= 1. Got 0"),
    ("planted_matrix", lambda: planted_matrix(n_in=None), TypeError,
     r"'n_in' must be an int >= 1. Got None"),
    ("planted_matrix", lambda: planted_matrix(shuffle="yes"), TypeError,
     r"'shuffle' must be True or False. Got str 'yes'"),
    # --- modlib.core.spectral --------------------------------------------------------------
    ("normalized_matrix", lambda: normalized_matrix(None), TypeError,
     r"'W' must be a torch.Tensor. Got None"),
    ("normalized_matrix", lambda: normalized_matrix(W.clone().fill_(INF)), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("spectral_embedding", lambda: spectral_embedding(W, 0), ValueError,
     r"'r' must be an int >= 1. Got 0"),
    ("spectral_embedding", lambda: spectral_embedding(W, 5), ValueError,
     r"'r' must be an int in \[1, 4\]. Got 5"),
    ("spectral_embedding", lambda: spectral_embedding(W, 2, seed="a"), TypeError,
     r"'seed' must be an int. Got str 'a'"),
    ("choose_k", lambda: choose_k(W, 1), ValueError, r"'k_max' must be an int >= 2. Got 1"),
    ("choose_k", lambda: choose_k(W, 4), ValueError,
     r"'k_max' must be an int in \[2, 3\]. Got 4 for W of shape \(6, 4\)"),
    ("choose_k", lambda: choose_k(W, "3"), TypeError, r"'k_max' must be an int >= 2. Got str '3'"),
    ("choose_k", lambda: choose_k(W, 2, seed=0.5), TypeError,
     r"'seed' must be an int. Got float 0.5"),
    ("choose_k", lambda: choose_k(W[:2], 2), ValueError,
     r"'W' must have at least 3 rows and 3 columns to choose k. Got shape \(2, 4\)"),
    ("choose_k", lambda: choose_k(W.clone().fill_(NAN), 2), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("choose_k", lambda: choose_k(W.long(), 2), TypeError,
     r"'W' must be a floating-point tensor. Got dtype torch.int64"),
    ("spectral_cocluster", lambda: spectral_cocluster(W, 2, n_init=0), ValueError,
     r"'n_init' must be an int >= 1. Got 0"),
    ("spectral_cocluster", lambda: spectral_cocluster(W, 2.5), TypeError,
     r"'k' must be an int >= 1. Got float 2.5"),
    ("spectral_cocluster", lambda: spectral_cocluster(torch.zeros(6, 4), 2), ValueError,
     r"'W' of shape \(6, 4\) is all zeros"),
    ("spectral_cocluster", lambda: spectral_cocluster(torch.ones(3, 3, 3), 2), ValueError,
     r"'W' must be 2-D"),
    ("spectral_cocluster", lambda: spectral_cocluster(W, 2, refine="yes"), TypeError,
     r"'refine' must be True or False. Got str 'yes'"),
    # --- modlib.core.refine ----------------------------------------------------------------
    ("refine_partition", lambda: refine_partition(W, P, max_sweeps=0), ValueError,
     r"'max_sweeps' must be an int >= 1. Got 0"),
    ("refine_partition", lambda: refine_partition(W, P, max_sweeps=None), TypeError,
     r"'max_sweeps' must be an int >= 1. Got None"),
    ("refine_partition", lambda: refine_partition(W, "P"), TypeError,
     r"'partition' must be a modlib Partition. Got str 'P'"),
    ("refine_partition", lambda: refine_partition(W.T, P), ValueError,
     r"'W' of shape \(4, 6\) does not fit a partition of 6 rows and 4 columns"),
    ("refine_partition", lambda: refine_partition(torch.zeros(6, 4), P), ValueError,
     r"'W' of shape \(6, 4\) is all zeros"),
    ("refine_partition", lambda: refine_partition(W.clone().fill_(NAN), P), ValueError,
     r"'W' of shape \(6, 4\) has 24 NaN/Inf entries"),
    ("refine_partition", lambda: refine_partition(W.long(), P), TypeError,
     r"'W' must be a floating-point tensor. Got dtype torch.int64"),
    # --- modlib.core.loss ------------------------------------------------------------------
    ("ClusterabilityLoss", lambda: ClusterabilityLoss("m", 2), TypeError,
     r"'model' must be a torch.nn.Module. Got str 'm'"),
    ("ScatteredMaskLoss", lambda: ScatteredMaskLoss(mlp(), 2, seed="0"), TypeError,
     r"'seed' must be an int. Got str '0'"),
    ("ScatteredMaskLoss", lambda: ScatteredMaskLoss(mlp(), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, layers=[]), ValueError,
     r"'layers' is empty"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, layers="2"), TypeError,
     r"'layers' must be a list of layer names. Got str '2'"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, layers=["fc9"]), ValueError,
     r"'layers' has names that are not Linear/Conv2d/Conv1D modules of the model"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, partitions=[P8]), TypeError,
     r"'partitions' must be a dict \{layer name: Partition\}. Got list"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, partitions={"2": 3}), TypeError,
     r"'partitions\['2'\]' must be a modlib Partition. Got int 3"),
    ("ClusterabilityLoss",
     lambda: ClusterabilityLoss(mlp(), 2, partitions={"2": contiguous_partition(8, 8, 4)}),
     ValueError, r"'partitions' entry '2' has k=4 and shape \(8, 8\); layer '2' needs k=2"),
    ("ClusterabilityLoss", lambda: ClusterabilityLoss(mlp(), 2, partitions={"fc9": P8}),
     ValueError, r"'layers' has names that are not Linear/Conv2d/Conv1D modules"),
    ("ClusterabilityLoss", changed_layer_loss, ValueError,
     r"Layer '1' has changed since the loss was built: its weight was \(8, 8\)"),
    # --- modlib.hooks ----------------------------------------------------------------------
    ("eval_mode", lambda: enter(eval_mode(None)), TypeError,
     r"'model' must be a torch.nn.Module. Got None"),
    ("forward_hooks", lambda: enter(forward_hooks([mlp()], lambda n, m: None)), TypeError,
     r"'modules' must be a dict \{name: nn.Module\}. Got list"),
    ("forward_hooks", lambda: enter(forward_hooks({"0": mlp()[0]}, None)), TypeError,
     r"'make_hook' must be callable. Got None"),
    ("forward_hooks", lambda: enter(forward_hooks({"0": mlp()[0]}, print, pre="x")), TypeError,
     r"'pre' must be True or False. Got str 'x'"),
    ("record", lambda: enter(record(mlp(), ["x"])), ValueError,
     r"'names' names layers that are not in the model: \['x'\]"),
    ("record", lambda: enter(record(mlp(), [1])), TypeError,
     r"'names' must hold layer names \(str\). Got 1"),
    ("record", lambda: enter(record(mlp(), ["0"], detach=1)), TypeError,
     r"'detach' must be True or False. Got 1"),
    ("record", lambda: enter(record(None, ["0"])), TypeError,
     r"'model' must be a torch.nn.Module. Got None"),
    ("capture", lambda: enter(capture({"a": 3})), TypeError,
     r"'modules\['a'\]' must be a torch.nn.Module. Got 3"),
    ("capture", lambda: enter(capture(None)), TypeError, r"'modules' must be a dict"),
    ("capture_once", lambda: capture_once("m", {}), TypeError,
     r"'model' must be a torch.nn.Module. Got str 'm'"),
    ("capture_once", lambda: capture_once(mlp(), {"0": mlp()[0]}), TypeError,
     r"'args' is empty: pass the model's inputs"),
    ("capture_once", lambda: capture_once(mlp(), {"x": nn.Linear(2, 2)}, X), ValueError,
     r"Layer 'x' ran 0 times in one forward pass"),
    ("zero_outputs", lambda: enter(zero_outputs({"0": mlp()[0]}, {"0": torch.ones(8)})),
     TypeError, r"'units\['0'\]' must be a bool tensor. Got Tensor of dtype torch.float32"),
    ("zero_outputs", lambda: enter(zero_outputs({"0": mlp()[0]}, [1])), TypeError,
     r"'units' must be a dict \{name: bool mask\}. Got list"),
    ("zero_outputs", lambda: enter(zero_outputs({"0": mlp()[0]}, {})), ValueError,
     r"'units' must be a dict with one mask per module of 'modules' \['0'\]"),
    ("zero_outputs",
     lambda: enter(zero_outputs({"0": mlp()[0]}, {"0": torch.ones(3, dtype=torch.bool)})),
     ValueError, r"'units\['0'\]' must have one entry per output unit of the module \(8\)"),
    ("zero_outputs",
     lambda: enter(zero_outputs({"0": mlp()[0]}, {"0": torch.ones(2, 4, dtype=torch.bool)})),
     ValueError, r"'units\['0'\]' must be 1-D \(n_out,\)"),
    ("masked_weights",
     lambda: enter(masked_weights({"0": mlp()[0]}, {"x": torch.ones(8, 4, dtype=torch.bool)})),
     ValueError, r"'keep' names modules that are not in 'modules': 'x'"),
    ("masked_weights", lambda: enter(masked_weights({"0": mlp()[0]}, None)), TypeError,
     r"'keep' must be a dict .*Got None"),
    ("masked_weights", lambda: enter(masked_weights({"0": mlp()[0]}, {"0": torch.ones(8, 4)})),
     TypeError, r"'keep\['0'\]' must be a bool tensor. Got dtype torch.float32"),
    ("masked_weights",
     lambda: enter(masked_weights({"0": mlp()[0]}, {"0": torch.ones(4, 8, dtype=torch.bool)})),
     ValueError, r"'keep\['0'\]' must be a mask of the weight's shape \(8, 4\)"),
    ("masked_weights",
     lambda: enter(masked_weights({"r": nn.ReLU()}, {"r": torch.ones(1, dtype=torch.bool)})),
     ValueError, r"'modules\['r'\]' must have a weight tensor. Got None"),
    ("replace_forward", lambda: enter(replace_forward(mlp()[0], 3)), TypeError,
     r"'forward' must be callable. Got 3"),
    ("replace_forward", lambda: enter(replace_forward(None, print)), TypeError,
     r"'module' must be a torch.nn.Module. Got None"),
    ("frozen_prefix", lambda: enter(frozen_prefix(mlp(), mlp()[2], X)), TypeError,
     r"'first' must be a non-empty list of modules. Got Linear"),
    ("frozen_prefix", lambda: enter(frozen_prefix(mlp(), [], X)), TypeError,
     r"'first' must be a non-empty list of modules. Got list \[\]"),
    ("frozen_prefix", lambda: enter(frozen_prefix(mlp(), [3], X)), TypeError,
     r"'first' must be a torch.nn.Module. Got 3"),
    ("frozen_prefix", lambda: enter(frozen_prefix(mlp(), [mlp()[2]], [[1.0]])), TypeError,
     r"'X' must be a torch.Tensor. Got list"),
    # --- modlib.analysis.interp ------------------------------------------------------------
    ("ablate", lambda: enter(ablate(mlp(), {"2": P8}, 2)), ValueError,
     r"'cluster' must be an int >= 0 and <= 1. Got 2"),
    ("ablate", lambda: enter(ablate(mlp(), {"2": P8}, 0, mode="of")), ValueError,
     r"'mode' must be one of \('off', 'on'\). Got 'of'"),
    ("ablate", lambda: enter(ablate(mlp(), {}, 0)), ValueError,
     r"'partitions' must be a non-empty dict \{layer name: Partition\}"),
    ("ablate", lambda: enter(ablate(mlp(), {"2": 4}, 0)), TypeError,
     r"'partitions\['2'\]' must be a modlib Partition. Got int 4"),
    ("ablate", lambda: enter(ablate(mlp(), {"x": P8}, 0)), ValueError,
     r"'partitions' names layers that are not in the model: \['x'\]"),
    ("ablate", lambda: enter(ablate(None, {"2": P8}, 0)), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("ablate", lambda: enter(ablate(mlp(), {"0": P}, 0)), ValueError,
     r"'partitions' entry '0' has 6 rows; layer '0' has 8 output neurons"),
    ("ablate", lambda: enter(ablate(mlp(), {"0": contiguous_partition(8, 4, 4), "2": P8}, 0)),
     ValueError, r"'partitions' must all have the same k"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [], 3), ValueError,
     r"'loader' holds no example"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [(X[:0], Y[:0])], 3), ValueError,
     r"'loader' holds no example"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [(X, Y)], 0), ValueError,
     r"'n_classes' must be an int >= 1. Got 0"),
    ("class_accuracy", lambda: class_accuracy(mlp(), 5, 3), TypeError,
     r"'loader' must be an iterable of \(X, y\) batches. Got 5"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [X], 3), TypeError,
     r"'loader' must yield \(X, y\) batches. Got Tensor"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [(X, Y)], 2), ValueError,
     r"Labels must lie in \[0, 2\) for n_classes=2"),
    ("class_accuracy", lambda: class_accuracy(mlp(), [(X, Y.float())], 3), TypeError,
     r"'loader y' must be an integer tensor"),
    ("class_accuracy", lambda: class_accuracy("m", [(X, Y)], 3), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("ablate_clusters", lambda: ablate_clusters(mlp(), {"2": P8}, [], n_classes=3), ValueError,
     r"'loader' holds no example"),
    ("ablate_clusters", lambda: ablate_clusters(mlp(), {"2": P8}, [(X, Y)], n_classes=3,
                                                n_controls=0),
     ValueError, r"'n_controls' must be an int >= 1. Got 0"),
    ("ablate_clusters", lambda: ablate_clusters(mlp(), {"2": P8}, [(X, Y)], n_classes=3,
                                                min_drop=NAN),
     ValueError, r"'min_drop' must be a finite real > 0 and <= 1. Got nan"),
    ("ablate_clusters", lambda: ablate_clusters(mlp(), {}, [(X, Y)], n_classes=3), ValueError,
     r"'partitions' must be a non-empty dict"),
    ("cluster_ablation", lambda: cluster_ablation(mlp(), {"2": P8}, 5), TypeError,
     r"'measure' must be callable. Got 5"),
    ("cluster_ablation", lambda: cluster_ablation(mlp(), {"2": P8}, lambda: torch.tensor(1.0)),
     ValueError, r"'measure' must return a non-empty 1-D tensor"),
    ("cluster_ablation", lambda: cluster_ablation(mlp(), {"2": P8}, lambda: torch.ones(3),
                                                  scored=torch.ones(2, dtype=torch.bool)),
     ValueError, r"'scored' must be a bool tensor of the shape of measure\(\)'s result \(3,\)"),
    ("cluster_ablation", lambda: cluster_ablation(mlp(), {"2": P8}, lambda: torch.ones(3),
                                                  lower_is_better="no"),
     TypeError, r"'lower_is_better' must be True or False"),
    ("cluster_ablation", lambda: cluster_ablation(mlp(), {"2": P8}, lambda: torch.ones(3),
                                                  seed=None),
     TypeError, r"'seed' must be an int. Got None"),
    ("specialization", lambda: specialization(torch.zeros(2, 0)), ValueError,
     r"'drop' must be 2-D \(k, n_classes\) with k, n_classes >= 1"),
    ("specialization", lambda: specialization(torch.zeros(3)), ValueError,
     r"'drop' must be 2-D \(k, n_classes\)"),
    ("specialization", lambda: specialization([[1.0]]), TypeError,
     r"'drop' must be a torch.Tensor. Got list"),
    ("specialization", lambda: specialization(torch.eye(2), min_drop=0), ValueError,
     r"'min_drop' must be a finite real > 0 and <= 1. Got 0.0"),
    ("control_verdict", lambda: control_verdict(0.5, []), ValueError, r"'controls' is empty"),
    ("control_verdict", lambda: control_verdict(NAN, [0.1]), ValueError,
     r"'score' must be a finite real. Got nan"),
    ("control_verdict", lambda: control_verdict(0.5, 0.1), TypeError,
     r"'controls' must be a list of scores. Got float 0.1"),
    ("control_verdict", lambda: control_verdict(0.5, [INF]), ValueError,
     r"'controls' must be a finite real. Got inf"),
    ("specialization_summary", lambda: specialization_summary(None, ablation_result([0.1])),
     TypeError, r"'baseline' must be an AblationResult. Got None"),
    ("specialization_summary",
     lambda: specialization_summary(ablation_result([0.1]), ablation_result([])),
     ValueError, r"'controls' is empty"),
    # --- modlib.analysis.patching ----------------------------------------------------------
    ("edge_attributions", lambda: edge_attributions(mlp(), X, Y, layers=["fc9"]), ValueError,
     r"'layers' must name nn.Linear modules of the model"),
    ("edge_attributions", lambda: edge_attributions(mlp(), X, Y, layers=5), TypeError,
     r"'layers' must be a list of layer names. Got 5"),
    ("edge_attributions", lambda: edge_attributions(mlp(), X.tolist(), Y), TypeError,
     r"'X' must be a torch.Tensor. Got list"),
    ("edge_attributions", lambda: edge_attributions(mlp(), X[:0], Y[:0]), ValueError,
     r"'X' holds no samples"),
    ("edge_attributions", lambda: edge_attributions(mlp(), X, Y.float()), TypeError,
     r"'y' must hold integer class labels"),
    ("edge_attributions", lambda: edge_attributions(mlp(), X, Y, X_corrupt=X[:3]), ValueError,
     r"'X_corrupt' must be a tensor of the same shape as 'X'"),
    ("edge_attributions", lambda: edge_attributions(None, X, Y), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("true_edge_effects",
     lambda: true_edge_effects(mlp(), X, Y, "0", torch.zeros(0, 2, dtype=torch.long)),
     ValueError, r"'edges' must be an \(E, 2\) tensor, E >= 1"),
    ("true_edge_effects", lambda: true_edge_effects(mlp(), X, Y, "0", torch.zeros(1, 2)),
     TypeError, r"'edges' must be an integer tensor"),
    ("true_edge_effects", lambda: true_edge_effects(mlp(), X, Y, "0", [[0, 0]]), TypeError,
     r"'edges' must be a torch.Tensor. Got list"),
    ("true_edge_effects", lambda: true_edge_effects(mlp(), X, Y, "0", torch.tensor([[8, 0]])),
     ValueError, r"'edges' must be an \(E, 2\) tensor, E >= 1, of \(i, j\) inside the weight of "
     r"shape \(8, 4\). Got Tensor"),
    ("true_edge_effects", lambda: true_edge_effects(mlp(), X, Y, 0, torch.tensor([[0, 0]])),
     TypeError, r"'layer' must be the name \(str\) of an nn.Linear module. Got 0"),
    ("circuit", lambda: circuit(mlp(), X, Y, keep=0), ValueError,
     r"'keep' must be a finite real > 0 and <= 1. Got 0.0"),
    ("circuit", lambda: circuit(mlp(), X, Y, keep=NAN), ValueError,
     r"'keep' must be a finite real > 0 and <= 1. Got nan"),
    ("circuit", lambda: circuit(mlp(), X, Y, keep="a"), TypeError,
     r"'keep' must be a finite real"),
    ("circuit", lambda: circuit(mlp(), X[:0], Y[:0]), ValueError, r"'X' holds no samples"),
    ("circuit_size", lambda: circuit_size({}), ValueError, r"'masks' must be a non-empty dict"),
    ("circuit_size", lambda: circuit_size([MASK["l"]]), TypeError,
     r"'masks' must be a non-empty dict .*Got list"),
    ("circuit_size", lambda: circuit_size({"a": torch.zeros(0, 2, dtype=torch.bool)}),
     ValueError, r"'masks' must be a non-empty dict \{layer name: bool \(n_out, n_in\)"),
    ("jaccard", lambda: jaccard(MASK, {"k": MASK["l"]}), ValueError,
     r"'masks_a' and 'masks_b' must have the same layers and shapes"),
    ("jaccard", lambda: jaccard(None, MASK), TypeError, r"'masks_a' must be a non-empty dict"),
    ("inside_share", lambda: inside_share(MASK, {}), ValueError,
     r"'partitions' must be a non-empty dict"),
    ("inside_share", lambda: inside_share(NONE, {"l": P2}), ValueError,
     r"'masks' has no edge in the layers of 'partitions' \['l'\]"),
    ("inside_share", lambda: inside_share(MASK, {"l": 3}), TypeError,
     r"'partitions\['l'\]' must be a modlib Partition"),
    ("inside_share", lambda: inside_share(MASK, {"x": P2}), ValueError,
     r"'partitions' has layers that are not in 'masks': \['x'\]"),
    ("inside_share", lambda: inside_share(MASK, {"l": P}), ValueError,
     r"'masks\['l'\]' of shape \(2, 2\) does not fit"),
    # --- modlib.analysis.circuits ----------------------------------------------------------
    ("prune_circuit", lambda: prune_circuit(mlp(), X, Y, tol=-1), ValueError,
     r"'tol' must be a finite real >= 0. Got -1.0"),
    ("prune_circuit", lambda: prune_circuit(mlp(), X, Y, chunk=0), ValueError,
     r"'chunk' must be an int >= 1. Got 0"),
    ("prune_circuit", lambda: prune_circuit(mlp(), X, Y, bisect="yes"), TypeError,
     r"'bisect' must be True or False"),
    ("prune_circuit", lambda: prune_circuit(None, X, Y), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("prune_circuit", lambda: prune_circuit(mlp(), X[:0], Y[:0]), ValueError,
     r"'X' holds no samples"),
    ("prune_circuit", lambda: prune_circuit(mlp(), X, Y, layers=["fc9"]), ValueError,
     r"'layers' must name nn.Linear modules"),
    ("effective_circuit_size", lambda: effective_circuit_size(mlp(), X, Y, chunk=0), ValueError,
     r"'chunk' must be an int >= 1. Got 0"),
    ("effective_circuit_size", lambda: effective_circuit_size(mlp(), X, Y[:3]), ValueError,
     r"'X' and 'y' must hold the same number of samples. Got 6 and 3"),
    ("class_examples", lambda: class_examples(mlp(), X, Y, -1), ValueError,
     r"'label' must be an int >= 0. Got -1"),
    ("class_examples", lambda: class_examples(mlp(), X, Y, 0, n_max=0), ValueError,
     r"'n_max' must be an int >= 1. Got 0"),
    ("class_examples", lambda: class_examples(None, X, Y, 0), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("class_circuits", lambda: class_circuits(mlp(), X[:0], Y[:0]), ValueError,
     r"'X' holds no samples"),
    ("class_circuits", lambda: class_circuits(mlp(), X, Y, method="acdc"), ValueError,
     r"'method' must be one of \('patching', 'pruning'\). Got 'acdc'"),
    ("class_circuits", lambda: class_circuits(mlp(), X, Y, classes="0"), TypeError,
     r"'classes' must be a non-empty list of class labels"),
    ("class_circuits", lambda: class_circuits(mlp(), X, Y, keep=2), ValueError,
     r"'keep' must be a finite real > 0 and <= 1. Got 2.0"),
    ("class_circuits", lambda: class_circuits(mlp(), X, Y, classes=[-1]), ValueError,
     r"'classes' must be an int >= 0. Got -1"),
    ("class_circuits", lambda: class_circuits(mlp(), X, Y, layers=["x"]), ValueError,
     r"'layers' must name nn.Linear modules"),
    ("class_circuits", lambda: class_circuits(zero_model(), X, torch.ones(6).long()),
     ValueError, r"'X', 'y': the model gets no example of the classes \[1\] right"),
    ("jaccard_matrix", lambda: jaccard_matrix({}), ValueError,
     r"'circuits' must be a non-empty dict"),
    ("jaccard_matrix", lambda: jaccard_matrix([MASK]), TypeError,
     r"'circuits' must be a non-empty dict \{class: masks\}. Got list"),
    ("compare_circuit_sizes", lambda: compare_circuit_sizes({}, {}), ValueError,
     r"'baseline' and 'modular' must be dicts \{measure: sizes\}"),
    ("compare_circuit_sizes", lambda: compare_circuit_sizes({"a": 0.1}, {"a": 0.1}), TypeError,
     r"'baseline\['a'\]' must be a list of circuit sizes. Got float 0.1"),
    ("compare_circuit_sizes", lambda: compare_circuit_sizes({"a": [NAN]}, {"a": [0.1]}),
     ValueError, r"'baseline' must be a finite real. Got nan"),
    ("compare_circuit_sizes", lambda: compare_circuit_sizes({"a": [0.1]}, None), TypeError,
     r"'modular' must be a dict \{measure: sizes\}. Got None"),
    # --- modlib.analysis.fourier -----------------------------------------------------------
    ("basis_labels", lambda: basis_labels(4), ValueError, r"'p' must be an odd int >= 3. Got 4"),
    ("basis_labels", lambda: basis_labels(5.0), TypeError, r"'p' must be an int. Got float"),
    ("fourier_basis", lambda: fourier_basis(1), ValueError, r"'p' must be an odd int >= 3"),
    ("fourier_basis", lambda: fourier_basis(None), TypeError, r"'p' must be an int. Got None"),
    ("frequency_norms", lambda: frequency_norms(torch.ones(4, 2)), ValueError,
     r"'W' must have shape \(p, d\) with odd p >= 3. Got \(4, 2\)"),
    ("frequency_norms", lambda: frequency_norms([[1.0]]), TypeError,
     r"'W' must be a floating-point tensor"),
    ("frequency_norms", lambda: frequency_norms(torch.full((5, 2), NAN)), ValueError,
     r"'W' must be finite"),
    ("embedding_frequencies", lambda: embedding_frequencies(mlp()), TypeError,
     r"'model' must be a modlib ModAddTransformer. Got Sequential"),
    ("key_frequencies", lambda: key_frequencies(mod_add(), top=0), ValueError,
     r"'top' must be an int >= 1 and <= 2 or None. Got 0"),
    ("key_frequencies", lambda: key_frequencies(mod_add(), threshold=0), ValueError,
     r"'threshold' must be a finite real > 0 and <= 1. Got 0.0"),
    ("key_frequencies", lambda: key_frequencies(mod_add(), threshold=NAN), ValueError,
     r"'threshold' must be a finite real > 0 and <= 1. Got nan"),
    ("key_frequencies", lambda: key_frequencies(None), TypeError,
     r"'model' must be a modlib ModAddTransformer. Got None"),
    ("all_pairs", lambda: all_pairs(2), ValueError, r"'p' must be an odd int >= 3. Got 2"),
    ("all_pairs", lambda: all_pairs("5"), TypeError, r"'p' must be an int. Got str '5'"),
    ("table_frequencies", lambda: table_frequencies(torch.ones(4, 4, 1)), ValueError,
     r"'table' must have shape \(p, p, n\) with odd p >= 3. Got \(4, 4, 1\)"),
    ("table_frequencies", lambda: table_frequencies(torch.ones(5, 5, 1).long()), TypeError,
     r"'table' must be a floating-point tensor"),
    ("table_frequencies", lambda: table_frequencies(torch.full((5, 5, 1), INF)), ValueError,
     r"'table' must be finite"),
    ("activation_table", lambda: activation_table(mod_add(), all_pairs(5)[:3]), ValueError,
     r"'X' must hold every pair \(a, b\) of Z_5"),
    ("activation_table", lambda: activation_table(mod_add(), all_pairs(5).float()), TypeError,
     r"'X' must be an integer tensor of tokens"),
    ("activation_table", lambda: activation_table(mod_add(), all_pairs(5)[:, :2]), ValueError,
     r"'X' must have shape \(N, 3\) with N >= 1. Got \(25, 2\)"),
    ("activation_table", lambda: activation_table(mod_add(), torch.zeros(0, 3).long()),
     ValueError, r"'X' must have shape \(N, 3\) with N >= 1. Got \(0, 3\)"),
    ("activation_table", lambda: activation_table(None), TypeError,
     r"'model' must be a modlib ModAddTransformer"),
    ("neuron_frequencies", lambda: neuron_frequencies(mod_add(), all_pairs(5) + 1), ValueError,
     r"'X' numbers a, b must lie in \[0, 5\)"),
    ("neuron_frequencies", lambda: neuron_frequencies("m"), TypeError,
     r"'model' must be a modlib ModAddTransformer"),
    ("cluster_spectra", lambda: cluster_spectra(mod_add(), 4), TypeError,
     r"'partition' must be a modlib Partition. Got int 4"),
    ("cluster_spectra", lambda: cluster_spectra(mod_add(), P), ValueError,
     r"'mlp.fc_in.weight' of shape \(16, 8\) does not fit a partition of 6 rows"),
    ("cluster_frequencies",
     lambda: cluster_frequencies(mod_add(), contiguous_partition(16, 8, 2), top=0),
     ValueError, r"'top' must be an int >= 1 and <= 2 or None. Got 0"),
    ("cluster_frequencies",
     lambda: cluster_frequencies(mod_add(), contiguous_partition(16, 8, 2), top=None,
                                 threshold=2),
     ValueError, r"'threshold' must be a finite real > 0 and <= 1. Got 2.0"),
    ("cluster_frequencies", lambda: cluster_frequencies(mod_add(), None), TypeError,
     r"'partition' must be a modlib Partition. Got None"),
    ("logit_frequencies", lambda: logit_frequencies(mod_add(), torch.zeros(0, 3).long()),
     ValueError, r"'X' must have shape \(N, 3\) with N >= 1"),
    ("logit_frequencies", lambda: logit_frequencies(None), TypeError,
     r"'model' must be a modlib ModAddTransformer"),
    ("ablation_spectra",
     lambda: ablation_spectra(mod_add(), {"mlp.fc_in": contiguous_partition(16, 8, 2)}, 5),
     TypeError, r"'test' must be a dataset of \(X, y\) or a pair of tensors"),
    ("ablation_spectra",
     lambda: ablation_spectra(mod_add(), {"mlp.fc_in": contiguous_partition(16, 8, 2)},
                              (all_pairs(5)[:0], Y[:0])),
     ValueError, r"'X' holds no samples"),
    ("ablation_spectra",
     lambda: ablation_spectra(mod_add(), {"mlp.fc_in": contiguous_partition(16, 8, 2)},
                              TensorDataset(all_pairs(5)[:0], Y[:0])),
     ValueError, r"'test' must hold at least one example"),
    ("ablation_spectra",
     lambda: ablation_spectra(mod_add(), {}, (all_pairs(5), all_pairs(5)[:, 0])),
     ValueError, r"'partitions' must be a non-empty dict"),
    ("energy_kept", lambda: energy_kept(torch.ones(1, 3), {}), ValueError,
     r"'energy' must be a float tensor \(1 \+ k, n_freq\) with k >= 1"),
    ("energy_kept", lambda: energy_kept(ENERGY.long(), KEYS), TypeError,
     r"'energy' must be a floating-point tensor. Got dtype torch.int64"),
    ("energy_kept", lambda: energy_kept(ENERGY.tolist(), KEYS), TypeError,
     r"'energy' must be a torch.Tensor. Got list"),
    ("energy_kept", lambda: energy_kept(ENERGY, {0: [1]}), ValueError,
     r"'keys' must give the frequencies of each cluster 0..1. Got clusters \[0\]"),
    ("energy_kept", lambda: energy_kept(ENERGY, {0: [5], 1: [1]}), ValueError,
     r"'keys' must be an int >= 0 and <= 2. Got 5"),
    ("energy_kept", lambda: energy_kept(ENERGY, {0: 1, 1: [1]}), TypeError,
     r"'keys\[0\]' must be a list of frequencies. Got 1"),
    ("energy_kept", lambda: energy_kept(ENERGY, [[1]]), ValueError,
     r"'keys' must give the frequencies of each of the 2 clusters"),
    ("selective_clusters", lambda: selective_clusters(ENERGY, KEYS, max_kept=0), ValueError,
     r"'max_kept' must be a finite real > 0 and <= 1. Got 0.0"),
    ("selective_clusters", lambda: selective_clusters(ENERGY, KEYS, ratio=-1), ValueError,
     r"'ratio' must be a finite real > 0. Got -1.0"),
    ("selective_clusters", lambda: selective_clusters(ENERGY, KEYS, ratio="2"), TypeError,
     r"'ratio' must be a finite real > 0. Got str '2'"),
    # --- modlib.analysis.llm ---------------------------------------------------------------
    ("family", lambda: family(mlp()), ValueError,
     r"No supported model family matches the module names of Sequential"),
    ("family", lambda: family(None), TypeError, r"'model' must be a torch.nn.Module. Got None"),
    ("mlp_layers", lambda: mlp_layers(gpt(), "inn"), ValueError,
     r"'which' must be one of \('in', 'out', 'both'\). Got 'inn'"),
    ("mlp_layers", lambda: mlp_layers("m"), TypeError, r"'model' must be a torch.nn.Module"),
    ("attention_layers", lambda: attention_layers(gpt(), None), ValueError,
     r"'which' must be one of \('in', 'out', 'both'\). Got None"),
    ("attention_layers", lambda: attention_layers(mlp()), ValueError,
     r"No supported model family"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 100, progress=False), ValueError,
     r"'k' must be an int in \[1, 16\] for layer 'transformer.h.0.mlp.c_fc'"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 2, ["x"]), ValueError,
     r"'layers' names layers that are not in the model: \['x'\]"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 2, []), ValueError,
     r"'layers' is empty"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 2, progress="no"), TypeError,
     r"'progress' must be True or False"),
    ("spectral_partitions", lambda: spectral_partitions(gpt(), 2, seed=0.5), TypeError,
     r"'seed' must be an int. Got float 0.5"),
    # --- modlib.analysis.lm_interp ---------------------------------------------------------
    ("layer_scores", lambda: layer_scores(gpt(), 0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    ("layer_scores", lambda: layer_scores(gpt(), 2, ["x"]), ValueError,
     r"'layers' names layers that are not in the model: \['x'\]"),
    ("layer_scores", lambda: layer_scores(gpt(), 2, partitions={FC: 3}), TypeError,
     r"'partitions\['transformer.h.0.mlp.c_fc'\]' must be a modlib Partition"),
    ("layer_scores", lambda: layer_scores(gpt(), 2, partitions={}), ValueError,
     r"'partitions' must be a non-empty dict"),
    ("layer_scores", lambda: layer_scores(gpt(), 2, partitions={FC: P}), ValueError,
     r"'transformer.h.0.mlp.c_fc' of shape \(64, 16\) does not fit"),
    ("layer_scores", lambda: layer_scores(None, 2), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("token_losses", lambda: token_losses(gpt(), torch.zeros(0, 9).long()), ValueError,
     r"'blocks' must hold at least one block of 2 or more tokens"),
    ("token_losses", lambda: token_losses(gpt(), BLOCKS.float()), TypeError,
     r"'blocks' must be a LongTensor \(n_blocks, seq_len \+ 1\)"),
    ("token_losses", lambda: token_losses(gpt(), BLOCKS, batch_size=0), ValueError,
     r"'batch_size' must be an int >= 1. Got 0"),
    ("token_losses", lambda: token_losses(None, BLOCKS), TypeError,
     r"'model' must be a torch.nn.Module"),
    ("perplexity", lambda: perplexity(torch.zeros(2, 5), torch.zeros(3).long()), ValueError,
     r"'logits' must have the shape of 'targets' plus a vocabulary axis"),
    ("perplexity", lambda: perplexity([[0.0]], torch.zeros(1).long()), TypeError,
     r"'logits' must be a torch.Tensor. Got list"),
    ("perplexity", lambda: perplexity(torch.zeros(0, 5), torch.zeros(0).long()), ValueError,
     r"'logits' and 'targets' must hold at least one token"),
    ("perplexity", lambda: perplexity(torch.zeros(2, 5), torch.zeros(2)), TypeError,
     r"'targets' must be an integer tensor. Got dtype torch.float32"),
    ("perplexity", lambda: perplexity(torch.zeros(2, 5), torch.tensor([0, 5])), ValueError,
     r"'targets' must be token ids in \[0, 5\). Got values in \[0, 5\]"),
    ("token_kind", lambda: token_kind(5), TypeError, r"'text' must be a str. Got 5"),
    ("token_kind", lambda: token_kind(None), TypeError, r"'text' must be a str. Got None"),
    ("token_kinds", lambda: token_kinds(ByteTokenizer(), 0), ValueError,
     r"'vocab_size' must be an int >= 1. Got 0"),
    ("token_kinds", lambda: token_kinds(None), TypeError,
     r"'tokenizer' must have a decode\(ids\) method. Got None"),
    ("token_kinds", lambda: token_kinds(ByteTokenizer(), 1.5), TypeError,
     r"'vocab_size' must be an int >= 1. Got float 1.5"),
    ("loss_by_kind", lambda: loss_by_kind(torch.zeros(0), torch.zeros(0).long()), ValueError,
     r"'losses' and 'kinds' hold no token"),
    ("loss_by_kind", lambda: loss_by_kind(torch.zeros(3), torch.zeros(2).long()), ValueError,
     r"'losses' and 'kinds' must have the same shape. Got \(3,\) and \(2,\)"),
    ("loss_by_kind", lambda: loss_by_kind(torch.zeros(2), torch.tensor([0, 5])), ValueError,
     r"'kinds' must lie in \[0, 5\). Got values in \[0, 5\]"),
    ("loss_by_kind", lambda: loss_by_kind([1.0], torch.zeros(1).long()), TypeError,
     r"'losses' must be a torch.Tensor. Got list"),
    ("loss_by_kind", lambda: loss_by_kind(torch.zeros(2), torch.zeros(2)), TypeError,
     r"'kinds' must be an integer tensor"),
    ("loss_by_kind", lambda: loss_by_kind(torch.zeros(2), torch.zeros(2).long(), 0),
     ValueError, r"'n_kinds' must be an int >= 1. Got 0"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID, min_tokens=0),
     ValueError, r"'min_tokens' must be an int >= 1. Got 0"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID.tolist()),
     TypeError, r"'kind_of_id' must be a torch.Tensor. Got list"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID.float()),
     TypeError, r"'kind_of_id' must be an integer tensor"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID[:5]),
     ValueError, r"'kind_of_id' covers \[0, 5\)"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID + 3),
     ValueError, r"'kind_of_id' must hold kind indices in \[0, 5\)"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS[:0], KIND_OF_ID),
     ValueError, r"'blocks' must hold at least one block"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID, batch_size=0),
     ValueError, r"'batch_size' must be an int >= 1. Got 0"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {FC: contiguous_partition(64, 16, 2)},
                                              BLOCKS, KIND_OF_ID, min_drop=0),
     ValueError, r"'min_drop' must be a finite real > 0 and <= 1. Got 0.0"),
    ("ablate_by_kind", lambda: ablate_by_kind(gpt(), {}, BLOCKS, KIND_OF_ID), ValueError,
     r"'partitions' must be a non-empty dict"),
    # --- modlib.analysis.truth -------------------------------------------------------------
    ("planted_circuit", lambda: planted_circuit("loop"), ValueError,
     r"'case' must be one of \('unique', 'redundant'\). Got 'loop'"),
    ("planted_circuit", lambda: planted_circuit(n_classes=1), ValueError,
     r"'n_classes' must be an int >= 2. Got 1"),
    ("planted_circuit", lambda: planted_circuit(n_examples=0), ValueError,
     r"'n_examples' must be an int >= 1. Got 0"),
    ("planted_circuit", lambda: planted_circuit(margin=0), ValueError,
     r"'margin' must be a finite real > 0. Got 0.0"),
    ("planted_circuit", lambda: planted_circuit(margin=INF), ValueError,
     r"'margin' must be a finite real > 0. Got inf"),
    ("planted_circuit", lambda: planted_circuit(seed=0.5), TypeError,
     r"'seed' must be an int. Got float 0.5"),
    ("circuit_recovery", lambda: circuit_recovery({"l": torch.ones(2, 2)}, MASK), TypeError,
     r"'found\['l'\]' must be a bool tensor. Got dtype torch.float32"),
    ("circuit_recovery", lambda: circuit_recovery(MASK, {"k": MASK["l"]}), ValueError,
     r"'found' must have the layers and shapes of 'truth'"),
    ("circuit_recovery", lambda: circuit_recovery(MASK, {"l": torch.ones(2, 3).bool()}),
     ValueError, r"'found' must have the layers and shapes of 'truth'. Got \{'l': \(2, 2\)\}"),
    ("circuit_recovery", lambda: circuit_recovery(MASK, NONE), ValueError,
     r"'truth' has no edge in \['l'\]: recall is undefined"),
    ("circuit_recovery", lambda: circuit_recovery(None, MASK), TypeError,
     r"'found' must be a non-empty dict .*Got None"),
    ("circuit_recovery", lambda: circuit_recovery(MASK, {}), ValueError,
     r"'truth' must be a non-empty dict"),
    ("PlantedCircuit", lambda: PlantedCircuit(None, X, Y, 0, MASK, "unique"), TypeError,
     r"'model' must be a torch.nn.Module. Got None"),
    ("PlantedCircuit", lambda: PlantedCircuit(mlp(), X, Y, 0, MASK, "unique"), ValueError,
     r"'truth' must have the layers and shapes of the model's Linear weights"),
    ("PlantedCircuit", lambda: PlantedCircuit(mlp(), X, Y, -1, MASK, "unique"), ValueError,
     r"'label' must be an int >= 0. Got -1"),
    ("PlantedCircuit", lambda: PlantedCircuit(mlp(), X, Y, 0, MASK, "loop"), ValueError,
     r"'case' must be one of \('unique', 'redundant'\)"),
]


@pytest.mark.parametrize("name, call, error, match", CASES, ids=row_ids(CASES))
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, match):
    assert_refused(call, error, match)


def test_every_public_name_has_a_bad_input_row():
    """A public name (in an ``__all__``) without a row here, and not allow-listed, fails."""
    assert_every_name_has_a_row(CASES, public_names(), ALLOWED_WITHOUT_ROW)


def test_allow_list_holds_only_types_aliases_and_constants():
    """The allow-list is not a way around a row: every entry takes no argument to check."""
    import typing

    modules = [modlib.hooks] + [importlib.import_module(f"{p.__name__}.{i.name}")
                                for p in PACKAGES for i in pkgutil.iter_modules(p.__path__)]
    for name in ALLOWED_WITHOUT_ROW:
        value = next(getattr(m, name) for m in modules if name in getattr(m, "__all__", ()))
        is_alias = typing.get_origin(value) is not None
        is_record = isinstance(value, type) and hasattr(value, "__dataclass_fields__")
        is_constant = isinstance(value, tuple)
        assert is_alias or is_record or is_constant, name


def test_every_row_is_well_formed():
    """Rows are (name, call, TypeError or ValueError, regex quoting the argument it names)."""
    for name, call, error, match in CASES:
        assert isinstance(name, str) and callable(call), name
        assert error in (TypeError, ValueError), name
        # the message names the argument in quotes, or says what is missing in the model/data
        assert "'" in match or match.startswith(("No ", "Labels ")), (name, match)
