"""The "pretrained" models the notebooks start from: loaded from the cache, or trained once.

``pretrained(name)`` trains a baseline model deterministically (no clusterability loss), caches
it under ``$MODLIB_CACHE`` (default ``~/.cache/modlib``), and loads it from there next time with
``torch.load(..., weights_only=True)``. For ``"gpt2"`` it is the real GPT-2 from the Hugging
Face Hub when that answers, else a small GPT-2-architecture model trained here on the offline
text, labelled a stand-in; likewise ``"pythia-70m"`` with a small GPT-NeoX. Introduced in
notebook 02.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from . import data as mdata
from .models import MnistCNN, PaperCifarCNN, PaperMLP, tiny_gpt2, tiny_gpt_neox
from .profiles import Profile
from .profiles import profile as get_profile
from .train import TrainConfig, _save_atomic, evaluate, fit

__all__ = ["Pretrained", "pretrained", "cache_dir"]

Name = Literal["mnist-cnn", "mnist-mlp", "cifar-cnn", "gpt2", "pythia-70m"]
_VERSION = 1  # bump when a recipe changes, so that old cache entries are not reused


@dataclass
class Pretrained:
    """A pretrained model and where it came from.

    Attributes:
        model: the network, in eval mode, on the CPU.
        name: the name it was asked for.
        source: the data (or hub model) it came from, e.g. ``"mnist-5k-offline"``.
        metrics: test metrics measured when it was trained (accuracy or perplexity).
        stand_in: True when it replaces a model that could not be downloaded.
        extra: anything else the recipe records (e.g. the tokenizer's vocabulary size).
    """

    model: nn.Module
    name: str
    source: str
    metrics: dict[str, float]
    stand_in: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def cache_dir() -> Path:
    """``$MODLIB_CACHE``, else ``~/.cache/modlib``."""
    return Path(os.environ.get("MODLIB_CACHE") or "~/.cache/modlib").expanduser()


def _image_model(name: str, prof: Profile, progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    cifar = name == "cifar-cnn"
    if cifar:
        d = mdata.load_cifar10(prof.cifar_train, prof.cifar_test)
        model, epochs = PaperCifarCNN(), prof.cifar_epochs
    else:
        d = mdata.load_mnist(prof.mnist_train, prof.mnist_test)
        model = MnistCNN(width=prof.width) if name == "mnist-cnn" else PaperMLP()
        epochs = prof.mnist_epochs
    train, test = mdata.loaders(d, prof.batch_size)
    model.to(_train_device())
    fit(model, train, config=TrainConfig(epochs=epochs, lr=2e-3), disable=not progress)
    meta = {"source": d.source, "metrics": evaluate(model, test), "stand_in": "standin" in d.source,
            "init": {"width": prof.width} if name == "mnist-cnn" else {}}
    return model, meta


def _train_device() -> torch.device:
    """Where the baselines are trained: CUDA when present (returned on the CPU either way)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_HUB = {"gpt2": ("gpt2", "GPT-2", tiny_gpt2),
        "pythia-70m": ("EleutherAI/pythia-70m", "GPT-NeoX (Pythia)", tiny_gpt_neox)}


def _language_model(name: str, prof: Profile, progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    hub_id, arch, tiny = _HUB[name]
    unavailable = mdata._hub_unavailable()
    if unavailable is None:
        try:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(hub_id)
            return model, {"source": hub_id, "metrics": {}, "stand_in": False, "hub": True}
        except Exception as e:  # any failure of the real path: train the stand-in
            unavailable = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
    print(f"modlib.zoo: {hub_id} could not be loaded ({unavailable}); training a small "
          f"{arch}-architecture stand-in on the offline text instead.", flush=True)
    text = mdata.load_text(prof.text_chars)
    tok = mdata.get_tokenizer()
    train = mdata.token_blocks(text.train, tok, prof.llm_seq_len)
    val = mdata.token_blocks(text.validation, tok, prof.llm_seq_len)
    model = tiny(tok.vocab_size, n_positions=prof.llm_seq_len).to(_train_device())
    loader = torch.utils.data.DataLoader(train, batch_size=prof.llm_batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(task="lm", lr=1e-3, epochs=10_000, max_steps=4 * prof.llm_steps)
    fit(model, loader, config=cfg, disable=not progress)
    metrics = evaluate(model, torch.utils.data.DataLoader(val, batch_size=prof.llm_batch),
                       task="lm")
    init = {"vocab_size": tok.vocab_size, "n_positions": prof.llm_seq_len}
    return model, {"source": f"tiny-{name}-standin-on-{text.source}", "metrics": metrics,
                   "stand_in": True, "init": init}


def _rebuild(name: str, meta: dict[str, Any]) -> nn.Module:
    init = meta.get("init", {})
    if name in _HUB:
        return _HUB[name][2](init["vocab_size"], n_positions=init["n_positions"])
    return {"mnist-cnn": lambda: MnistCNN(**init), "mnist-mlp": PaperMLP,
            "cifar-cnn": PaperCifarCNN}[name]()


def pretrained(name: Name, *, profile: str | Profile | None = None, progress: bool = True,
               retrain: bool = False) -> Pretrained:
    """A baseline model trained without the clusterability loss: cached, or trained once.

    Args:
        name: ``"mnist-cnn"`` (the course CNN), ``"mnist-mlp"`` (the authors' MLP),
            ``"cifar-cnn"`` (the authors' CIFAR CNN), ``"gpt2"`` or ``"pythia-70m"`` (the
            Hugging Face models, or small stand-ins of the same architecture trained here).
        profile: sizes of the training run (default :func:`modlib.profile`); each profile
            has its own cache entry.
        progress: show progress bars while training.
        retrain: train again even if a cached model exists.

    Returns:
        A :class:`Pretrained` with the model in eval mode on the CPU.

    Raises:
        ValueError: an unknown name.

    Example:
        >>> pt = pretrained("mnist-cnn", profile="ci")  # doctest: +SKIP
        >>> pt.source, round(pt.metrics["accuracy"], 2)  # doctest: +SKIP
        ('mnist-5k-offline', 0.9)

    Introduced in notebook 02.
    """
    if name not in get_args(Name):
        raise ValueError(f"'name' must be one of {get_args(Name)}. Got {name!r}.")
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    path = cache_dir() / "pretrained" / f"{name}-{prof.name}-v{_VERSION}.pt"
    if path.exists() and not retrain:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        meta = saved["meta"]
        model = _rebuild(name, meta)
        model.load_state_dict(saved["state_dict"])
    else:
        torch.manual_seed(0)  # the same baseline on every machine
        if name in _HUB:
            model, meta = _language_model(name, prof, progress)
        else:
            model, meta = _image_model(name, prof, progress)
        model.cpu()
        if not meta.get("hub"):  # the hub keeps its own cache
            _save_atomic({"state_dict": model.state_dict(), "meta": meta}, path)
    model.eval()
    return Pretrained(model.cpu(), name, meta["source"], meta["metrics"], meta["stand_in"],
                      {k: v for k, v in meta.items() if k not in ("source", "metrics", "stand_in")})
