"""The paper's experiments, end to end: train a baseline and a modular model, measure both.

``reproduce(name)`` is what ``python -m modlib reproduce NAME`` runs and what the notebooks call.
Both models start from the same initialisation and see the same batches; the baseline is
trained with ``lam = 0`` (its clusterability is only watched), the modular model with ``lam``.
With ``method="bimt"`` (MNIST and modular addition) a third model of each seed is trained
from the same initialisation on the same batches with brain-inspired modular training
(:class:`modlib.training.bimt.BIMTLoss`): modules left to emerge beside modules imposed.
Introduced in notebook 03; CIFAR in 05, modular addition in 06, language models in 07, BIMT in 08.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..core.graph import layer_matrix
from ..core.loss import ClusterabilityLoss, ScatteredMaskLoss
from ..core.metrics import chance_level, clusterability, near_zero_share
from ..core.partition import Partition
from ..core.spectral import spectral_cocluster
from ..core.stats import Interval, mean_interval
from ..hooks import eval_mode
from ..training import data as mdata
from ..training.bimt import BIMTLoss
from ..training.models import MnistCNN, ModAddTransformer, PaperCifarCNN, PaperMLP
from ..training.profiles import LLM_ALIASES, LLM_MODELS, Profile, ProfileName
from ..training.profiles import profile as get_profile
from ..training.sources import cache_dir, load_saved, save_atomic
from ..training.train import History, TrainConfig, evaluate, fit, is_main_process, world_size
from ..training.zoo import LABELS
from ..validate import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_real,
    describe,
)

__all__ = ["Experiment", "MODELS", "RunResult", "ExperimentResult", "reproduce", "sweep",
           "measure", "summarize", "Claim", "claims", "said_once", "PAPER", "check_device",
           "check_out", "METHODS", "BIMT_LAMS"]

Experiment = Literal["mnist", "cifar", "modadd", "llm"]

# reproduce(name, method=...): "clusterability" trains a baseline and a modular model (and, for
# images, the sparse control); "bimt" adds a BIMT model, for the experiments in BIMT_LAMS.
METHODS = ("clusterability", "bimt")
# The default λ of the BIMT model (times the connection cost Σ |W_ij| d_ij): the largest of a
# grid (MNIST 1e-4 to 3e-3, modular addition 3e-5 to 1e-3, in steps of about 3) at which both
# seeds of the ci profile kept their accuracy within a point of the baseline's (RESULTS.md).
BIMT_LAMS: dict[str, float] = {"mnist": 3e-4, "modadd": 3e-4}
# The chain of layers BIMT places (None: every Linear and Conv2d of the model).
_BIMT_LAYERS: dict[str, list[str] | None] = {"mnist": None, "modadd": ["mlp.fc_in", "mlp.fc_out"]}
# Rounds of neuron swaps over a BIMT run.
_BIMT_ROUNDS = 20

# The authors' own numbers where the set-up matches ours (PAPER.md, from their code's outputs).
PAPER: dict[str, dict[str, Any]] = {
    "cifar": {"source": "authors' code (github.com/7vik/modularity), 10 epochs, k=4, lam=20",
              "baseline": {"accuracy": 0.654}, "modular": {"accuracy": 0.660,
                                                           "clusterability": 0.9999}},
}


@dataclass
class RunResult:
    """One trained model and what was measured on it."""

    model: nn.Module
    history: History
    metrics: dict[str, Any]


@dataclass
class ExperimentResult:
    """What :func:`reproduce` returns: the first seed's runs, their partitions, ``results.json``."""

    baseline: RunResult
    modular: RunResult
    partitions: dict[str, Partition]
    results: dict[str, Any] = field(default_factory=dict)
    sparse_control: RunResult | None = None  # image experiments: as sparse, without modules
    bimt: RunResult | None = None  # method="bimt": modules left to emerge (BIMT)


def measure(model: nn.Module, loss: ClusterabilityLoss, *, seed: int = 0) -> dict[str, Any]:
    """Clusterability of ``model``'s clustered layers, on the training partitions and spectral.

    Returns:
        dict: ``clusterability`` (mean on the training partitions) and ``chance_level`` (their
        mean chance level), ``clusterability_spectral`` (mean on each layer's own spectral
        partition) and ``chance_level_spectral`` (the mean chance level of those), and ``layers``
        (``{name: {"training": C, "spectral": C}}``).
    """
    per_layer: dict[str, dict[str, float]] = {}
    train_c = loss.clusterability()
    chances, train_chances = [], [chance_level(p) for p in loss.partitions.values()]
    for name, module in loss.layers.items():
        W = layer_matrix(module).detach()
        part = spectral_cocluster(W, loss.k, seed=seed)
        chances.append(chance_level(part))
        per_layer[name] = {"training": train_c[name], "spectral": float(clusterability(W, part))}
    mean = lambda key: sum(v[key] for v in per_layer.values()) / len(per_layer)  # noqa: E731
    return {"clusterability": mean("training"),
            "chance_level": sum(train_chances) / len(train_chances),
            "clusterability_spectral": mean("spectral"),
            "chance_level_spectral": sum(chances) / len(chances), "layers": per_layer}


@dataclass
class _Setup:
    model: nn.Module
    train_loader: Any
    test_loader: Any
    config: TrainConfig
    layers: list[str] | None
    source: str  # the data actually used, e.g. 'mnist-5k-offline' or 'wikitext-2'
    model_label: str  # the model actually used, e.g. 'gpt2' or 'tiny GPT-NeoX stand-in (offline)'
    metric: str = "accuracy"
    tokenizer: dict[str, Any] | None = None  # language models: {"name": ..., "vocab_size": ...}
    partitions: dict[str, Partition] | None = None  # for the k the set-up was built for
    partitioner: Callable[[int], dict[str, Partition]] | None = None  # the same for any k
    bimt_layers: list[str] | None = None  # the chain BIMT places (None: every layer)
    circuit_label: int | None = None  # image classifiers: the label whose circuit is measured


def _image_setup(prof: Profile, seed: int, model_name: str | None, lam: float, cifar: bool
                 ) -> _Setup:
    if cifar:
        d = mdata.load_cifar10(prof.cifar_train, prof.cifar_test, seed=seed)
        model, layers, epochs = PaperCifarCNN(), ["fc2"], prof.cifar_epochs
        label = LABELS["cifar-cnn"]
    else:
        d = mdata.load_mnist(prof.mnist_train, prof.mnist_test, seed=seed)
        if model_name == "paper":
            model, layers, label = PaperMLP(), ["fc2"], LABELS["mnist-mlp"]
        else:
            model, layers = MnistCNN(width=prof.width), None
            label = f"course CNN (MnistCNN, width {prof.width})"
        epochs = prof.mnist_epochs
    train, test = mdata.loaders(d, prof.batch_size, seed=seed)
    # λ reaches its full value halfway through training: features first, then modules
    cfg = TrainConfig(epochs=epochs, lr=2e-3, lam=lam, lam_warmup_steps=len(train) * epochs // 2,
                      seed=seed)
    # the authors measure the circuit of CIFAR's "ship" (label 8); for digits we take 0
    return _Setup(model, train, test, cfg, layers, d.source, label,
                  circuit_label=8 if cifar else 0)


def _modadd_setup(prof: Profile, seed: int, k: int, lam: float, progress: bool) -> _Setup:
    d = mdata.modular_addition(prof.modadd_p, train_frac=prof.modadd_train_frac, seed=seed)
    model = ModAddTransformer(prof.modadd_p)
    # One full batch, as in the paper: the tensors themselves. A DataLoader would collate the
    # thousands of pairs one by one every epoch (hours over the gpu profile's 20,000 epochs).
    train, test = [d.train.tensors], [d.test.tensors]
    # Nanda et al.'s grokking recipe (AdamW, β2 = 0.98), lr and weight decay from the profile:
    # the small profiles decay harder, so that they grok in hundreds of epochs, not thousands
    cfg = TrainConfig(epochs=prof.modadd_epochs, lr=prof.modadd_lr,
                      weight_decay=prof.modadd_weight_decay, betas=(0.9, 0.98),
                      lam=lam, lam_warmup_steps=prof.modadd_epochs // 10, seed=seed,
                      log_every=max(1, prof.modadd_epochs // 200),
                      precision="fp32")  # grokking is sensitive to the logits' precision
    layers = ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc_in", "mlp.fc_out"]
    return _Setup(model, train, test, cfg, layers, f"modular-addition-p{prof.modadd_p}",
                  f"one-layer transformer (ModAddTransformer, p={prof.modadd_p})")


# reproduce(name, model=...): the models each experiment can train (None: its default);
# for llm, every name and alias of the course's language models.
MODELS: dict[str, tuple[str, ...]] = {
    "mnist": ("cnn", "paper"),
    "llm": tuple(n for name, m in LLM_MODELS.items() for n in (*m.aliases, name)),
}


def _llm_setup(prof: Profile, seed: int, k: int, lam: float, progress: bool,
               model_name: str | None) -> _Setup:
    from ..analysis.llm import mlp_layers, spectral_partitions
    from ..training.zoo import pretrained

    name = prof.llm_model if model_name is None else LLM_ALIASES.get(model_name, model_name)
    pt = pretrained(name, profile=prof, progress=progress)
    text = mdata.load_text(prof.text_chars, seed=seed)
    tok = pt.tokenizer  # the model's own: Pythia's for Pythia, bytes for a stand-in
    blocks = [mdata.token_blocks(t, tok, prof.llm_seq_len) for t in (text.train, text.validation)]
    model = pt.model.train()
    _check_token_ids(blocks, model, pt.label)
    train = DataLoader(blocks[0], batch_size=prof.llm_batch, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    test = DataLoader(blocks[1], batch_size=prof.llm_batch)
    # fine-tuning keeps the clusters that spectral co-clustering finds in the pretrained model
    layers = mlp_layers(model, "in")

    def partitioner(k: int) -> dict[str, Partition]:
        return spectral_partitions(model, k, layers, seed=seed, progress=progress)

    parts = partitioner(k)
    cfg = TrainConfig(task="lm", epochs=10_000, max_steps=prof.llm_steps,
                      lr=1e-3 if pt.stand_in else 1e-4, lam=lam,
                      lam_warmup_steps=prof.llm_steps // 4, seed=seed)
    tokenizer = {"name": getattr(tok, "name_or_path", type(tok).__name__), "vocab_size": len(tok)}
    return _Setup(model, train, test, cfg, list(parts), text.source, pt.label,
                  metric="perplexity", partitions=parts, partitioner=partitioner,
                  tokenizer=tokenizer)


def _check_token_ids(blocks: list[torch.Tensor], model: nn.Module, label: str) -> None:
    """Refuse token ids the model has no embedding for (a tokenizer of another model)."""
    n_embeddings = model.get_input_embeddings().num_embeddings
    top = max(int(b.max()) for b in blocks)
    if top >= n_embeddings:
        raise ValueError(f"The tokenizer gives token id {top}, but {label} embeds only "
                         f"{n_embeddings} ids: the tokenizer is not the model's own.")


def _setup(name: str, prof: Profile, seed: int, model: str | None, k: int, lam: float,
           progress: bool) -> _Setup:
    if name in ("mnist", "cifar"):
        setup = _image_setup(prof, seed, model, lam, cifar=name == "cifar")
    elif name == "llm":
        setup = _llm_setup(prof, seed, k, lam, progress, model)
    else:
        setup = _modadd_setup(prof, seed, k, lam, progress)
    setup.bimt_layers = _BIMT_LAYERS.get(name)
    return setup


def check_device(device: str | torch.device | None) -> torch.device:
    """The device to train on: the one asked for, else CUDA when present, else the CPU.

    Args:
        device: a torch device or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), or
            None.

    Returns:
        The :class:`torch.device`.

    Raises:
        ValueError: not a device name; a device of another kind than CPU, CUDA or MPS; CUDA (or
            MPS) when this machine has none, or a CUDA index it does not have.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"'device' must name a torch device such as 'cpu' or 'cuda'. Got "
                         f"{device!r}.") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"'device' must be a CPU, CUDA or MPS device. Got {device!r}.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("'device' is CUDA, but no CUDA GPU is available here.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"'device' is {str(dev)!r}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s).")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("'device' is MPS, but no MPS device is available here.")
    return dev


def check_out(out: str | os.PathLike, name: str = "out") -> Path:
    """``out`` as a :class:`~pathlib.Path` to a folder that exists and can be written to.

    The folder (and its parents) is created if need be, and a probe file is written there and
    removed, so that a run which will write there is refused before it starts, not after.

    Args:
        out: the folder.
        name: the argument's name in messages.

    Returns:
        The folder as a Path.

    Raises:
        TypeError: ``out`` is not a str or path.
        ValueError: ``out`` is empty, an existing file, or a folder that cannot be created or
            written to (e.g. under a file or a read-only folder).

    Example:
        >>> import tempfile, pathlib
        >>> check_out(pathlib.Path(tempfile.mkdtemp()) / "results").is_dir()
        True
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"'{name}' must be a folder path (a str or os.PathLike). "
                        f"Got {describe(out)}.")
    if not os.fspath(out):
        raise ValueError(f"'{name}' must be a folder path. Got an empty string.")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"'{name}' must be a folder. Got {str(path)!r}, an existing file.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".modlib-probe-", dir=path)
        os.close(handle)
        os.remove(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ValueError(f"'{name}' must be a folder that can be created and written to. "
                         f"Got {str(path)!r}: {reason}.") from None
    return path


def _check_experiment(name: object, model: object) -> None:
    check_choice(name, "name", get_args(Experiment))
    allowed = MODELS.get(name, ())
    if model is not None and model not in allowed:
        choices = f"one of {allowed}" if allowed else f"None ({name} has one model)"
        raise ValueError(f"'model' for {name} must be {choices}. Got {model!r}.")


def _check_method(name: str, method: object, bimt_lam: object) -> float | None:
    """The BIMT run's λ (None for ``method="clusterability"``), or one clear error."""
    check_instance(method, "method", str, f"one of {METHODS}")
    check_choice(method, "method", METHODS)
    if method == "clusterability":
        if bimt_lam is not None:
            raise ValueError(f"'bimt_lam' is for method='bimt'; method is {method!r}. "
                             f"Got bimt_lam={bimt_lam!r}.")
        return None
    if name not in BIMT_LAMS:
        raise ValueError(f"method='bimt' is available for {sorted(BIMT_LAMS)}, not {name!r}.")
    if bimt_lam is None:
        return BIMT_LAMS[name]
    return check_real(bimt_lam, "bimt_lam", minimum=0)


def _check_profile(profile: object) -> Profile:
    if isinstance(profile, Profile):
        return profile
    names = get_args(ProfileName)
    if profile is not None and not isinstance(profile, str):
        raise TypeError(f"'profile' must be one of {names}, a Profile or None. "
                        f"Got {describe(profile)}.")
    if profile is not None:
        check_choice(profile, "profile", names)
    return get_profile(profile)


def _check_grid(values: object, name: str, what: str, check: Callable[[object, str], Any]
                ) -> list[Any]:
    """A non-empty sequence of values, each accepted by ``check``, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"'{name}' must be a non-empty sequence of {what}. "
                        f"Got {describe(values)}.")
    if not values:
        raise ValueError(f"'{name}' must be a non-empty sequence of {what}. "
                         f"Got {describe(values)}.")
    return [check(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _train(setup: _Setup, init: dict[str, torch.Tensor], k: int, lam: float, seed: int,
           progress: bool, device: torch.device, partitions: dict[str, Partition] | None,
           loss_type: type[ClusterabilityLoss] = ClusterabilityLoss
           ) -> tuple[nn.Module, History, ClusterabilityLoss | BIMTLoss, float]:
    """One run from ``init``: the trained model, its history, its loss, seconds per step."""
    model = copy.deepcopy(setup.model).to(device)
    model.load_state_dict(init)
    generator = getattr(setup.train_loader, "generator", None)
    if generator is not None:  # every run sees the same batches in the same order
        generator.manual_seed(seed)
    cfg = TrainConfig(**{**asdict(setup.config), "lam": lam})
    if loss_type is BIMTLoss:
        steps = cfg.epochs * len(setup.train_loader)
        if cfg.max_steps is not None:
            steps = min(steps, cfg.max_steps)
        loss = BIMTLoss(model, setup.bimt_layers, swap_every=max(1, steps // _BIMT_ROUNDS))
    else:
        extra = {"seed": seed} if loss_type is ScatteredMaskLoss else {}
        loss = loss_type(model, k, layers=setup.layers, partitions=partitions, **extra)
    start = time.perf_counter()
    hist = fit(model, setup.train_loader, config=cfg, loss=loss, eval_loader=setup.test_loader,
               progress=progress)
    return model, hist, loss, (time.perf_counter() - start) / max(1, len(hist.steps))


def _analyse(model: nn.Module, loss: ClusterabilityLoss, setup: _Setup, seed: int, *,
             interpret: bool = True) -> dict[str, Any]:
    """A trained model's test metrics, clusterability and (image classifiers) interpretation."""
    metrics = evaluate(model, setup.test_loader, task=setup.config.task)
    if setup.config.task == "lm":
        metrics["loss"] = metrics.pop("eval_loss")
    metrics.update(measure(model, loss, seed=seed))
    if interpret and setup.circuit_label is not None:
        metrics.update(_interpret(model, loss, setup, seed))
    return metrics


def _circuit_layers(model: nn.Module) -> list[str]:
    """The Linear layers whose circuits are measured: every one but the first.

    The first (a CNN's flattened feature map: 3136 or 4096 inputs) holds most of the weights and
    would take greedy pruning minutes per model; both measures use the same layers.
    """
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linears[1:] if len(linears) > 1 else linears


def _interpret(model: nn.Module, loss: ClusterabilityLoss, setup: _Setup, seed: int
               ) -> dict[str, Any]:
    """Cluster ablation (specialization beside a random control) and one label's circuit, by
    attribution patching and by greedy pruning, and the clustered layers' near-zero share."""
    from ..analysis.circuits import effective_circuit_size
    from ..analysis.interp import ablate_clusters
    from ..analysis.patching import circuit, circuit_size, inside_share

    modules = dict(model.named_modules())
    near_zero = [near_zero_share(layer_matrix(modules[n]).detach()) for n in loss.partitions]
    ab = ablate_clusters(model, loss.partitions, setup.test_loader, seed=seed)
    layers = _circuit_layers(model)
    out: dict[str, Any] = {"near_zero_share": sum(near_zero) / len(near_zero),
                           "specialization": ab.specialization,
                           "specialization_control": ab.control, "ablation_drop": ab.drop.tolist(),
                           "circuit_label": setup.circuit_label, "circuit_layers": layers}
    X, y = (t.to(next(model.parameters()).device) for t in setup.test_loader.dataset.tensors)
    with torch.no_grad(), eval_mode(model):  # the circuit of the right answers: those it gets
        right = model(X).argmax(-1) == y
    chosen = ((y == setup.circuit_label) & right).nonzero().flatten()[:100]
    try:
        masks = circuit(model, X[chosen], y[chosen], keep=0.9, layers=layers)
    except ValueError as e:  # e.g. the model gets this label wrong on average: no circuit
        out.update(circuit_size=None, circuit_size_pruning=None, circuit_note=str(e))
        return out
    clustered = {n: p for n, p in loss.partitions.items() if n in masks}
    out.update(circuit_size=circuit_size(masks),
               circuit_size_pruning=effective_circuit_size(model, X[chosen], y[chosen],
                                                           layers=layers),
               circuit_inside_share=(inside_share(masks, clustered) if clustered else None))
    return out


# The headline numbers of results.json's "summary": (key, where, null). "where" reads one
# seed's result; null is the value of no effect (0 for a difference, 1 for a ratio, None: none).
def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _headlines(metric: str, runs: Sequence[str]
               ) -> list[tuple[str, Callable[[dict[str, Any]], float | None], float | None]]:
    rows: list[tuple[str, Callable[[dict[str, Any]], float | None], float | None]] = []
    for run in runs:
        rows.append((f"{run}_{metric}", lambda r, run=run: r[run][metric], None))
    for run in runs[1:]:
        rows.append((f"{run}_{metric}_difference",
                     lambda r, run=run: _minus(r[run][metric], r["baseline"][metric]), 0.0))
    for run in runs:
        rows.append((f"{run}_clusterability", lambda r, run=run: r[run]["clusterability"], None))
    rows.append(("baseline_spectral_above_chance",
                 lambda r: _minus(r["baseline"]["clusterability_spectral"],
                                  r["baseline"]["chance_level_spectral"]), 0.0))
    if "bimt" in runs:  # imposed against emergent: every run's post-hoc spectral modules, ...
        for run in runs[1:]:
            rows.append((f"{run}_spectral_above_chance",
                         lambda r, run=run: _minus(r[run]["clusterability_spectral"],
                                                   r[run]["chance_level_spectral"]), 0.0))
        for run in runs[1:]:  # ... connection cost and time per step, over the baseline's
            for key, suffix in (("connection_cost", "connection_cost_ratio"),
                                ("seconds_per_step", "step_time_ratio")):
                rows.append((f"{run}_{suffix}",
                             lambda r, run=run, key=key: _ratio(r[run].get(key),
                                                                r["baseline"].get(key)), 1.0))
    if metric == "accuracy":  # image classifiers (others leave these None: not summarised)
        for run in runs:
            rows.append((f"{run}_near_zero_share", lambda r, run=run: r[run].get("near_zero_share"),
                         None))
            rows.append((f"{run}_specialization_above_control",
                         lambda r, run=run: _minus(r[run].get("specialization"),
                                                   r[run].get("specialization_control")), 0.0))
        for run in runs[1:]:
            for key, suffix in (("circuit_size", ""), ("circuit_size_pruning", "_pruning")):
                rows.append((f"{run}_circuit_size_ratio{suffix}",
                             lambda r, run=run, key=key: _ratio(r[run].get(key),
                                                                r["baseline"].get(key)), 1.0))
        if "sparse_control" in runs:
            for key, suffix in (("circuit_size", ""), ("circuit_size_pruning", "_pruning")):
                rows.append((f"modular_vs_sparse_control_circuit_size_ratio{suffix}",
                             lambda r, key=key: _ratio(r["modular"].get(key),
                                                       r["sparse_control"].get(key)), 1.0))
    return rows


def summarize(seeds: Sequence[Mapping[str, Any]], metric: str = "accuracy") -> dict[str, Any]:
    """The headline numbers of several seeds' results: each one's mean and 95 % interval.

    Args:
        seeds: one result per seed, as ``results.json``'s ``"seeds"``: dicts with ``"baseline"``
            and ``"modular"`` (and for image experiments ``"sparse_control"``) metrics.
        metric: ``"accuracy"`` or ``"perplexity"``.

    Returns:
        ``{"method": ..., "n_seeds": n, "seeds": [...], "numbers": {name: interval}}``, each
        interval a dict of :class:`modlib.core.stats.Interval` (``mean``, ``low``, ``high``,
        ``n``, ``null``, ``method``, ``finding``). The names: ``{run}_{metric}`` and
        ``{run}_{metric}_difference`` (run minus baseline), ``{run}_clusterability`` (on the
        training partitions), ``baseline_spectral_above_chance``; for image classifiers also
        ``{run}_near_zero_share``, ``{run}_specialization_above_control``,
        ``{run}_circuit_size_ratio`` (patching) and ``{run}_circuit_size_ratio_pruning`` (run
        over baseline), and ``modular_vs_sparse_control_circuit_size_ratio[_pruning]``; with a
        ``"bimt"`` run in every seed, also ``{run}_spectral_above_chance``,
        ``{run}_connection_cost_ratio`` and ``{run}_step_time_ratio`` (over the baseline). A
        number is a *finding* when its interval excludes its value of no effect (0 for a
        difference, 1 for a ratio).

    Raises:
        TypeError: ``seeds`` not a sequence of dicts.
        ValueError: ``seeds`` empty, or a result without the ``"baseline"`` and ``"modular"``
            metrics.

    Example:
        >>> one = lambda a, b: {"baseline": {"accuracy": a, "clusterability": 0.25,
        ...                     "clusterability_spectral": 0.3, "chance_level_spectral": 0.26},
        ...                     "modular": {"accuracy": b, "clusterability": 0.99,
        ...                     "clusterability_spectral": 0.99, "chance_level_spectral": 0.25}}
        >>> s = summarize([one(0.97, 0.96), one(0.96, 0.96), one(0.97, 0.95)])
        >>> s["numbers"]["modular_accuracy_difference"]["finding"]
        False
    """
    check_instance(metric, "metric", str, "'accuracy' or 'perplexity'")
    check_choice(metric, "metric", ("accuracy", "perplexity"))
    if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(seeds, Sequence):
        raise TypeError(f"'seeds' must be a sequence of per-seed results (dicts). "
                        f"Got {describe(seeds)}.")
    if not seeds:
        raise ValueError("'seeds' is empty: summarise at least one seed's result.")
    for i, r in enumerate(seeds):
        check_instance(r, f"seeds[{i}]", Mapping, "a dict with 'baseline' and 'modular'")
        for run in ("baseline", "modular"):
            if not isinstance(r.get(run), Mapping) or metric not in r[run]:
                raise ValueError(f"'seeds[{i}]' must hold the '{run}' metrics, with "
                                 f"'{metric}'. Got the keys {list(r)}.")
    runs = ["baseline", "modular"] + [run for run in ("sparse_control", "bimt") if all(
        isinstance(r.get(run), Mapping) for r in seeds)]
    numbers = {}
    for name, read, null in _headlines(metric, runs):
        values = []
        for r in seeds:
            try:
                values.append(read(r))
            except KeyError:
                values.append(None)
        if any(v is not None for v in values):
            numbers[name] = mean_interval(values, null=null).to_dict()
    return {"method": "mean and 95 % Student-t interval over seeds (mean ± t·sd/√n)",
            "n_seeds": len(seeds), "seeds": [r.get("seed") for r in seeds],
            "numbers": numbers}


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims, read off a :func:`summarize`-d run: does it hold here?

    ``verdict`` is ``"holds"`` (the interval is on the claimed side of no effect),
    ``"reversed"`` (on the other side), ``"not shown"`` (the interval holds no effect, or
    there is no interval: one seed), or for "little cost" ``"contradicted"`` (a measurable
    cost of more than 1 accuracy point or 5 % of the baseline's perplexity).
    """

    claim: str  # the claim in words
    number: str  # the summary number it is read from
    value: Interval  # that number's mean and 95 % interval over seeds
    verdict: str  # 'holds', 'reversed', 'not shown' or 'contradicted'

    def __str__(self) -> str:
        return f"{self.verdict:>9}: {self.claim} ({self.number} {self.value.format()})"


# (claim, number, the side of no effect the claim predicts: -1 below, +1 above, 0 "no effect")
_CLAIMS = (
    ("the loss makes the clustered layers modular", "modular_clusterability", None),
    ("at little cost in accuracy", "modular_accuracy_difference", 0),
    ("at little cost in perplexity", "modular_perplexity_difference", 0),
    ("modular circuits are smaller (attribution patching)", "modular_circuit_size_ratio", -1),
    ("modular circuits are smaller (greedy pruning)", "modular_circuit_size_ratio_pruning", -1),
    ("smaller than those of an equally sparse model without modules (patching)",
     "modular_vs_sparse_control_circuit_size_ratio", -1),
    ("smaller than those of an equally sparse model without modules (greedy pruning)",
     "modular_vs_sparse_control_circuit_size_ratio_pruning", -1),
    ("the modular model's clusters specialise in classes beyond a random partition's",
     "modular_specialization_above_control", +1),
)


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """The paper's claims, each with its number and a verdict on this run's seeds.

    A claim of a difference holds only when its interval excludes no effect on the claimed
    side; "little cost" holds when the interval includes no cost, or the mean cost is at most
    1 accuracy point (5 % of the baseline's perplexity); "modular" when the modular model's
    clusterability interval lies above 0.9.

    Args:
        results: what :func:`reproduce` returns as ``.results`` (or ``results.json``).

    Returns:
        One :class:`Claim` per claim the run measured, in the paper's order.

    Raises:
        TypeError: ``results`` not a dict.
        ValueError: ``results`` without a ``summary``.

    Example:
        >>> r = {"summary": {"numbers": {"modular_accuracy_difference":
        ...     mean_interval([-0.01, 0.004, -0.006], null=0.0).to_dict()}}}
        >>> print(claims(r)[0])
            holds: at little cost in accuracy (modular_accuracy_difference -0.004 ± 0.018)
    """
    check_instance(results, "results", Mapping, "a dict, as reproduce(...).results")
    summary = results.get("summary")
    if not isinstance(summary, Mapping) or "numbers" not in summary:
        raise ValueError(f"'results' must hold a 'summary' with 'numbers', as reproduce "
                         f"writes. Got the keys {list(results)}.")
    out = []
    for claim, number, side in _CLAIMS:
        if number not in summary["numbers"]:
            continue
        iv = Interval.from_dict(summary["numbers"][number])
        if iv.low is None or iv.high is None:
            verdict = "not shown"
        elif side is None:  # modular: the whole interval above 0.9
            verdict = "holds" if iv.low > 0.9 else "not shown"
        elif side == 0:  # little cost: no measurable cost, or a small one
            if number.endswith("perplexity_difference"):  # a cost is a rise
                base = summary["numbers"].get("baseline_perplexity", {}).get("mean")
                measurable, small = iv.low > 0, base is not None and iv.mean <= 0.05 * base
            else:  # a cost is a fall of accuracy
                measurable, small = iv.high < 0, iv.mean >= -0.01
            verdict = "holds" if not measurable or small else "contradicted"
        else:
            below, above = iv.high < iv.null, iv.low > iv.null
            verdict = ("holds" if (below if side < 0 else above)
                       else "reversed" if (above if side < 0 else below) else "not shown")
        out.append(Claim(claim, number, iv, verdict))
    return out


def reproduce(name: Experiment, *, profile: str | Profile | None = None, k: int = 4,
              lam: float = 20.0, seed: int = 0, seeds: int | None = None,
              model: str | None = None, out: str | Path | None = None, progress: bool = True,
              device: str | torch.device | None = None, cache: bool = True,
              method: str = "clusterability", bimt_lam: float | None = None) -> ExperimentResult:
    """Train a baseline and a modular model for one of the paper's experiments, over seeds.

    Each seed ``seed, seed + 1, …`` gets its own data split, initialisation and batch order,
    which the runs of that seed share: a baseline (``lam = 0``), the modular model (``lam``),
    and, for the image experiments, a *sparse control*: the same penalty and λ on a mask with
    as many entries as the blocks, scattered at random (:class:`modlib.core.loss.
    ScatteredMaskLoss`), so that it is as sparse as the modular model but has no modules.
    ``results.json`` holds every seed's results and a ``summary`` of the headline numbers with
    their 95 % intervals (:func:`summarize`).

    Args:
        name: ``"mnist"``, ``"cifar"``, ``"modadd"`` or ``"llm"``.
        profile: ``"ci"``, ``"cpu"``, ``"gpu"`` or a Profile; default :func:`modlib.profile`.
        k: clusters per layer.
        lam: λ of the modular run (the baseline uses 0).
        seed: the first seed; it seeds data, initialisation and training.
        seeds: how many seeds; default the profile's ``seeds`` (``ci`` 2, ``cpu`` 3, ``gpu``
            and ``paper`` 5).
        model: ``"paper"`` picks the authors' MLP for ``mnist`` (default: the course CNN);
            for ``llm``, ``"gpt2"``, ``"pythia-70m"`` (or ``"pythia"``) or ``"pythia-14m"``
            (default: the profile's ``llm_model``, GPT-2 but in the ``cpu`` profile).
        out: folder for the first seed's trained models' state dicts (``baseline.pt``,
            ``modular.pt``, ``sparse_control.pt``), ``results.json`` and the figures; None
            writes nothing. Checked (created, and a probe file written) before any work. The
            models are written as soon as their training ends, and ``results.json`` after every
            step, so a failure late in a long run loses nothing done before it. Started with
            several processes (``accelerate launch``), only the main process writes.
        progress: show progress bars.
        device: where to train; default CUDA when available, else the CPU. Under
            ``accelerate launch`` each process takes its own GPU.
        cache: reuse an identical earlier run from the cache folder
            (:func:`modlib.training.sources.cache_dir`, sub-folder ``runs``): same arguments,
            profile, device type, torch version and library source. A finished run is stored
            there (its results, and the first seed's models and training histories), so that
            notebook 04 does not train again what notebook 03 trained. False always trains.
        method: ``"clusterability"`` (the runs above) or ``"bimt"`` (``mnist`` and ``modadd``):
            each seed also trains a *BIMT* model (:class:`modlib.training.bimt.BIMTLoss`, λ =
            ``bimt_lam``, 20 rounds of swaps) from the same initialisation on the same batches.
            With ``cache``, the other runs come from the cached run of the same arguments
            without BIMT when there is one (``results.json`` then lists them as ``reused``), and
            only BIMT trains. Every run's results hold ``seconds_per_step`` (the wall time of
            its training, evaluations included, over its steps) and, for ``mnist`` and
            ``modadd``, ``connection_cost`` (BIMT's ``Σ |W_ij| d_ij`` over its layers).
        bimt_lam: λ of the BIMT run; default :data:`BIMT_LAMS` of the experiment.

    Returns:
        An :class:`ExperimentResult` with the first seed's models; ``.results`` is what
        ``results.json`` holds: ``seeds`` (one result per seed, each with ``seed``,
        ``baseline``, ``modular`` and, for images, ``sparse_control``), ``summary``, the first
        seed's ``baseline``/``modular``/``sparse_control`` again at the top level (the saved
        models'), and ``model`` and ``data``: the model and data actually used (e.g.
        ``"EleutherAI/pythia-70m"`` on ``"wikitext-2"``, or ``"tiny GPT-NeoX stand-in
        (offline)"`` on ``"pydoc-topics-offline"``), and for ``llm`` the ``tokenizer``
        (``name``, ``vocab_size``): always the model's own. With ``method="bimt"`` the result's
        ``bimt`` is the first seed's BIMT run, each seed's result has ``bimt``, and
        ``results.json`` has ``method``, ``bimt_lam`` and ``bimt_layers``.

    Raises:
        TypeError: an argument of the wrong type (e.g. ``k=2.0``, ``seed="0"``).
        ValueError: unknown experiment, model, profile, method or device; ``method="bimt"``
            for an experiment without BIMT (cifar, llm); ``k < 1``; ``seeds < 1``; ``lam`` or
            ``bimt_lam`` negative or not finite; ``out`` an existing file or a folder that cannot
            be created or written to; a token id the language model has no embedding for. All but
            the last are raised before any work.
        RuntimeError: something failed after training with ``out`` given: the message says
            which files were saved where; the original error is its ``__cause__``.

    Introduced in notebook 03.
    """
    _check_experiment(name, model)
    check_int(k, "k", minimum=1)
    check_real(lam, "lam", minimum=0)
    b_lam = _check_method(name, method, bimt_lam)
    check_int(seed, "seed")
    if seeds is not None:
        check_int(seeds, "seeds", minimum=1)
    check_bool(progress, "progress")
    check_bool(cache, "cache")
    dev = check_device(device)
    prof = _check_profile(profile)
    n_seeds = prof.seeds if seeds is None else seeds
    folder = None if out is None else check_out(out)  # last: it creates the folder
    start = time.perf_counter()
    saver = _Saver(folder) if folder is not None and is_main_process() else None
    bimt_key = {"method": method, "bimt_lam": b_lam} if method == "bimt" else {}
    stored = (_run_file(name, prof, k, lam, seed, n_seeds, model, dev, **bimt_key) if cache
              else None)
    result = _load_run(stored, name, prof, k, lam, seed, model, dev) if stored else None
    if result is not None:
        if saver is not None:
            saver.models({run: getattr(result, run).model for run in _runs(result)})
            saver.results(result.results)
            _figures(result, saver.folder, "perplexity" if name == "llm" else "accuracy", k)
        return result
    # method="bimt" after the same run without it (notebook 08 after 03 and 06): its baseline,
    # modular (and sparse control) runs are taken from the cache, and only BIMT trains
    plain = (_load_run(_run_file(name, prof, k, lam, seed, n_seeds, model, dev), name, prof, k,
                       lam, seed, model, dev) if method == "bimt" and cache else None)
    results: dict[str, Any] = {}
    first: dict[str, Any] = {}
    seen: set[str] = set()
    step = "training"
    try:
        for i, s in enumerate(range(seed, seed + n_seeds)):
            step = f"training of seed {s}"
            torch.manual_seed(s)
            with said_once(seen):  # "no internet, using ..." once, not once a seed
                setup = _setup(name, prof, s, model, k, lam, progress)
            init = copy.deepcopy(setup.model.state_dict())
            runs: list[tuple[str, float, type[ClusterabilityLoss] | type[BIMTLoss]]] = [
                ("baseline", 0.0, ClusterabilityLoss), ("modular", lam, ClusterabilityLoss)]
            if setup.circuit_label is not None:  # image classifiers: the sparsity control
                runs.append(("sparse_control", lam, ScatteredMaskLoss))
            if method == "bimt":  # modules left to emerge
                runs.append(("bimt", b_lam, BIMTLoss))
            reused = {} if plain is None else {run: plain.results["seeds"][i][run]
                                               for run in _runs(plain)}
            trained = {run: (getattr(plain, run).model, getattr(plain, run).history, None, None)
                       for run in reused if i == 0}  # the first seed's models are kept
            trained.update({run: _train(setup, init, k, run_lam, s, progress, dev,
                                        setup.partitions, loss_type)
                            for run, run_lam, loss_type in runs if run not in reused})
            # the modular run's layers and partitions (the block partitions of every run)
            loss = ClusterabilityLoss(setup.model, k, layers=setup.layers,
                                      partitions=setup.partitions)
            if i == 0:
                results = {"experiment": name, "profile": prof.name, "model": setup.model_label,
                           "data": setup.source,
                           **({"tokenizer": setup.tokenizer} if setup.tokenizer else {}),
                           "k": k, "lam": lam, "seed": seed, "n_seeds": n_seeds,
                           **({"method": method, "bimt_lam": b_lam,
                               "bimt_layers": trained["bimt"][2].layer_names}
                              if method == "bimt" else {}),
                           **({"reused": sorted(reused)} if reused else {}),
                           "seconds": None, "device": str(dev), "processes": world_size(),
                           "layers": loss.layer_names, **{run: {} for run in trained},
                           "seeds": []}
                if name in PAPER:
                    results["paper"] = PAPER[name]
                first = {"trained": trained, "partitions": loss.partitions,
                         "metric": setup.metric}
                if saver is not None:  # a finished training run is never lost
                    step = "saving"
                    saver.models({run: m for run, (m, _, _, _) in trained.items()})
                    saver.results(results)
            one: dict[str, Any] = {"seed": s, **reused}  # the cached runs' numbers as they are
            results["seeds"].append(one)
            if i == 0:
                results.update(reused)
            step = f"analysis of seed {s}"
            for run, (model_, _, run_loss, per_step) in trained.items():
                if run in reused:
                    continue
                # every run is measured on the block partitions (the sparse control's and
                # BIMT's own losses have other masks or none)
                measured = (run_loss if type(run_loss) is ClusterabilityLoss else
                            ClusterabilityLoss(model_, k, layers=loss.layer_names,
                                               partitions=loss.partitions))
                one[run] = _analyse(model_, measured, setup, s)
                one[run]["seconds_per_step"] = per_step  # the training's wall time a step
                if name in BIMT_LAMS:  # the cost BIMT lowers, for every run
                    one[run]["connection_cost"] = BIMTLoss(
                        model_, setup.bimt_layers).connection_cost()
                if i == 0:
                    results[run] = one[run]
                if saver is not None:
                    saver.results(results)
            results["summary"] = summarize(results["seeds"], setup.metric)
            results["seconds"] = round(time.perf_counter() - start, 1)
            if saver is not None:
                saver.results(results)
            if i > 0:
                del trained  # only the first seed's models are kept
        trained = first["trained"]
        outcome = {run: RunResult(model_, hist, results[run])
                   for run, (model_, hist, _, _) in trained.items()}
        result = ExperimentResult(outcome["baseline"], outcome["modular"], first["partitions"],
                                  results, outcome.get("sparse_control"), outcome.get("bimt"))
        if stored is not None and is_main_process():
            try:
                _store_run(stored, result)
            except OSError as e:  # a read-only cache: nothing is lost but the reuse
                warnings.warn(f"The run could not be cached in {stored.parent} "
                              f"({e.strerror or type(e).__name__}); it will train again next "
                              f"time.", stacklevel=2)
        if saver is not None:
            step = "figures"
            _figures(result, saver.folder, first["metric"], k)
    except Exception as e:
        if saver is None or not first:
            raise
        cause = f"{type(e).__name__}: {e}"
        if not saver.saved:
            raise RuntimeError(f"training finished, but saving it to {saver.folder} failed: "
                               f"{cause}") from e
        raise RuntimeError(f"training finished and was saved to {saver.folder} "
                           f"({', '.join(saver.saved)}); the {step} failed: {cause}") from e
    return result


def sweep(name: Experiment, *, lams: Sequence[float] = (20.0,), ks: Sequence[int] = (4,),
          profile: str | Profile | None = None, seed: int = 0, seeds: int | None = None,
          model: str | None = None, progress: bool = True,
          device: str | torch.device | None = None) -> list[dict[str, Any]]:
    """Modular runs over a grid of λ and k, for several seeds: the trade-off.

    Each seed has its own data split, initialisation and batch order, shared by all the runs
    of the grid; :func:`modlib.core.stats.group_seeds` turns the rows into a mean and 95 %
    interval per point, and :func:`modlib.viz.plot_tradeoff` draws them with error bars.

    Args:
        name: the experiment (as :func:`reproduce`).
        lams: values of λ (0 gives the baseline): a non-empty sequence of finite reals >= 0.
        ks: values of k: a non-empty sequence of ints >= 1. For ``llm``, each k gets its own
            spectral partitions of the pretrained model.
        seed: the first seed; seeds: how many (default the profile's ``seeds``).
        profile, model, device: as :func:`reproduce`.
        progress: a progress bar over the runs.

    Returns:
        One dict per run (seed × k × λ): ``seed``, ``k``, ``lam``, the test metrics,
        ``clusterability``, ``chance_level`` (of the training partitions' sizes),
        ``clusterability_spectral`` and ``chance_level_spectral`` (no ablations or circuits:
        :func:`reproduce` measures those).

    Raises:
        TypeError: ``lams`` or ``ks`` not a sequence, or holding values of the wrong type;
            ``seed`` or ``seeds`` not an int; ``progress`` not a bool.
        ValueError: unknown experiment, model, profile or device; empty ``lams`` or ``ks``; a
            ``k < 1``, ``seeds < 1``, or a ``lam`` that is negative or not finite.

    Introduced in notebook 03.
    """
    from tqdm.auto import tqdm

    _check_experiment(name, model)
    lams = _check_grid(lams, "lams", "finite reals >= 0",
                       lambda v, n: check_real(v, n, minimum=0))
    ks = _check_grid(ks, "ks", "ints >= 1", lambda v, n: check_int(v, n, minimum=1))
    check_int(seed, "seed")
    if seeds is not None:
        check_int(seeds, "seeds", minimum=1)
    check_bool(progress, "progress")
    dev = check_device(device)
    prof = _check_profile(profile)
    n_seeds = prof.seeds if seeds is None else seeds
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    grid = [(s, k, lam) for s in range(seed, seed + n_seeds) for k in ks for lam in lams]
    setup, partitions, init = None, {}, {}
    for s, k, lam in tqdm(grid, desc="runs", disable=not progress):
        if setup is None or s != rows[-1]["seed"]:  # a new seed: its own data, init, batches
            torch.manual_seed(s)
            with said_once(seen):
                setup = _setup(name, prof, s, model, min(ks), max(lams), progress)
            partitions = {min(ks): setup.partitions}  # built with the set-up (llm), else None
            init = copy.deepcopy(setup.model.state_dict())
        if k not in partitions:  # llm: the pretrained model's own clusters, k of them
            partitions[k] = None if setup.partitioner is None else setup.partitioner(k)
        model_, _, loss, _ = _train(setup, init, k, lam, s, False, dev, partitions[k])
        metrics = _analyse(model_, loss, setup, s, interpret=False)
        rows.append({"seed": s, "k": k, "lam": lam,
                     **{key: v for key, v in metrics.items() if key != "layers"}})
    return rows


@contextlib.contextmanager
def said_once(seen: set[str]) -> Iterator[None]:
    """Print what the body prints, but only the lines not in ``seen`` (which it then holds).

    Every seed of a run loads its data afresh, and an offline loader says so each time; the
    reader needs the sentence once.

    Example:
        >>> seen = set()
        >>> for _ in range(2):
        ...     with said_once(seen):
        ...         print("modlib.data: MNIST: no internet, using the 5,000 digits.")
        modlib.data: MNIST: no internet, using the 5,000 digits.
    """
    check_instance(seen, "seen", set, "a set of the lines already printed")
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line not in seen:
                seen.add(line)
                print(line, flush=True)


def _runs(result: ExperimentResult) -> list[str]:
    return (["baseline", "modular"] + (["sparse_control"] if result.sparse_control else [])
            + (["bimt"] if result.bimt else []))


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    """A hash of the source a run's numbers depend on: every module but the course part's
    (figures, widgets, exercises; this module counts) and the package's ``__init__`` and command
    line. A cached run is reused only by that code."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if (relative.startswith("course/") and path != Path(__file__).resolve()) or \
                relative in ("__init__.py", "__main__.py"):  # names and the command line
            continue
        digest.update(relative.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run_file(name: str, prof: Profile, k: int, lam: float, seed: int, n_seeds: int,
              model: str | None, dev: torch.device, **bimt: Any) -> Path:
    """Where a finished run with these arguments is cached."""
    key = json.dumps({"name": name, "profile": asdict(prof), "k": k, "lam": lam, "seed": seed,
                      "seeds": n_seeds, "model": model, "device": dev.type, **bimt,
                      "torch": torch.__version__, "source": _source_hash()}, sort_keys=True,
                     default=str)
    return cache_dir() / "runs" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"


def _store_run(path: Path, result: ExperimentResult) -> None:
    runs = _runs(result)
    save_atomic({"results": json.dumps(result.results),
                 "histories": json.dumps({run: asdict(getattr(result, run).history)
                                          for run in runs}),
                 "states": {run: {key: v.detach().cpu()
                                  for key, v in getattr(result, run).model.state_dict().items()}
                            for run in runs}}, path)


def _load_run(path: Path, name: str, prof: Profile, k: int, lam: float, seed: int,
              model: str | None, dev: torch.device) -> ExperimentResult | None:
    """A cached run, its models rebuilt on ``dev`` from the first seed's set-up; None when
    there is none, or it cannot be read (then it is trained again, and replaced)."""
    if not path.is_file():
        return None
    try:
        saved = load_saved(path, what="cached run", keys=("results", "histories", "states"),
                           remedy="It will be trained again.")
    except ValueError as e:
        warnings.warn(str(e), stacklevel=3)
        return None
    results = json.loads(saved["results"])
    histories = json.loads(saved["histories"])
    torch.manual_seed(seed)
    setup = _setup(name, prof, seed, model, k, lam, False)
    runs = {}
    for run, state in saved["states"].items():
        net = copy.deepcopy(setup.model)
        net.load_state_dict(state)
        runs[run] = RunResult(net.to(dev), History(**histories[run]), results[run])
    loss = ClusterabilityLoss(runs["modular"].model, k, layers=setup.layers,
                              partitions=setup.partitions)
    return ExperimentResult(runs["baseline"], runs["modular"], loss.partitions, results,
                            runs.get("sparse_control"), runs.get("bimt"))


class _Saver:
    """Writes a run's files into ``folder`` as they come, and remembers which it wrote."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[str] = []

    def _note(self, what: str) -> None:
        if what not in self.saved:
            self.saved.append(what)

    def models(self, models: dict[str, nn.Module]) -> None:
        """Each model's state dict (on the CPU) as ``{run}.pt``."""
        for run, model in models.items():
            state = {key: v.detach().cpu() for key, v in model.state_dict().items()}
            torch.save(state, self.folder / f"{run}.pt")
            self._note(f"{run}.pt")

    def results(self, results: dict[str, Any]) -> None:
        """``results.json``, replaced whole (a reader never sees half a file)."""
        tmp = self.folder / ".results.json.tmp"
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(self.folder / "results.json")
        self._note("results.json")


def _figures(result: ExperimentResult, out: Path, metric: str, k: int) -> None:
    """The weight matrices of both models, the ablations and the training curves.

    Every figure's title says which model and which data were actually used.
    """
    import matplotlib.pyplot as plt

    from .viz import plot_ablation, plot_history, plot_weight_grid

    used = f"{result.results['model']} on {result.results['data']}"
    parts = result.partitions
    for run_name, run in (("baseline", result.baseline), ("modular", result.modular)):
        modules = dict(run.model.named_modules())
        weights = {n: layer_matrix(modules[n]).detach() for n in parts}
        fig = plot_weight_grid(weights, parts,
                               suptitle=f"{run_name}: weights in cluster order\n{used}")
        fig.savefig(out / f"weights_{run_name}.png", dpi=110)
        plt.close(fig)
    if "ablation_drop" in result.baseline.metrics:
        fig = plot_ablation({run: torch.tensor(getattr(result, run).metrics["ablation_drop"])
                             for run in ("baseline", "modular")})
        fig.suptitle(used, fontsize=9)
        fig.savefig(out / "ablation.png", dpi=110)
        plt.close(fig)
    fig = plot_history({"baseline": result.baseline.history, "modular": result.modular.history},
                       metric=metric, k=k)
    title = used
    paper = result.results.get("paper")
    if paper:  # the authors' numbers beside ours, where the set-up matches
        title += (f"\nauthors: accuracy {paper['baseline']['accuracy']:.3f} baseline vs "
                  f"{paper['modular']['accuracy']:.3f} modular at clusterability "
                  f"{paper['modular']['clusterability']} ({paper['source']})")
    fig.suptitle(title, fontsize=8)
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)
