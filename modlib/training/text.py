"""Text and tokenizers for the language-model notebooks (07), real first, offline second.

:func:`load_text` reads WikiText-2 (raw) through Hugging Face ``datasets``; only when the Hub
cannot be reached and the text is not cached it prints one line and uses the English help
texts of Python's ``pydoc_data`` instead (source ``'pydoc-topics-offline'``).
:func:`get_tokenizer` loads a model's own tokenizer (GPT-2's, Pythia's ...) the same way and
falls back to :class:`ByteTokenizer`; :func:`token_blocks` cuts a text into training blocks.
A cached file that cannot be read is an error naming the file, never a reason to go offline.

The argument check, the one-line offline message and the Hub access shared by
:mod:`modlib.training.data` and :mod:`modlib.training.zoo` live here too: ``data`` imports
``text`` and
``standin``, ``standin`` imports ``text``, and this module imports neither, so the graph has no
cycle. See DESIGN.md ("Data and weights without internet").
"""

from __future__ import annotations

import contextlib
import json
import numbers
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ByteTokenizer", "TextData", "get_tokenizer", "load_text", "token_blocks"]

_PROBE_TIMEOUT_S = 3.0  # how long the Hugging Face Hub gets to answer before we go offline
_WIKITEXT = ("Salesforce/wikitext", "wikitext-2-raw-v1")  # the Hub dataset and its config
_HUB_NAMES = {"gpt2": "GPT-2", "EleutherAI/pythia-70m": "Pythia-70m",  # hub id -> display name
              "EleutherAI/pythia-14m": "Pythia-14m"}
_ALIASES = {"pythia-70m": "EleutherAI/pythia-70m",  # modlib.pretrained's names -> hub ids
            "pythia-14m": "EleutherAI/pythia-14m"}


@dataclass(frozen=True)
class TextData:
    """Raw text for causal language modelling."""

    train: str  # training text
    validation: str  # held-out text
    source: str  # 'wikitext-2' or 'pydoc-topics-offline'


class ByteTokenizer:
    """Offline stand-in for a model's tokenizer: UTF-8 bytes (0-255) plus an end-of-text token.

    Example:
        >>> tok = ByteTokenizer()
        >>> tok.encode("hi"), tok.decode([104, 105, 256]), len(tok)
        ([104, 105], 'hi', 257)
    """

    vocab_size = 257  # 256 byte values + end-of-text
    eos_token_id = 256  # end-of-text token
    name_or_path = "bytes"  # what it is, where a Hugging Face tokenizer names its hub id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: its UTF-8 bytes."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; end-of-text is dropped, broken UTF-8 replaced."""
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return self.vocab_size


def load_text(n_chars: int | None = None, *, seed: int = 0) -> TextData:
    """WikiText-2 (raw) through Hugging Face ``datasets``, else Python's own pydoc help texts.

    WikiText-2 is the Hub dataset ``Salesforce/wikitext``, config ``wikitext-2-raw-v1``. The
    one way to use it without a network: load it once online (``datasets`` keeps it under
    ``$HF_HOME/datasets``, or ``$HF_DATASETS_CACHE``), then set ``HF_HUB_OFFLINE=1`` (or
    ``HF_DATASETS_OFFLINE=1``) before Python starts; ``datasets`` then reads its cache. Without
    offline mode, an unanswered Hub (3 s probe) means the pydoc texts, and one line says so.

    Args:
        n_chars: keep the first ``n_chars`` characters of the training text and the first
            ``max(n_chars // 10, 1)`` of the validation text; None keeps all.
        seed: seed of the offline split (pydoc topics shuffled, 10% to validation); WikiText's
            split is fixed.

    Returns:
        TextData: ``train`` and ``validation`` strings; source 'wikitext-2' or
        'pydoc-topics-offline'.

    Raises:
        TypeError: ``n_chars`` or ``seed`` is not an int.
        ValueError: ``n_chars`` below 1 or ``seed`` negative.
        OSError: WikiText-2 is cached but a cached file cannot be read (the message names it).

    Example:
        >>> text = load_text(10_000)  # doctest: +SKIP
        >>> len(text.train), text.source  # doctest: +SKIP
        (10000, 'wikitext-2')
    """
    _check_int("n_chars", n_chars, 1, none_ok=True)
    _check_int("seed", seed, 0)
    try:
        (train, validation), source = _wikitext(), "wikitext-2"
    except _Unreachable as why:
        _say(f"WikiText-2: {why}, using Python's own help texts (pydoc_data) instead.")
        (train, validation), source = _pydoc_text(seed), "pydoc-topics-offline"
    if n_chars is not None:
        train, validation = train[:n_chars], validation[: max(n_chars // 10, 1)]
    return TextData(train, validation, source)


def get_tokenizer(name: str = "gpt2") -> Any:
    """A model's own tokenizer (from the Hugging Face cache, else the Hub), else bytes.

    Each model has its own tokenizer: Pythia's is not GPT-2's. :func:`modlib.pretrained`
    returns the right one with its model (``Pretrained.tokenizer``); this function is for
    a tokenizer on its own. When the Hub cannot be reached and the tokenizer is not cached,
    one line says so and a :class:`ByteTokenizer` is returned. Both kinds have
    ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, ``eos_token_id``,
    ``name_or_path`` and ``len()``.

    Args:
        name: the Hub id of the model whose tokenizer is wanted, e.g. ``"gpt2"`` or
            ``"EleutherAI/pythia-70m"`` (``"pythia-70m"`` is accepted too).

    Returns:
        A ``transformers`` tokenizer (GPT-2: 50,257 tokens) or a ``ByteTokenizer`` (257).

    Raises:
        TypeError: ``name`` is not a str.
        OSError: the tokenizer is cached but a cached file cannot be read (the message names
            it), or the Hub answers that there is no such model.

    Example:
        >>> tok = get_tokenizer("EleutherAI/pythia-70m")  # doctest: +SKIP
        >>> tok.decode(tok.encode("modular"))  # doctest: +SKIP
        'modular'
    """
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str (a Hugging Face Hub id). Got {type(name).__name__}.")
    repo = _ALIASES.get(name, name)
    try:
        return _hub_tokenizer(repo)
    except _Unreachable as why:
        _say(f"{_HUB_NAMES.get(repo, repo)} tokenizer: {why}, using a byte-level tokenizer "
             "(256 bytes + end-of-text) instead.")
        return ByteTokenizer()


def token_blocks(text: str, tokenizer: Any, seq_len: int) -> torch.Tensor:
    """Cut a text into non-overlapping blocks of ``seq_len + 1`` tokens for causal LM training.

    Inputs are ``blocks[:, :-1]``, targets ``blocks[:, 1:]``; tokens after the last full block
    are dropped.

    Args:
        text: the text.
        tokenizer: anything with ``encode(text) -> list[int]`` (see :func:`get_tokenizer`).
        seq_len: tokens per training sequence.

    Returns:
        LongTensor ``(n_blocks, seq_len + 1)``.

    Raises:
        TypeError: ``text`` is not a str or ``seq_len`` not an int.
        ValueError: ``seq_len`` below 1, or the text has fewer than ``seq_len + 1`` tokens.

    Example:
        >>> token_blocks("abcdefg", ByteTokenizer(), seq_len=2)
        tensor([[ 97,  98,  99],
                [100, 101, 102]])
    """
    if not isinstance(text, str):
        raise TypeError(f"'text' must be a str. Got {type(text).__name__}.")
    _check_int("seq_len", seq_len, 1)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    n_blocks = len(ids) // (seq_len + 1)
    if n_blocks == 0:
        raise ValueError(
            f"'text' must hold at least seq_len + 1 = {seq_len + 1} tokens. "
            f"Got {len(ids)} tokens from {len(text)} characters."
        )
    return ids[: n_blocks * (seq_len + 1)].view(n_blocks, seq_len + 1)


# --- validation and messages (shared with modlib.data and modlib.standin) ----------------------


def _check_int(name: str, value: object, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    what = f"an int >= {minimum}" + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be {what}. Got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"'{name}' must be {what}. Got {value}.")


def _say(message: str, *, who: str = "modlib.data") -> None:
    """The one line a loader prints when it goes offline: ``who: message``."""
    print(f"{who}: {message}", flush=True)


def _reason(exc: BaseException) -> str:
    """A short one-line reason: the exception's type and the last line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return reason if len(reason) <= 120 else reason[:117] + "..."


# --- real and offline sources ------------------------------------------------------------------


def _wikitext() -> tuple[str, str]:
    """WikiText-2's (train, validation) text; raises _Unreachable when it cannot be had."""
    try:
        from datasets import config, load_dataset  # imported here: optional ([llm] extra)
    except ImportError:
        raise _Unreachable("the datasets library is not installed (it comes with the [llm] "
                           "extra)") from None
    if not config.HF_HUB_OFFLINE and _hub_unavailable():  # offline mode reads the cache
        raise _Unreachable("no internet")
    try:
        ds = load_dataset(*_WIKITEXT)
    except Exception as exc:
        if _cannot_reach(exc):
            raise _Unreachable(_why_offline(config.HF_HUB_OFFLINE)) from None
        folder = Path(config.HF_DATASETS_CACHE) / _WIKITEXT[0].replace("/", "___")
        damaged = _unreadable(folder, "WikiText-2")
        if damaged is None:
            raise
        raise damaged from exc
    return "".join(ds["train"]["text"]), "".join(ds["validation"]["text"])


def _pydoc_text(seed: int) -> tuple[str, str]:
    """Python's help topics in an order shuffled by ``seed``; 10% of them are validation."""
    from pydoc_data.topics import topics  # dict: topic name -> English help text

    names = sorted(topics)
    order = np.random.default_rng(seed).permutation(len(names))
    texts = [topics[names[i]].strip() + "\n\n" for i in order]
    n_val = max(len(names) // 10, 1)
    return "".join(texts[n_val:]), "".join(texts[:n_val])


def _hub_tokenizer(repo: str) -> Any:
    try:
        from transformers import AutoTokenizer  # imported here: optional ([llm] extra)
    except ImportError:
        raise _Unreachable("the transformers library is not installed (it comes with the "
                           "[llm] extra)") from None
    return _from_hub(repo, lambda **kwargs: AutoTokenizer.from_pretrained(repo, **kwargs))


# --- the Hugging Face Hub and its cache (shared with modlib.zoo) ---------------------------------


class _Unreachable(Exception):
    """The source cannot be reached and is not cached; ``str(exc)`` says why, as a clause."""


def _from_hub(repo: str, load: Callable[..., Any]) -> Any:
    """``load(**kwargs)`` from the Hugging Face cache first, else from the Hub.

    ``load`` takes ``from_pretrained``'s ``local_files_only``. Raises :class:`_Unreachable`
    only when the files are not cached and the Hub cannot be reached; a cached file that
    cannot be read is an ``OSError`` naming it; any other failure is raised as it is.
    """
    from huggingface_hub import constants

    try:
        return load(local_files_only=True)
    except Exception as exc:
        if not _missing_from_cache(exc):  # cached, but it does not load
            damaged = _unreadable(_snapshot(repo), repo)
            if damaged is None:
                raise
            raise damaged from exc
    if constants.HF_HUB_OFFLINE or _hub_unavailable():
        raise _Unreachable(_why_offline(constants.HF_HUB_OFFLINE))
    try:
        return load()
    except Exception as exc:
        if _cannot_reach(exc):
            raise _Unreachable("no internet") from None
        raise


def _why_offline(offline_mode: bool) -> str:
    return "offline mode (HF_HUB_OFFLINE) and not in the cache" if offline_mode else "no internet"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _missing_from_cache(exc: BaseException) -> bool:
    from huggingface_hub.utils import LocalEntryNotFoundError

    return any(isinstance(e, LocalEntryNotFoundError) for e in _chain(exc))


def _cannot_reach(exc: BaseException) -> bool:
    """Whether ``exc`` says the Hub did not answer (rather than a file or a name being bad)."""
    from huggingface_hub.utils import LocalEntryNotFoundError, OfflineModeIsEnabled

    network = (ConnectionError, TimeoutError, socket.gaierror, LocalEntryNotFoundError,
               OfflineModeIsEnabled)
    for e in _chain(exc):
        kind = type(e)
        if isinstance(e, network) or (
                kind.__module__.startswith(("httpx", "httpcore", "requests", "urllib3"))
                and any(word in kind.__name__ for word in ("Connect", "Timeout", "Proxy"))):
            return True
    return False


def _snapshot(repo: str) -> Path | None:
    """The cached snapshot folder of a Hub model (``refs/main``'s commit), if there is one."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, "config.json")
    if isinstance(config, str):
        return Path(config).parent
    config = try_to_load_from_cache(repo, "tokenizer_config.json")
    return Path(config).parent if isinstance(config, str) else None


def _unreadable(folder: Path | None, what: str) -> OSError | None:
    """An OSError naming the first cached file under ``folder`` that does not parse, if any."""
    for path in sorted(folder.rglob("*")) if folder is not None and folder.is_dir() else []:
        try:
            _read(path)
        except Exception as bad:
            return OSError(f"{path} cannot be read ({_reason(bad)}): the cached copy of {what} "
                           "is damaged. Delete the file to download it again.")
    return None


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


def _hub_unavailable() -> str | None:
    """``"no internet"`` when the Hugging Face Hub cannot be used now, None to let them try.

    In offline mode (``HF_HUB_OFFLINE=1``) the libraries read their cache and fail fast, so we
    let them; otherwise we knock first, as their retries take a minute when nobody answers.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or _reachable(constants.ENDPOINT):
        return None
    return "no internet"  # the Hub did not answer within _PROBE_TIMEOUT_S


def _reachable(url: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` s."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    opened: list[bool] = []

    def knock() -> None:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=timeout).close()
            opened.append(True)

    thread = threading.Thread(target=knock, daemon=True)  # name lookup has no timeout of its own
    thread.start()
    thread.join(timeout)
    return bool(opened)
