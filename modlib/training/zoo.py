"""The "pretrained" models the notebooks start from: loaded from a cache, or trained once.

``pretrained(name)`` trains a baseline model deterministically (no clusterability loss), caches
it under ``$MODLIB_CACHE`` (default ``~/.cache/modlib``), and loads it from there next time with
``torch.load(..., weights_only=True)``. A cache entry's file name holds a short hash of everything
that shapes the model (the profile's sizes its training uses, the seed, the recipe's and the
cache format's versions), so that a custom profile never reuses another's entry; a damaged or
foreign cache file is refused with one message that names it (retrain=True replaces it).

For ``"gpt2"`` it is the real GPT-2 with its own tokenizer, from the Hugging Face cache or the
Hub, in float32 (the Hub's Pythia is stored in float16, which fine-tuning turns into NaN); only
when the Hub cannot be reached and the model is not cached, a small GPT-2-architecture model
trained here on the offline text with a byte-level tokenizer, labelled a stand-in; likewise
``"pythia-70m"`` and ``"pythia-14m"`` with a small GPT-NeoX. The language models are those of
:data:`modlib.training.profiles.LLM_MODELS`.
Introduced in notebook 02.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from ..validate import check_bool, check_choice, describe
from . import data as mdata
from .hub import load_causal_lm
from .models import MnistCNN, PaperCifarCNN, PaperMLP, tiny_gpt2, tiny_gpt_neox
from .profiles import LLM_MODELS, Profile, ProfileName
from .profiles import profile as get_profile
from .sources import Unreachable, cache_dir, load_saved, save_atomic, say_offline, unusable
from .text import ByteTokenizer
from .train import TrainConfig, evaluate, fit

__all__ = ["LABELS", "Name", "Pretrained", "pretrained", "cache_dir"]  # cache_dir: from .sources

# How results, figures and notebooks name each image model of the zoo.
LABELS = {"mnist-cnn": "course CNN (MnistCNN)", "mnist-mlp": "authors' MLP (PaperMLP)",
          "cifar-cnn": "authors' CIFAR CNN (PaperCifarCNN)"}
# The names pretrained() takes: the image models, then the language models of LLM_MODELS.
Name = Literal[(*LABELS, *LLM_MODELS)]
# The version of a recipe, in its cache file's name: bump it when the recipe changes, so that
# old cache entries are not reused. Image models: 1; language-model stand-ins: 2 (they always
# use the byte tokenizer).
_IMAGE_RECIPE, _LLM_RECIPE = 1, 2
# The layout of a cache file ({"state_dict", "meta"}, meta["key"] the fields hashed into its
# name): bump it when the layout changes.
_CACHE_FORMAT = 2
_SEED = 0  # every baseline is trained from torch.manual_seed(_SEED): the same on every machine
# The profile's fields that shape each model of the zoo (its data, its training run); they go
# into the cache entry's key. The language-model stand-ins all use the same ones.
_SIZES = {
    "mnist-cnn": ("mnist_train", "mnist_test", "mnist_epochs", "batch_size", "width"),
    "mnist-mlp": ("mnist_train", "mnist_test", "mnist_epochs", "batch_size"),
    "cifar-cnn": ("cifar_train", "cifar_test", "cifar_epochs", "batch_size"),
}
_LLM_SIZES = ("text_chars", "llm_seq_len", "llm_batch", "llm_steps")
# The stand-in of each architecture of LLM_MODELS, trained here when the Hub cannot be reached.
_STAND_INS: dict[str, Callable[..., nn.Module]] = {"GPT-2": tiny_gpt2, "GPT-NeoX": tiny_gpt_neox}


@dataclass
class Pretrained:
    """A pretrained model, its tokenizer, and where they came from.

    Attributes:
        model: the network, in eval mode, on the CPU.
        name: the name it was asked for.
        source: the data (or hub model) it came from, e.g. ``"mnist-5k-offline"`` or
            ``"EleutherAI/pythia-70m"``.
        metrics: test metrics measured when it was trained (accuracy or perplexity).
        stand_in: True when it replaces a model that could not be downloaded.
        extra: anything else the recipe records (e.g. the tokenizer's vocabulary size).
        tokenizer: a language model's own tokenizer (the Hub's for a Hub model, a
            :class:`modlib.training.data.ByteTokenizer` for a stand-in); None for image models.
        label: what the model is, for results and figure titles: the Hub id (``"gpt2"``),
            ``"tiny GPT-NeoX stand-in (offline)"``, ``"course CNN (MnistCNN)"`` ...
    """

    model: nn.Module
    name: str
    source: str
    metrics: dict[str, float]
    stand_in: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    tokenizer: Any = None
    label: str = ""


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
    fit(model, train, config=TrainConfig(epochs=epochs, lr=2e-3), progress=progress)
    meta = {"source": d.source, "metrics": evaluate(model, test), "stand_in": "standin" in d.source,
            "init": {"width": prof.width} if name == "mnist-cnn" else {}}
    return model, meta


def _train_device() -> torch.device:
    """Where the baselines are trained: CUDA when present (returned on the CPU either way)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_TEXTS = {"wikitext-2": "WikiText-2", "pydoc-topics-offline": "Python's help texts"}


def _hub_model(name: str, dtype: torch.dtype) -> Pretrained:
    """The real model and its own tokenizer, from the Hugging Face cache or the Hub, in
    ``dtype``; raises ``Unreachable`` when neither has them."""
    hub_id = LLM_MODELS[name].hub_id
    model, tokenizer = load_causal_lm(hub_id, dtype)
    return Pretrained(model, name, hub_id, {}, False, {"hub": True}, tokenizer, hub_id)


def _stand_in(name: str, vocab_size: int, n_positions: int) -> nn.Module:
    """A small, untrained model of the architecture of the language model ``name``."""
    return _STAND_INS[LLM_MODELS[name].architecture](vocab_size, n_positions=n_positions)


def _language_model(name: str, prof: Profile, progress: bool, why: str
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """A small model of the same architecture, trained here with a byte-level tokenizer."""
    text = mdata.load_text(prof.text_chars)
    _say_stand_in(name, why, "training a", text.source)
    tok = ByteTokenizer()  # a stand-in has no tokenizer of its own to download either
    train = mdata.token_blocks(text.train, tok, prof.llm_seq_len)
    val = mdata.token_blocks(text.validation, tok, prof.llm_seq_len)
    model = _stand_in(name, tok.vocab_size, prof.llm_seq_len).to(_train_device())
    loader = torch.utils.data.DataLoader(train, batch_size=prof.llm_batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(task="lm", lr=1e-3, epochs=10_000, max_steps=4 * prof.llm_steps)
    fit(model, loader, config=cfg, progress=progress)
    metrics = evaluate(model, torch.utils.data.DataLoader(val, batch_size=prof.llm_batch),
                       task="lm")
    init = {"vocab_size": tok.vocab_size, "n_positions": prof.llm_seq_len}
    return model, {"source": f"tiny-{name}-standin-on-{text.source}", "metrics": metrics,
                   "stand_in": True, "init": init, "text": text.source}


def _say_stand_in(name: str, why: str, verb: str, text_source: str | None) -> None:
    spec = LLM_MODELS[name]
    say_offline(f"{spec.display}: {why}, {verb} small {spec.architecture}-architecture stand-in "
                f"with a byte-level tokenizer on {_TEXTS.get(text_source, 'the offline text')} "
                "instead.", who="modlib.zoo")


def _rebuild(name: str, meta: dict[str, Any]) -> nn.Module:
    init = meta.get("init", {})
    if name in LLM_MODELS:
        return _stand_in(name, init["vocab_size"], init["n_positions"])
    return {"mnist-cnn": lambda: MnistCNN(**init), "mnist-mlp": PaperMLP,
            "cifar-cnn": PaperCifarCNN}[name]()


def _cache_key(name: str, prof: Profile) -> dict[str, Any]:
    """Everything that shapes the cached model ``name`` trained under ``prof``."""
    llm = name in LLM_MODELS
    sizes = _LLM_SIZES if llm else _SIZES[name]
    return {"name": name, "recipe": _LLM_RECIPE if llm else _IMAGE_RECIPE,
            "format": _CACHE_FORMAT, "seed": _SEED, **{f: getattr(prof, f) for f in sizes}}


def _cache_path(key: dict[str, Any], profile_name: str) -> Path:
    """``<name>-<profile>-v<recipe>-<hash of the key>.pt`` in the cache's ``pretrained``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return (cache_dir() / "pretrained"
            / f"{key['name']}-{profile_name}-v{key['recipe']}-{digest}.pt")


def _cache_problem(saved: dict[str, Any], key: dict[str, Any]) -> str | None:
    """What is wrong with a loaded cache entry, or None."""
    state, meta = saved["state_dict"], saved["meta"]
    if not (isinstance(state, dict) and state
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        return "its 'state_dict' entry is not a model's state_dict"
    if not (isinstance(meta, dict) and isinstance(meta.get("source"), str)
            and isinstance(meta.get("metrics"), dict) and isinstance(meta.get("stand_in"), bool)
            and isinstance(meta.get("init", {}), dict)):
        return "its 'meta' entry does not describe a pretrained model"
    if meta.get("key") != key:
        theirs = meta.get("key") if isinstance(meta.get("key"), dict) else {}
        differ = sorted(f for f in key if theirs.get(f) != key[f])
        return f"it was written for other settings (differing: {differ})"
    return None


def _load_cached(path: Path, name: str, key: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """The cached model and its meta; one ValueError naming the file if it cannot be used."""
    remedy = f"Delete it, or call pretrained({name!r}, retrain=True) to train it again."
    saved = load_saved(path, what="cached model", remedy=remedy, keys=("state_dict", "meta"),
                       check=lambda d: _cache_problem(d, key))
    meta = saved["meta"]
    try:
        model = _rebuild(name, meta)
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise unusable(path, "cached model", f"its weights do not fit a {name} model "
                       f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:100]})",
                       remedy) from exc
    return model, meta


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"'dtype' must be a torch.dtype such as torch.float32. "
                        f"Got {describe(dtype)}.")
    if not dtype.is_floating_point:
        raise ValueError(f"'dtype' must be a floating-point torch.dtype. Got {dtype}.")
    return dtype


def pretrained(name: Name, *, profile: str | Profile | None = None, progress: bool = True,
               retrain: bool = False, dtype: torch.dtype = torch.float32) -> Pretrained:
    """A baseline model trained without the clusterability loss: cached, or trained once.

    ``"gpt2"``, ``"pythia-70m"`` and ``"pythia-14m"`` are the real models with their own
    tokenizers, from the Hugging Face cache (``$HF_HOME``) or the Hub. Only when the Hub cannot
    be reached and the model is not cached, one line says so and a small model of the same
    architecture is trained here (once; then cached) with a
    :class:`modlib.training.data.ByteTokenizer`.

    Args:
        name: ``"mnist-cnn"`` (the course CNN), ``"mnist-mlp"`` (the authors' MLP),
            ``"cifar-cnn"`` (the authors' CIFAR CNN), ``"gpt2"``, ``"pythia-70m"`` or
            ``"pythia-14m"`` (the Hugging Face models, or small stand-ins of the same
            architecture trained here).
        profile: sizes of the training run (default :func:`modlib.profile`); each profile
            has its own cache entry, keyed by the sizes that shape the model (a custom
            ``Profile`` never reuses the entry of another profile of the same name).
        progress: show progress bars while training.
        retrain: train again even if a cached model exists (Hub models are not retrained).
        dtype: the parameters' dtype. Checkpoints load in float32 unless another is asked
            for, whatever dtype they are stored in (the Hub's Pythia is float16).

    Returns:
        A :class:`Pretrained` with the model in eval mode on the CPU; ``.tokenizer`` is the
        language model's own tokenizer, ``.label`` says which model it is.

    Raises:
        ValueError: an unknown name, or a dtype that is not floating point.
        TypeError: ``dtype`` is not a torch.dtype, or ``progress`` or ``retrain`` not a bool.
        OSError: the model is in the Hugging Face cache, but a cached file cannot be read (the
            message names it).
        ValueError: also when modlib's own cache file of the model is empty, truncated,
            damaged or foreign (the message names it; delete it or pass ``retrain=True``).

    Example:
        >>> pt = pretrained("mnist-cnn", profile="ci")  # doctest: +SKIP
        >>> pt.source, round(pt.metrics["accuracy"], 2)  # doctest: +SKIP
        ('mnist-5k-offline', 0.9)

    Introduced in notebook 02.
    """
    check_choice(name, "name", get_args(Name))
    dtype = _check_dtype(dtype)
    check_bool(progress, "progress")
    check_bool(retrain, "retrain")
    if isinstance(profile, str):
        check_choice(profile, "profile", get_args(ProfileName))
    elif profile is not None and not isinstance(profile, Profile):
        raise TypeError(f"'profile' must be a profile name (str), a Profile or None. "
                        f"Got {describe(profile)}.")
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    why, llm = "", name in LLM_MODELS
    if llm:
        try:
            return _hub_model(name, dtype)
        except Unreachable as exc:
            why = str(exc)
    key = _cache_key(name, prof)
    path = _cache_path(key, prof.name)
    if path.exists() and not retrain:
        model, meta = _load_cached(path, name, key)
        if llm:
            _say_stand_in(name, why, "using the", meta.get("text"))
    else:
        torch.manual_seed(_SEED)  # the same baseline on every machine
        if llm:
            model, meta = _language_model(name, prof, progress, why)
        else:
            model, meta = _image_model(name, prof, progress)
        model.cpu()
        meta["key"] = key
        # atomic: another process may read or write the same entry at the same time
        save_atomic({"state_dict": model.state_dict(), "meta": meta}, path)
    model.to(dtype).eval()
    extra = {k: v for k, v in meta.items()
             if k not in ("source", "metrics", "stand_in", "key")}
    if llm:
        return Pretrained(model.cpu(), name, meta["source"], meta["metrics"], True, extra,
                          ByteTokenizer(), f"tiny {LLM_MODELS[name].architecture} stand-in "
                          "(offline)")
    return Pretrained(model.cpu(), name, meta["source"], meta["metrics"], meta["stand_in"],
                      extra, None, LABELS[name])
