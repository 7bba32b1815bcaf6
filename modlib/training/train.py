"""One small, visible training loop for every experiment of the course.

``fit`` trains a classifier or a causal language model with AdamW, optionally adding the
clusterability loss ``lam * (1 - mean clusterability)`` with a linear warm-up of ``lam``
(Golechha et al. 2025). It shows progress bars, evaluates every epoch, keeps a ``History``,
stops loudly on a NaN/Inf loss, and writes checkpoints atomically from which ``resume`` continues
bit-identically on a CPU. Everything it is given is checked before training starts: the config,
the loaders, that every layer of ``loss`` is still a module of the model, and that a checkpoint to
resume from is readable and was written for the same model, loss and config; every batch is
checked as it comes.

On a GPU the forward pass runs in mixed precision, as :mod:`modlib.training.precision` plans it
(:func:`amp_plan`, re-exported here): bfloat16 where the GPU has it natively, float16 with a
gradient scaler on older GPUs such as Colab's T4. The clusterability loss is always computed in
float32, outside autocast.

Started by ``accelerate launch`` (or ``torchrun``) with several processes, the same loop runs
data-parallel through Hugging Face Accelerate (DDP): each process trains on its share of every
batch and the gradients, the clusterability term's included, are averaged before each step.
Introduced in notebook 03; several GPUs in notebook 07.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..core.graph import squared_matrix
from ..core.loss import ClusterabilityLoss
from ..hooks import eval_mode
from ..validate import check_bool, check_choice, check_int, check_module, check_real, describe
from .bimt import BIMTLoss
from .precision import Precision, amp_plan, autocast, grad_scaler
from .sources import load_saved, save_atomic, unusable

__all__ = ["TrainConfig", "History", "fit", "evaluate", "load_checkpoint", "world_size",
           "is_main_process", "amp_plan", "Precision"]  # amp_plan, Precision: from .precision

Task = Literal["classify", "lm"]


@dataclass
class TrainConfig:
    """Settings of :func:`fit`; saved with every checkpoint and in ``results.json``."""

    epochs: int = 1  # passes over the training loader
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay (grokking needs ~1.0)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    lam: float = 20.0  # λ, weight of the clusterability loss (used only when a loss is given)
    lam_warmup_steps: int = 0  # λ grows linearly from 0 over this many steps
    clip_grad: float | None = 1.0  # max global gradient norm; None turns clipping off
    task: Task = "classify"  # "classify": batches (X, y); "lm": token blocks (B, T + 1)
    max_steps: int | None = None  # stop after this many optimiser steps (None: all epochs)
    seed: int = 0  # seeds the global RNG at the start (dropout, shuffling)
    precision: Precision = "auto"  # "auto": bf16 on GPUs that have it, fp16 on older GPUs,
    # fp32 on the CPU (see amp_plan); "bf16", "fp16" or "fp32" force one
    log_every: int = 10  # record per-layer clusterability every this many steps
    checkpoint_dir: str | None = None  # where checkpoints go (None: no checkpoints)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        """Check every field (type, range, finiteness); normalise betas and checkpoint_dir."""
        self.epochs = check_int(self.epochs, "epochs", minimum=1)
        self.lr = check_real(self.lr, "lr", minimum=0, low_open=True)
        self.weight_decay = check_real(self.weight_decay, "weight_decay", minimum=0)
        if isinstance(self.betas, (str, bytes)) or not hasattr(self.betas, "__iter__"):
            raise TypeError(f"'betas' must be a pair (beta1, beta2). Got {describe(self.betas)}.")
        self.betas = tuple(self.betas)  # a list after a JSON round trip
        if len(self.betas) != 2:
            raise ValueError(f"'betas' must be a pair (beta1, beta2). Got {self.betas!r}.")
        self.betas = tuple(check_real(beta, f"betas[{i}]", minimum=0, maximum=1, high_open=True)
                           for i, beta in enumerate(self.betas))
        self.lam = check_real(self.lam, "lam", minimum=0)
        self.lam_warmup_steps = check_int(self.lam_warmup_steps, "lam_warmup_steps", minimum=0)
        self.clip_grad = check_real(self.clip_grad, "clip_grad", minimum=0, low_open=True,
                                    none_ok=True)
        check_choice(self.task, "task", get_args(Task))
        self.max_steps = check_int(self.max_steps, "max_steps", minimum=1, none_ok=True)
        self.seed = check_int(self.seed, "seed", minimum=0)
        check_choice(self.precision, "precision", get_args(Precision))
        self.log_every = check_int(self.log_every, "log_every", minimum=1)
        if self.checkpoint_dir is not None:
            folder = self.checkpoint_dir
            if isinstance(folder, os.PathLike):
                folder = os.fspath(folder)
            if not isinstance(folder, str):
                raise TypeError(f"'checkpoint_dir' must be a folder (str or path) or None. "
                                f"Got {describe(self.checkpoint_dir)}.")
            if not folder:
                raise ValueError("'checkpoint_dir' must be a folder (str or path) or None. "
                                 "Got ''.")
            self.checkpoint_dir = folder  # a str: checkpoints hold plain types only

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config saved by ``asdict``; unknown keys are refused with a ValueError.

        A config saved before ``precision`` existed holds ``amp`` (bool) instead: True reads
        as ``"auto"``, False as ``"fp32"``.
        """
        if not isinstance(d, dict):
            raise TypeError(f"'d' must be a dict of TrainConfig fields. Got {describe(d)}.")
        d = dict(d)
        if "amp" in d and "precision" not in d:
            d["precision"] = "auto" if d.pop("amp") else "fp32"
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown TrainConfig fields: {sorted(unknown)}.")
        return cls(**d)


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes:
        steps: one dict per optimiser step: ``step``, ``task_loss``, ``lam`` and, with a
            clusterability loss, ``clusterability`` (mean over layers) and, every
            ``log_every`` steps, ``layers`` ({name: clusterability}).
        epochs: one dict per epoch: ``epoch``, ``train_loss``, the evaluation metrics
            (``eval_loss`` and ``accuracy`` or ``perplexity``) and ``layers``.
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def column(self, key: str, *, per: Literal["steps", "epochs"] = "epochs") -> list[Any]:
        """The values of one key over steps or epochs (missing entries skipped)."""
        if not isinstance(key, str):
            raise TypeError(f"'key' must be a str. Got {describe(key)}.")
        check_choice(per, "per", ("steps", "epochs"))
        return [row[key] for row in getattr(self, per) if key in row]


def _describe_batch(batch: Any) -> str:
    if isinstance(batch, (list, tuple)):
        items = ", ".join(describe(b) for b in batch[:3]) + (", ..." if len(batch) > 3 else "")
        return f"a {type(batch).__name__} of {len(batch)} items ({items})"
    return describe(batch)


def _check_batch(batch: Any, task: Task, where: str) -> Tensor | tuple[Tensor, Tensor]:
    """The tensors of one batch: (X, y) for "classify", the token blocks for "lm"."""
    if task == "classify":
        if (isinstance(batch, (list, tuple)) and len(batch) == 2
                and all(isinstance(t, Tensor) for t in batch)):
            X, y = batch
            if X.ndim >= 1 and y.ndim >= 1 and len(X) == len(y) and len(X) > 0:
                return X, y
        raise ValueError(f"'{where}' must yield batches (X, y) of two tensors with the same "
                         f"number of samples: inputs and class labels (task='classify'). Got "
                         f"{_describe_batch(batch)}.")
    tokens = batch[0] if isinstance(batch, (list, tuple)) and len(batch) == 1 else batch
    if (not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.shape[0] == 0
            or tokens.shape[1] < 2 or tokens.dtype.is_floating_point or tokens.is_complex()
            or tokens.dtype == torch.bool):
        raise ValueError(f"'{where}' must yield token blocks: integer tensors (B, T + 1) with "
                         f"T >= 1 (task='lm'). Got {_describe_batch(batch)}.")
    return tokens


def _batch_loss(model: nn.Module, batch: Any, task: Task, device: torch.device,
                where: str = "loader") -> tuple[Tensor, Tensor, int]:
    """(mean loss, number correct or summed loss, number of targets) of one batch."""
    data = _check_batch(batch, task, where)
    if task == "classify":
        X, y = data[0].to(device), data[1].to(device)
        logits = model(X)
        loss = nn.functional.cross_entropy(logits.float(), y)
        return loss, (logits.argmax(-1) == y).sum(), y.numel()
    tokens = data.to(device)  # (B, T + 1)
    out = model(tokens[:, :-1])
    logits = out.logits if hasattr(out, "logits") else out  # (B, T, vocab)
    targets = tokens[:, 1:]
    loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    return loss, loss.detach() * targets.numel(), targets.numel()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, task: Task = "classify") -> dict[str, float]:
    """Mean loss and accuracy (classify) or perplexity (lm) of ``model`` on ``loader``.

    The model runs in eval mode (no dropout); each module's own mode is restored afterwards.

    Args:
        model: the network (on the device to evaluate on).
        loader: batches ``(X, y)`` (``task="classify"``) or token blocks ``(B, T + 1)``
            (``task="lm"``).
        task: ``"classify"`` or ``"lm"``.

    Returns:
        ``{"eval_loss", "accuracy"}`` (classify) or ``{"eval_loss", "perplexity"}`` (lm),
        averaged over every target of the loader.

    Raises:
        TypeError: ``model`` is not a torch.nn.Module.
        ValueError: an unknown ``task``, a loader that yields no data, or a batch that is not
            ``(X, y)`` (classify) or a block of tokens (lm).

    Example:
        >>> data = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]
        >>> sorted(evaluate(nn.Linear(3, 2), data))
        ['accuracy', 'eval_loss']

    Introduced in notebook 03.
    """
    check_module(model)
    _check_parameters(model, "evaluate")
    check_choice(task, "task", get_args(Task))
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"'loader' must be a DataLoader (or another iterable of batches). "
                        f"Got {describe(loader)}.")
    return _evaluate(model, loader, task, "loader")


@torch.no_grad()
def _evaluate(model: nn.Module, loader: Any, task: Task, where: str) -> dict[str, float]:
    device = next(model.parameters()).device
    total_loss, total_score, n = 0.0, 0.0, 0
    with eval_mode(model):
        for batch in loader:
            loss, score, count = _batch_loss(model, batch, task, device, where)
            total_loss += float(loss) * count
            total_score += float(score)
            n += count
    if n == 0:
        raise ValueError(f"'{where}' yielded no data to evaluate on.")
    mean = total_loss / n
    if task == "classify":
        return {"eval_loss": mean, "accuracy": total_score / n}
    return {"eval_loss": mean, "perplexity": float(torch.tensor(mean).exp())}


# The layout of a checkpoint: 1 had no "format" and no "loss" entry; 2 adds both.
_CHECKPOINT_FORMAT = 2
_CHECKPOINT_KEYS = ("model", "optimizer", "config", "history", "epoch", "step", "rng",
                    "loader_rng")
_CHECKPOINT_REMEDY = ("Delete it and train from the start, or resume from another checkpoint "
                      "written by modlib's fit.")
# Fields of TrainConfig that may differ between a checkpoint and the config that resumes it,
# each with a warning: they change how long training runs or what it records, not its steps.
# checkpoint_dir may differ silently; every other field must be the checkpoint's.
_MAY_DIFFER = ("epochs", "max_steps", "seed", "log_every")


def _is_state(d: object) -> bool:
    return isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, Tensor)
                                       for k, v in d.items())


def _checkpoint_problem(ckpt: dict[str, Any]) -> str | None:
    """What is wrong with a loaded checkpoint's entries, or None."""
    version = ckpt.get("format", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"its 'format' is {describe(version)}, not a format of modlib's checkpoints"
    if version > _CHECKPOINT_FORMAT:
        return (f"it was written by a newer modlib (checkpoint format {version}; this one reads "
                f"up to {_CHECKPOINT_FORMAT}); upgrade modlib to resume from it")
    if not _is_state(ckpt["model"]) or not ckpt["model"]:
        return "its 'model' entry is not a model's state_dict"
    opt = ckpt["optimizer"]
    if not (isinstance(opt, dict) and {"state", "param_groups"} <= set(opt)):
        return "its 'optimizer' entry is not an optimiser's state_dict"
    try:
        TrainConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as exc:
        return f"its 'config' entry is not a valid TrainConfig ({exc})"
    hist = ckpt["history"]
    if not (isinstance(hist, dict) and set(hist) == {"steps", "epochs"}
            and all(isinstance(v, list) for v in hist.values())):
        return "its 'history' entry is not a History"
    for key in ("epoch", "step"):
        if isinstance(ckpt[key], bool) or not isinstance(ckpt[key], int) or ckpt[key] < 0:
            return f"its '{key}' entry is {describe(ckpt[key])}, not a count"
    if not (isinstance(ckpt["rng"], Tensor) and ckpt["rng"].dtype == torch.uint8):
        return "its 'rng' entry is not a random generator's state"
    if not (isinstance(ckpt["loader_rng"], list)
            and all(isinstance(g, Tensor) for g in ckpt["loader_rng"])):
        return "its 'loader_rng' entry is not a list of random generators' states"
    if ckpt.get("scaler") is not None and not isinstance(ckpt["scaler"], dict):
        return "its 'scaler' entry is not a gradient scaler's state"
    spec = ckpt.get("loss")
    if spec is not None and not (isinstance(spec, dict) and isinstance(spec.get("layers"), list)
                                 and (isinstance(spec.get("k"), int)
                                      or spec.get("method") == "bimt")):
        return "its 'loss' entry is not the description of a ClusterabilityLoss or BIMTLoss"
    return None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`fit`, loaded safely (``weights_only=True``).

    Returns:
        ``{"model", "optimizer", "config", "history", "epoch", "step", "rng", "scaler",
        "loss", ...}``; ``"scaler"`` is the fp16 gradient scaler's state, None in other
        precisions; ``"loss"`` is ``{"k", "layers"}`` of the clusterability loss trained with,
        None without one.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is empty, truncated, damaged, or not a checkpoint of ``fit`` (a
            plain state_dict, say): one message names the file and what to do.
    """
    return load_saved(path, what="checkpoint", remedy=_CHECKPOINT_REMEDY, keys=_CHECKPOINT_KEYS,
                      check=_checkpoint_problem)


def _generators(loader: Any) -> list[torch.Generator]:
    found = [getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None),
                                                          "generator", None)]
    return [g for g in found if isinstance(g, torch.Generator)]


def _loss_spec(loss: ClusterabilityLoss | BIMTLoss | None) -> dict[str, Any] | None:
    if isinstance(loss, BIMTLoss):
        return {"method": "bimt", "layers": loss.layer_names, "gap": loss.gap,
                "swap_every": loss.swap_every}
    return None if loss is None else {"k": loss.k, "layers": loss.layer_names}


def _checkpoint(model, opt, config, history, epoch, step, loader, loss) -> dict[str, Any]:
    return {"format": _CHECKPOINT_FORMAT, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "config": asdict(config), "history": asdict(history),
            "epoch": epoch, "step": step, "rng": torch.get_rng_state(),
            "loader_rng": [g.get_state() for g in _generators(loader)], "loss": _loss_spec(loss)}


def _some(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit
                                       else "")


def _check_resume(path: str | os.PathLike, ckpt: dict[str, Any], model: nn.Module,
                  config: TrainConfig, loss: ClusterabilityLoss | BIMTLoss | None) -> None:
    """Refuse a checkpoint written for another model, loss or config; warn of safe changes."""
    saved = TrainConfig.from_dict(ckpt["config"])
    differ = [f.name for f in fields(TrainConfig) if f.name != "checkpoint_dir"
              and getattr(saved, f.name) != getattr(config, f.name)]
    refused = [n for n in differ if n not in _MAY_DIFFER]
    if refused:
        was = ", ".join(f"{n}={getattr(saved, n)!r}" for n in refused)
        now = ", ".join(f"{n}={getattr(config, n)!r}" for n in refused)
        raise unusable(path, "checkpoint", f"it was trained with {was}, but 'config' has {now}",
                       "Resume with the checkpoint's values of these fields, or train from the "
                       "start.")
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
    problems = []
    if missing := [k for k in own if k not in theirs]:
        problems.append(f"'model' has {_some(missing)}, which the checkpoint lacks")
    if extra := [k for k in theirs if k not in own]:
        problems.append(f"the checkpoint has {_some(extra)}, which 'model' lacks")
    if shapes := [f"{k} {theirs[k]} there, {own[k]} here" for k in own
                  if k in theirs and own[k] != theirs[k]]:
        problems.append(f"shapes differ: {_some(shapes)}")
    if problems:
        raise unusable(path, "checkpoint", "it was written for another model: "
                       + "; ".join(problems), "Resume with the model it was trained with, or "
                       "train from the start.")
    if "loss" in ckpt and ckpt["loss"] != _loss_spec(loss):  # (format 1 did not record it)
        def said(spec: dict[str, Any] | None) -> str:
            if spec is None:
                return "no clusterability loss"
            if spec.get("method") == "bimt":
                return (f"a BIMT loss on layers {spec['layers']} (gap {spec.get('gap')}, swaps "
                        f"every {spec.get('swap_every')} steps)")
            return f"a clusterability loss of k={spec['k']} on layers {spec['layers']}"

        raise unusable(path, "checkpoint", f"it was trained with {said(ckpt['loss'])}, but "
                       f"'loss' is {said(_loss_spec(loss))}", "Resume with the loss it was "
                       "trained with, or train from the start.")
    for n in differ:  # only once nothing is refused
        warnings.warn(f"Resuming from {path} with {n}={getattr(config, n)!r}; the checkpoint "
                      f"was written with {n}={getattr(saved, n)!r}.", UserWarning, stacklevel=3)


def _restore(ckpt, model, opt, loader) -> tuple[History, int, int]:
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    for g, state in zip(_generators(loader), ckpt["loader_rng"], strict=False):
        g.set_state(state)
    return History(**ckpt["history"]), ckpt["epoch"], ckpt["step"]


def _check_loss(loss: object, model: nn.Module) -> None:
    """Refuse a loss whose layers are not (all, and in their shapes) modules of ``model``."""
    if not isinstance(loss, (ClusterabilityLoss, BIMTLoss)):
        raise TypeError(f"'loss' must be a ClusterabilityLoss or BIMTLoss of 'model' or None. "
                        f"Got {describe(loss)}.")
    own = {id(m) for m in model.modules()}
    layers = loss.layers
    kind = type(loss).__name__
    if not any(id(m) in own for m in layers.values()):
        raise ValueError("'loss' was built for another model: none of its layers is in "
                         "'model'.")
    now = dict(model.named_modules())
    for name, module in layers.items():
        if id(module) not in own:
            how = (f": model.{name} was replaced after the loss was built" if name in now
                   else "")
            raise ValueError(f"'loss' layer '{name}' is no longer a module of 'model'{how}. "
                             f"Build the {kind} again from the model as it is now.")
        if isinstance(loss, BIMTLoss):
            shape, built = tuple(module.weight.shape), loss.shapes[name]
        else:
            shape, built = tuple(squared_matrix(module).shape), loss.partitions[name].shape
        if shape != built:
            raise ValueError(f"'loss' layer '{name}' has weights of shape {shape} now, but the "
                             f"loss was built for {built}. Build the {kind} again from the "
                             f"model as it is now.")


def _check_parameters(model: nn.Module, what: str) -> None:
    if next(model.parameters(), None) is None:
        raise ValueError(f"'model' has no parameters to {what}. Got {describe(model)}.")


def _check_loader(loader: object, name: str, *, none_ok: bool = False) -> None:
    if loader is None and none_ok:
        return
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"'{name}' must be a DataLoader (or another iterable of batches). "
                        f"Got {describe(loader)}.")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError(f"'{name}' is empty: it yields no batches (a dataset of 0 samples, or "
                         f"drop_last=True with fewer samples than batch_size).")


def world_size() -> int:
    """How many processes train together: ``WORLD_SIZE`` as set by ``accelerate launch`` or
    ``torchrun``, 1 in a plain Python process.

    Introduced in notebook 07.
    """
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(1, int(value))
    except ValueError:
        raise ValueError(f"The environment variable WORLD_SIZE must be an integer. Got "
                         f"{value!r}.") from None


def is_main_process() -> bool:
    """True in the process that writes files and prints: rank 0 (``RANK``), or the only one.

    Introduced in notebook 07.
    """
    return os.environ.get("RANK", "0") == "0"


def _accelerator(given: Any) -> Any:
    """The Accelerator to train with: the one given, a new one when several processes were
    launched, else None (a plain single-device loop)."""
    if given is not None:
        missing = [m for m in ("prepare", "backward") if not hasattr(given, m)]
        if missing:
            raise TypeError(f"'accelerator' must be an accelerate.Accelerator or None. Got "
                            f"{describe(given)}, which has no {', '.join(missing)}.")
        return given
    if world_size() == 1:
        return None
    try:
        from accelerate import Accelerator
    except ImportError:  # launched with several processes, but the [llm] extra is missing
        raise ImportError("Training in several processes needs Hugging Face Accelerate: "
                          "pip install 'modular-training-course[llm]'.") from None
    return Accelerator(cpu=not torch.cuda.is_available())


def _optimizer_step(params: list[Tensor], opt: Any, scaler: Any, clip_grad: float | None,
                    accelerator: Any) -> None:
    """Clip the gradients and step. Under fp16 the gradients are unscaled first, so that
    ``clip_grad`` bounds the true gradient norm; a step whose gradients hold Inf or NaN
    (the scale was too high) is skipped and the scale lowered, as ``GradScaler`` does. An
    Accelerator clips with its own method, which unscales its own scaler (if it has one)."""
    if scaler is not None:
        scaler.unscale_(opt)
    if clip_grad is not None:
        getattr(accelerator, "clip_grad_norm_", nn.utils.clip_grad_norm_)(params, clip_grad)
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()


def _check_finite(loss: Tensor, step: int, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"The training loss became {float(loss.detach())} at step "
                                 f"{step} (epoch {epoch}). Lower 'lr' or 'lam', or keep "
                                 f"'clip_grad' on.")


def fit(model: nn.Module, train_loader: DataLoader, *, config: TrainConfig | None = None,
        loss: ClusterabilityLoss | BIMTLoss | None = None,
        eval_loader: DataLoader | None = None,
        resume: str | os.PathLike | None = None, progress: bool = True,
        accelerator: Any = None) -> History:
    """Train ``model`` in place; with ``loss``, minimise ``task loss + lam * loss()``.

    Args:
        model: the network (on the device to train on).
        train_loader: batches ``(X, y)`` (``task="classify"``) or token blocks ``(B, T + 1)``
            (``task="lm"``).
        config: a :class:`TrainConfig`; default ``TrainConfig()``.
        loss: a :class:`modlib.ClusterabilityLoss` of ``model``, or a
            :class:`modlib.training.bimt.BIMTLoss` (brain-inspired modular training: ``lam``
            times the connection cost, and a round of neuron swaps every ``swap_every`` steps,
            whose count the step's history row holds as ``swaps``); None trains the task alone.
        eval_loader: evaluated after every epoch (accuracy or perplexity).
        resume: path of a checkpoint written by ``fit``: training continues from it (model,
            optimiser, gradient scaler, random state, history), bit-identically on a CPU.
        progress: show progress bars (epochs, and batches within an epoch).
        accelerator: an ``accelerate.Accelerator`` to train with. By default one is made when
            the process was started with others (``WORLD_SIZE`` > 1, as under ``accelerate
            launch``); then the model, optimiser and training loader are ``prepare``-d (DDP),
            only the main process shows progress and writes checkpoints, and every process
            evaluates the whole ``eval_loader`` on its identical copy of the model.

    Returns:
        The :class:`History` (also stored in every checkpoint). The model's gradients are
        cleared (``.grad`` None), so that a trained model holds no optimiser-step memory.

    Raises:
        TypeError: ``model`` is not a torch.nn.Module, ``config`` not a TrainConfig (a dict:
            pass ``TrainConfig(**d)``), ``loss`` not a ClusterabilityLoss or BIMTLoss, a loader not
            iterable, or ``progress`` not a bool.
        FloatingPointError: the loss became NaN or Inf (the message names the step).
        ValueError: a bad config (its fields are checked again here), an empty loader, a batch
            that is not ``(X, y)`` (classify) or a block of tokens (lm), a loss built for
            another model or one of whose layers is no longer the model's (replaced, or
            reshaped, after the loss was built: the message names it), a checkpoint to resume
            from that cannot be read or was written for another model, loss or config (the
            message names the file and the differing fields; fields that only change how long
            training runs, such as more ``epochs``, are warned of instead), or
            ``precision="bf16"`` on a GPU without bfloat16 (see :func:`amp_plan`).

    Introduced in notebook 03.
    """
    check_module(model)
    _check_parameters(model, "train")
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        hint = "; build one with TrainConfig(**config)" if isinstance(config, dict) else ""
        raise TypeError(f"'config' must be a TrainConfig or None. Got {describe(config)}"
                        f"{hint}.")
    config._validate()  # again: a field may have been changed since it was made
    check_bool(progress, "progress")
    _check_loader(train_loader, "train_loader")
    _check_loader(eval_loader, "eval_loader", none_ok=True)
    if loss is not None:
        _check_loss(loss, model)
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise TypeError(f"'resume' must be the path of a checkpoint (str or os.PathLike) or "
                        f"None. Got {describe(resume)}.")
    ckpt: dict[str, Any] = {}
    if resume is not None:
        ckpt = load_checkpoint(resume)
        _check_resume(resume, ckpt, model, config, loss)
    accelerator = _accelerator(accelerator)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                            weight_decay=config.weight_decay)
    history, start_epoch, step = History(), 0, 0
    if resume is not None:
        history, start_epoch, step = _restore(ckpt, model, opt, train_loader)
    else:
        torch.manual_seed(config.seed)
    inner, loader, main = model, train_loader, True  # the module itself, the loader, rank 0?
    if accelerator is not None:  # DDP: 'model' becomes the wrapper; 'loss' keeps inner's layers
        model, opt, loader = accelerator.prepare(model, opt, train_loader)
        main = accelerator.is_main_process
        progress = progress and accelerator.is_local_main_process
    device = next(model.parameters()).device
    plan = amp_plan(device, config.precision)  # 'bf16', 'fp16' or 'fp32'
    if getattr(accelerator, "mixed_precision", "no") != "no":
        plan = "fp32"  # launched with --mixed_precision: Accelerate autocasts and scales itself
    amp, scaler = autocast(device, plan), grad_scaler(device, plan)
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    model.train()
    params = list(model.parameters())
    n_epochs = config.epochs
    if config.max_steps is not None and hasattr(loader, "__len__") and len(loader):
        n_epochs = min(n_epochs, -(-config.max_steps // len(loader)))  # ceil division
    for epoch in tqdm(range(start_epoch, n_epochs), desc="epochs", disable=not progress,
                      initial=start_epoch, total=n_epochs):
        running, batches = 0.0, 0
        if accelerator is not None and hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)  # a new shuffle each epoch, the same on every process
        # no bar per epoch for full-batch training (modular addition: thousands of epochs of
        # one batch each), where the epochs bar already counts the steps
        single = hasattr(loader, "__len__") and len(loader) <= 1
        bar = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not progress or single)
        for batch in bar:
            lam = config.lam * min(1.0, (step + 1) / max(1, config.lam_warmup_steps))
            with amp:
                task_loss, _, _ = _batch_loss(model, batch, config.task, device,
                                              "train_loader")
            total, row = task_loss, {"step": step, "task_loss": float(task_loss.detach()),
                                       "lam": lam}
            if loss is not None:
                c_loss = loss()  # outside autocast: float32 weights, float32 sums
                total = task_loss + lam * c_loss
                if isinstance(loss, BIMTLoss):
                    row["connection_cost"] = float(c_loss.detach())
                else:
                    row["clusterability"] = 1.0 - float(c_loss.detach())
                    if step % config.log_every == 0:
                        row["layers"] = loss.clusterability()
            _check_finite(total, step, epoch)
            opt.zero_grad(set_to_none=True)
            scaled = total if scaler is None else scaler.scale(total)  # fp16: scaled up
            if accelerator is not None:
                accelerator.backward(scaled)
            else:
                scaled.backward()
            _optimizer_step(params, opt, scaler, config.clip_grad, accelerator)
            if isinstance(loss, BIMTLoss) and (step + 1) % loss.swap_every == 0:
                row["swaps"] = loss.swap(opt)  # the same on every process: the same weights
            history.steps.append(row)
            running, batches, step = running + row["task_loss"], batches + 1, step + 1
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("task_loss", "clusterability",
                                                          "connection_cost") if k in row})
            if config.max_steps is not None and step >= config.max_steps:
                break
        if batches == 0:
            raise ValueError("'train_loader' yielded no batches in epoch "
                             f"{epoch + 1}: it is empty.")
        _end_epoch(inner, loss, eval_loader, config, history, epoch, running / max(1, batches))
        if config.checkpoint_dir is not None and main:
            ckpt = _checkpoint(inner, opt, config, history, epoch + 1, step, train_loader, loss)
            ckpt["scaler"] = scaler.state_dict() if scaler is not None else None
            save_atomic(ckpt, Path(config.checkpoint_dir) / "last.pt")
        if config.max_steps is not None and step >= config.max_steps:
            break
    opt.zero_grad(set_to_none=True)  # the last step's gradients: a model's worth of memory
    return history


def _end_epoch(model, loss, eval_loader, config, history, epoch, train_loss) -> None:
    row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
    if eval_loader is not None:
        row.update(_evaluate(model, eval_loader, config.task, "eval_loader"))
    if isinstance(loss, BIMTLoss):
        row["connection_cost"] = loss.connection_cost()
    elif loss is not None:
        row["layers"] = loss.clusterability()
    history.epochs.append(row)
