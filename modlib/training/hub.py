"""The Hugging Face Hub and its cache: language models, their tokenizers and WikiText-2.

Everything here reads the Hugging Face cache first (``$HF_HOME``) and asks the Hub only for what
is not cached. When the Hub cannot be reached (:func:`modlib.training.sources.cannot_reach`) and
the files are not cached, the loaders raise :class:`~modlib.training.sources.Unreachable`, which
:func:`modlib.training.text.load_text`, :func:`modlib.training.text.get_tokenizer` and
:func:`modlib.pretrained` turn into one line and an offline stand-in. A cached file that cannot
be read is an ``OSError`` naming it, never a reason to go offline. The libraries
(``transformers``, ``datasets``, ``huggingface_hub``) come with the ``[llm]`` extra and are
imported only when used. Which models the course knows is
:data:`modlib.training.profiles.LLM_MODELS`. See DESIGN.md ("Data and weights without internet").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..validate import check_callable, describe
from .profiles import LLM_MODELS
from .sources import Unreachable, _check_str, cannot_reach, caused_by, reachable, reason

__all__ = ["WIKITEXT", "display_name", "from_hub", "hub_id", "hub_unavailable", "load_causal_lm",
           "load_tokenizer", "load_wikitext", "unreadable"]

WIKITEXT = ("Salesforce/wikitext", "wikitext-2-raw-v1")  # the Hub dataset and its config
_REPO = "a Hugging Face Hub id such as 'gpt2' (a str)"
_MODEL_NAME = "a model name or Hugging Face Hub id such as 'pythia-70m' (a str)"
_BY_HUB_ID = {model.hub_id: model for model in LLM_MODELS.values()}


def hub_id(name: str) -> str:
    """The Hub id of a language model named as :func:`modlib.pretrained` names it; any other
    name is taken to be a Hub id already.

    Example:
        >>> hub_id("pythia-70m"), hub_id("gpt2"), hub_id("EleutherAI/pythia-160m")
        ('EleutherAI/pythia-70m', 'gpt2', 'EleutherAI/pythia-160m')
    """
    _check_str(name, "name", _MODEL_NAME)
    return LLM_MODELS[name].hub_id if name in LLM_MODELS else name


def display_name(repo: str) -> str:
    """How one-line messages name the model of a Hub id: ``"Pythia-70m"``, else the id itself.

    Example:
        >>> display_name("EleutherAI/pythia-70m"), display_name("org/other-model")
        ('Pythia-70m', 'org/other-model')
    """
    _check_str(repo, "repo", _REPO)
    return _BY_HUB_ID[repo].display if repo in _BY_HUB_ID else repo


def hub_unavailable() -> str | None:
    """``"no internet"`` when the Hugging Face Hub cannot be used now, None to let them try.

    In offline mode (``HF_HUB_OFFLINE=1``) the libraries read their cache and fail fast, so we
    let them; otherwise we knock first (:func:`modlib.training.sources.reachable`), as their
    retries take a minute when nobody answers.

    Returns:
        ``"no internet"``, or None when the Hub answered or offline mode is on.

    Example:
        >>> hub_unavailable()  # doctest: +SKIP
        'no internet'
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or reachable(constants.ENDPOINT):
        return None
    return "no internet"


def from_hub(repo: str, load: Callable[..., Any]) -> Any:
    """``load(**kwargs)`` from the Hugging Face cache first, else from the Hub.

    Args:
        repo: the Hub id, to find the cached files when they do not load.
        load: a ``from_pretrained`` call that takes ``local_files_only``.

    Returns:
        What ``load`` returns.

    Raises:
        Unreachable: the files are not cached and the Hub cannot be reached (or offline mode is
            on).
        OSError: a cached file cannot be read (the message names it).
        Exception: any other failure of ``load``, as it is.

    Example:
        >>> from transformers import AutoConfig  # doctest: +SKIP
        >>> load = lambda **kwargs: AutoConfig.from_pretrained("gpt2", **kwargs)  # doctest: +SKIP
        >>> from_hub("gpt2", load).n_layer  # doctest: +SKIP
        12
    """
    _check_str(repo, "repo", _REPO)
    check_callable(load, "load")
    from huggingface_hub import constants

    try:
        return load(local_files_only=True)
    except Exception as exc:
        if not _missing_from_cache(exc):  # cached, but it does not load
            damaged = unreadable(_snapshot(repo), repo)
            if damaged is None:
                raise
            raise damaged from exc
    if constants.HF_HUB_OFFLINE or hub_unavailable():
        raise Unreachable(_why_offline(constants.HF_HUB_OFFLINE))
    try:
        return load()
    except Exception as exc:
        if cannot_reach(exc):
            raise Unreachable("no internet") from None
        raise


def load_tokenizer(repo: str) -> Any:
    """A model's own tokenizer (``transformers.AutoTokenizer``), from the cache or the Hub.

    Args:
        repo: the Hub id, e.g. ``"EleutherAI/pythia-70m"``.

    Returns:
        The ``transformers`` tokenizer.

    Raises:
        Unreachable: transformers is not installed, or see :func:`from_hub`.
        OSError: see :func:`from_hub`.

    Example:
        >>> len(load_tokenizer("gpt2"))  # doctest: +SKIP
        50257
    """
    _check_str(repo, "repo", _REPO)
    try:
        from transformers import AutoTokenizer  # imported here: optional ([llm] extra)
    except ImportError:
        raise Unreachable("the transformers library is not installed (it comes with the "
                          "[llm] extra)") from None
    return from_hub(repo, lambda **kwargs: AutoTokenizer.from_pretrained(repo, **kwargs))


def load_causal_lm(repo: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """A causal language model and its own tokenizer, from the cache or the Hub.

    Args:
        repo: the Hub id, e.g. ``"gpt2"``.
        dtype: the parameters' dtype, whatever the checkpoint's (the Hub's Pythia is float16).

    Returns:
        ``(model, tokenizer)``: a ``transformers`` causal LM in eval mode on the CPU, and its
        tokenizer.

    Raises:
        ImportError: transformers is not installed.
        Unreachable: see :func:`from_hub`.
        OSError: see :func:`from_hub`.

    Example:
        >>> model, tok = load_causal_lm("gpt2", torch.float32)  # doctest: +SKIP
        >>> next(model.parameters()).dtype, len(tok)  # doctest: +SKIP
        (torch.float32, 50257)
    """
    _check_str(repo, "repo", _REPO)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"'dtype' must be a torch.dtype such as torch.float32. "
                        f"Got {describe(dtype)}.")
    if not dtype.is_floating_point:
        raise ValueError(f"'dtype' must be a floating-point torch.dtype. Got {dtype}.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {_dtype_kwarg(): dtype}
    model = from_hub(repo, lambda **more: AutoModelForCausalLM.from_pretrained(
        repo, **kwargs, **more))
    tokenizer = from_hub(repo, lambda **more: AutoTokenizer.from_pretrained(repo, **more))
    model.to(dtype).eval()  # whatever the checkpoint's dtype, never silently float16
    return model, tokenizer


def load_wikitext() -> tuple[str, str]:
    """WikiText-2 (raw): its training and validation text, from the ``datasets`` cache or the Hub.

    Returns:
        ``(train, validation)``, each the concatenation of the split's lines.

    Raises:
        Unreachable: datasets is not installed, or the text is not cached and the Hub cannot be
            reached (or offline mode is on).
        OSError: a cached file cannot be read (the message names it).

    Example:
        >>> train, validation = load_wikitext()  # doctest: +SKIP
        >>> len(train) > len(validation)  # doctest: +SKIP
        True
    """
    try:
        from datasets import config, load_dataset  # imported here: optional ([llm] extra)
    except ImportError:
        raise Unreachable("the datasets library is not installed (it comes with the [llm] "
                          "extra)") from None
    if not config.HF_HUB_OFFLINE and hub_unavailable():  # offline mode reads the cache
        raise Unreachable("no internet")
    try:
        ds = load_dataset(*WIKITEXT)
    except Exception as exc:
        if cannot_reach(exc):
            raise Unreachable(_why_offline(config.HF_HUB_OFFLINE)) from None
        folder = Path(config.HF_DATASETS_CACHE) / WIKITEXT[0].replace("/", "___")
        damaged = unreadable(folder, "WikiText-2")
        if damaged is None:
            raise
        raise damaged from exc
    return "".join(ds["train"]["text"]), "".join(ds["validation"]["text"])


def unreadable(folder: Path | None, what: str) -> OSError | None:
    """An OSError naming the first cached file under ``folder`` that does not parse, if any.

    JSON, safetensors and Arrow files are parsed; files of other kinds are not read.

    Args:
        folder: a cached snapshot or dataset folder (None or a missing folder: nothing to blame).
        what: what the files hold, for the message (e.g. ``"gpt2"``).

    Returns:
        The error to raise, or None when every file parses.

    Example:
        >>> unreadable(None, "gpt2") is None
        True
    """
    if folder is not None and not isinstance(folder, Path):
        raise TypeError(f"'folder' must be a pathlib.Path or None. Got {describe(folder)}.")
    _check_str(what, "what")
    for path in sorted(folder.rglob("*")) if folder is not None and folder.is_dir() else []:
        try:
            _read(path)
        except Exception as bad:
            return OSError(f"{path} cannot be read ({reason(bad)}): the cached copy of {what} "
                           "is damaged. Delete the file to download it again.")
    return None


def _why_offline(offline_mode: bool) -> str:
    return "offline mode (HF_HUB_OFFLINE) and not in the cache" if offline_mode else "no internet"


def _missing_from_cache(exc: BaseException) -> bool:
    from huggingface_hub.utils import LocalEntryNotFoundError

    return caused_by(exc, LocalEntryNotFoundError)


def _snapshot(repo: str) -> Path | None:
    """The cached snapshot folder of a Hub model (``refs/main``'s commit), if there is one."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, "config.json")
    if isinstance(config, str):
        return Path(config).parent
    config = try_to_load_from_cache(repo, "tokenizer_config.json")
    return Path(config).parent if isinstance(config, str) else None


def _read(path: Path) -> None:
    """Parse a cached file by its kind (JSON, safetensors, Arrow); other kinds are not read."""
    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            f.keys()
    elif path.suffix == ".arrow":
        import pyarrow as pa

        with pa.memory_map(str(path)) as source:
            pa.ipc.open_stream(source).read_all()


def _dtype_kwarg() -> str:
    """``from_pretrained``'s dtype argument: ``dtype`` from transformers 4.56, ``torch_dtype``
    before (and deprecated after)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
