"""One small, visible training loop for every experiment of the course.

``fit`` trains a classifier or a causal language model with AdamW, optionally adding the
clusterability loss ``lam * (1 - mean clusterability)`` with a linear warm-up of ``lam``
(Golechha et al. 2025). It shows progress bars, evaluates every epoch, keeps a ``History``,
stops loudly on a NaN/Inf loss, and writes checkpoints atomically from which ``resume`` continues
bit-identically on a CPU.

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
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..core.loss import ClusterabilityLoss
from ..hooks import eval_mode
from ..validate import check_bool, check_choice, check_int, check_module, check_real, describe
from .precision import Precision, amp_plan, autocast, grad_scaler

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
        check_int(self.epochs, "epochs", minimum=1)
        check_real(self.lr, "lr", minimum=0, low_open=True)
        check_real(self.weight_decay, "weight_decay", minimum=0)
        self.betas = tuple(self.betas)  # a list after a JSON round trip
        if len(self.betas) != 2:
            raise ValueError(f"'betas' must be a pair (beta1, beta2). Got {self.betas!r}.")
        for i, beta in enumerate(self.betas):
            check_real(beta, f"betas[{i}]", minimum=0, maximum=1, high_open=True)
        check_real(self.lam, "lam", minimum=0)
        check_int(self.lam_warmup_steps, "lam_warmup_steps", minimum=0)
        check_real(self.clip_grad, "clip_grad", minimum=0, low_open=True, none_ok=True)
        check_choice(self.task, "task", get_args(Task))
        check_int(self.max_steps, "max_steps", minimum=1, none_ok=True)
        check_int(self.seed, "seed", minimum=0)
        check_choice(self.precision, "precision", get_args(Precision))
        check_int(self.log_every, "log_every", minimum=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config saved by ``asdict``; unknown keys are refused with a ValueError.

        A config saved before ``precision`` existed holds ``amp`` (bool) instead: True reads
        as ``"auto"``, False as ``"fp32"``.
        """
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
        return [row[key] for row in getattr(self, per) if key in row]


def _batch_loss(model: nn.Module, batch: Any, task: Task, device: torch.device
                ) -> tuple[Tensor, Tensor, int]:
    """(mean loss, number correct or summed loss, number of targets) of one batch."""
    if task == "classify":
        X, y = batch[0].to(device), batch[1].to(device)
        logits = model(X)
        loss = nn.functional.cross_entropy(logits.float(), y)
        return loss, (logits.argmax(-1) == y).sum(), y.numel()
    tokens = (batch[0] if isinstance(batch, (list, tuple)) else batch).to(device)  # (B, T + 1)
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
        ValueError: an unknown ``task``, or a loader that yields no data.

    Example:
        >>> data = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]
        >>> sorted(evaluate(nn.Linear(3, 2), data))
        ['accuracy', 'eval_loss']

    Introduced in notebook 03.
    """
    check_module(model)
    check_choice(task, "task", get_args(Task))
    device = next(model.parameters()).device
    total_loss, total_score, n = 0.0, 0.0, 0
    with eval_mode(model):
        for batch in loader:
            loss, score, count = _batch_loss(model, batch, task, device)
            total_loss += float(loss) * count
            total_score += float(score)
            n += count
    if n == 0:
        raise ValueError("'loader' yielded no data to evaluate on.")
    mean = total_loss / n
    if task == "classify":
        return {"eval_loss": mean, "accuracy": total_score / n}
    return {"eval_loss": mean, "perplexity": float(torch.tensor(mean).exp())}


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`fit`, loaded safely (``weights_only=True``).

    Returns:
        ``{"model", "optimizer", "config", "history", "epoch", "step", "rng", "scaler",
        ...}``; ``"scaler"`` is the fp16 gradient scaler's state, None in other precisions.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def _generators(loader: Any) -> list[torch.Generator]:
    found = [getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None),
                                                          "generator", None)]
    return [g for g in found if isinstance(g, torch.Generator)]


def _checkpoint(model, opt, config, history, epoch, step, loader) -> dict[str, Any]:
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "config": asdict(config),
            "history": asdict(history), "epoch": epoch, "step": step,
            "rng": torch.get_rng_state(),
            "loader_rng": [g.get_state() for g in _generators(loader)]}


def _restore(ckpt, model, opt, loader) -> tuple[History, int, int]:
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    for g, state in zip(_generators(loader), ckpt["loader_rng"], strict=False):
        g.set_state(state)
    return History(**ckpt["history"]), ckpt["epoch"], ckpt["step"]


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
    if given is not None or world_size() == 1:
        return given
    try:
        from accelerate import Accelerator
    except ImportError:  # launched with several processes, but the [llm] extra is missing
        raise ImportError("Training in several processes needs Hugging Face Accelerate: "
                          "pip install 'modlib[llm]'.") from None
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
        loss: ClusterabilityLoss | None = None, eval_loader: DataLoader | None = None,
        resume: str | os.PathLike | None = None, progress: bool = True,
        accelerator: Any = None) -> History:
    """Train ``model`` in place; with ``loss``, minimise ``task loss + lam * loss()``.

    Args:
        model: the network (on the device to train on).
        train_loader: batches ``(X, y)`` (``task="classify"``) or token blocks ``(B, T + 1)``
            (``task="lm"``).
        config: a :class:`TrainConfig`; default ``TrainConfig()``.
        loss: a :class:`modlib.ClusterabilityLoss` of ``model``; None trains the task alone.
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
        TypeError: ``model`` is not a torch.nn.Module, ``config`` not a TrainConfig, or
            ``progress`` not a bool.
        FloatingPointError: the loss became NaN or Inf (the message names the step).
        ValueError: a bad config, a loss built for another model, or ``precision="bf16"``
            on a GPU without bfloat16 (see :func:`amp_plan`).

    Introduced in notebook 03.
    """
    check_module(model)
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"'config' must be a TrainConfig or None. Got {describe(config)}.")
    check_bool(progress, "progress")
    if loss is not None:
        own = {id(m) for m in model.modules()}
        if not any(id(m) in own for m in loss.layers.values()):
            raise ValueError("'loss' was built for another model: none of its layers is in "
                             "'model'.")
    accelerator = _accelerator(accelerator)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                            weight_decay=config.weight_decay)
    history, start_epoch, step, ckpt = History(), 0, 0, {}
    if resume is not None:
        ckpt = load_checkpoint(resume)
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
                task_loss, _, _ = _batch_loss(model, batch, config.task, device)
            total, row = task_loss, {"step": step, "task_loss": float(task_loss.detach()),
                                       "lam": lam}
            if loss is not None:
                c_loss = loss()  # outside autocast: float32 weights, float32 sums
                total = task_loss + lam * c_loss
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
            history.steps.append(row)
            running, batches, step = running + row["task_loss"], batches + 1, step + 1
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("task_loss", "clusterability")
                             if k in row})
            if config.max_steps is not None and step >= config.max_steps:
                break
        _end_epoch(inner, loss, eval_loader, config, history, epoch, running / max(1, batches))
        if config.checkpoint_dir is not None and main:
            ckpt = _checkpoint(inner, opt, config, history, epoch + 1, step, train_loader)
            ckpt["scaler"] = scaler.state_dict() if scaler is not None else None
            _save_atomic(ckpt, Path(config.checkpoint_dir) / "last.pt")
        if config.max_steps is not None and step >= config.max_steps:
            break
    opt.zero_grad(set_to_none=True)  # the last step's gradients: a model's worth of memory
    return history


def _end_epoch(model, loss, eval_loader, config, history, epoch, train_loss) -> None:
    row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
    if eval_loader is not None:
        row.update(evaluate(model, eval_loader, task=config.task))
    if loss is not None:
        row["layers"] = loss.clusterability()
    history.epochs.append(row)
