"""The built book as a browser sees it: no tracebacks, broken links or images; real Colab links.

Every page is opened in headless Chromium (served from 127.0.0.1, so the pages' own JavaScript
runs) and its rendered DOM is checked; screenshots of two pages must be real PNGs. The book is
built into a temporary folder, or taken from ``$MODLIB_BOOK_HTML`` (e.g. ``_build/html``) when set.
Skipped where Chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
COLAB = "https://colab.research.google.com/github/"
_TIMEOUT = 90  # seconds for one page in Chromium
_REFRESH = re.compile(r'http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"),
]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass


class _Links(HTMLParser):
    """The hrefs of <a> and the srcs of <img> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.imgs.append(a["src"])


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("MODLIB_BOOK_HTML")
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"MODLIB_BOOK_HTML={given} holds no index.html"
        return path
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out)], check=True,
                   capture_output=True, timeout=1800)
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def base_url(html_dir: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT)


def _pages(html_dir: Path) -> list[str]:
    skip = {"_static", "_sources", "_images"}
    return sorted(str(p.relative_to(html_dir)) for p in html_dir.rglob("*.html")
                  if not skip & set(p.relative_to(html_dir).parts))


def _redirect(html_dir: Path, page: str) -> str | None:
    """The target of a redirect page (the book's index.html), else None.

    Chromium may dump such a page before or after it navigates, so it is checked on disk.
    """
    match = _REFRESH.search((html_dir / page).read_text(encoding="utf-8", errors="replace"))
    return str(Path(page).parent / match.group(1)) if match else None


def _local_file(html_dir: Path, base_url: str, page_url: str, ref: str) -> Path | None:
    """The file a same-site link points to, or None for an external link or an anchor."""
    url = urlparse(urljoin(page_url, ref))
    if f"{url.scheme}://{url.netloc}/" != base_url:
        return None
    path = unquote(url.path).lstrip("/")
    return html_dir / (path + "index.html" if path.endswith("/") or not path else path)


def _problems(dom: str, html_dir: Path, base_url: str, page: str) -> list[str]:
    page_url = base_url + page
    links = _Links()
    links.feed(dom)
    found = []
    if "Traceback (most recent call last)" in dom:
        found.append("a Python traceback")
    for href in links.hrefs:
        if href.startswith(COLAB):
            path = href[len(COLAB):].split("?")[0].split("/", 4)  # org, repo, blob, branch, path
            if len(path) < 5 or not (ROOT / path[4]).is_file():
                found.append(f"Colab link to a notebook missing here: {href}")
            continue
        target = _local_file(html_dir, base_url, page_url, href)
        if target is not None and target.suffix == ".html" and not target.is_file():
            found.append(f"broken link {href}")
    for src in links.imgs:
        target = _local_file(html_dir, base_url, page_url, src)
        if target is not None and not target.is_file():
            found.append(f"missing image {src}")
    return found


def test_every_page_renders_cleanly(html_dir, base_url, tmp_path):
    pages = _pages(html_dir)
    assert "index.html" in pages and len(pages) > 3
    problems, n_colab = {}, 0
    for page in pages:
        if (target := _redirect(html_dir, page)) is not None:
            if not (html_dir / target).is_file():
                problems[page] = [f"redirects to a missing page {target}"]
            continue
        result = _chromium(tmp_path, "--dump-dom", base_url + page)
        assert result.returncode == 0 and "<body" in result.stdout, (
            f"Chromium could not open {page}: {result.stderr[-500:]}")
        n_colab += result.stdout.count(COLAB)
        if found := _problems(result.stdout, html_dir, base_url, page):
            problems[page] = found
    assert not problems, "\n".join(f"{p}: {'; '.join(f)}" for p, f in problems.items())
    assert n_colab > 0, "no Colab launch link on any page"


def test_screenshots(html_dir, base_url, tmp_path):
    notebook = next(p for p in _pages(html_dir) if p.startswith("notebooks/"))
    home = _redirect(html_dir, "index.html") or "index.html"
    for name, page in [("home", home), ("notebook", notebook)]:
        shot = tmp_path / f"{name}.png"
        result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900",
                           base_url + page)
        assert shot.is_file(), f"no screenshot of {page}: {result.stderr[-500:]}"
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, (
            f"screenshot of {page} is not a real PNG ({len(data)} bytes)")
