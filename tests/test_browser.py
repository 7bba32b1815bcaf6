"""The built book as a browser sees it: clean pages, working links and images, rendered math and
widgets, and the Colab links of every notebook page.

Every page is opened in headless Chromium, served from 127.0.0.1 so that the pages' own JavaScript
runs, with every other host unreachable. MathJax and the widget scripts, which the pages load from
CDNs, are served from local copies of their npm packages (``$MODLIB_BROWSER_ASSETS``, by default
``browser-assets`` in the virtual environment; ``make browser`` fetches them). A small script
(``browser_check.js``) injected into each page waits for MathJax and the widgets, then writes what
it found into the DOM that ``chromium --dump-dom`` returns. The book is built into a temporary
folder, or taken from ``$MODLIB_BOOK_HTML`` (e.g. ``_build/html``) when set.

Where Chromium or the local scripts are missing the tests that need them are skipped, saying so;
``make test`` installs or fetches them where it can, and sets ``MODLIB_REQUIRE_BROWSER=1`` when it
has both, which turns those skips into failures.
"""

from __future__ import annotations

import functools
import html
import json
import mimetypes
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ASSETS = Path(os.environ.get("MODLIB_BROWSER_ASSETS") or Path(sys.prefix) / "browser-assets")
REQUIRED = os.environ.get("MODLIB_REQUIRE_BROWSER") == "1"
COLAB = "https://colab.research.google.com/github/"
CHECK_JS = (Path(__file__).parent / "browser_check.js").read_text(encoding="utf-8")
_TIMEOUT = 90  # seconds for one page in Chromium
_BUDGET_MS = 30_000  # the page's own (virtual) time: browser_check.js gives up after 20 s of it
_REFRESH = re.compile(r'http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)
_CHECK = re.compile(r'<pre id="modlib-check" hidden=""[^>]*>(.*?)</pre>', re.DOTALL)
# The CDNs the pages load scripts from, and where the test server answers for them.
_CDNS = {"https://cdn.jsdelivr.net/npm/": "/_cdn/npm/",
         "https://cdnjs.cloudflare.com/ajax/libs/": "/_cdn/cdnjs/"}
# cdnjs names a library and a file its own way: (library, file) -> (npm package, file).
_CDNJS = {("require.js", "require.min.js"): ("requirejs", "require.js"),
          ("require.js", "require.js"): ("requirejs", "require.js")}
# Raw exception text in a cell's output (tracebacks are looked for everywhere by the page's
# check): a line such as "ValueError: ..." or "torch.OutOfMemoryError: ...".
_RAW_ERROR = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt): ",
                        re.MULTILINE)

# JavaScript errors of the toolchain, not of the book, harmless to a reader:
# - sphinx-thebe adds its inline configuration script twice in a Jupyter Book build, so the
#   second copy's `const THEBE_JS_URL` is a redeclaration (the first copy stands, and the book
#   launches Colab, not Thebe);
# - the widgets (ipywidgets 8) typeset their descriptions with MathJax 2's `MathJax.Hub.Queue`,
#   which Sphinx's MathJax 3 does not have: each description stays plain text, as it is anyway
#   (no description in the book holds math).
_TOOLCHAIN_JS_ERRORS = re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"
                                  r"|^unhandled rejection: Cannot read properties of undefined "
                                  r"\(reading 'Queue'\)$")

pytestmark = pytest.mark.slow


def _not_here(reason: str) -> None:
    """Skip, or fail where ``make test`` said that everything the browser test needs is here."""
    if REQUIRED:
        pytest.fail(f"{reason} (MODLIB_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> Path:
    if not CHROMIUM.exists():
        _not_here(f"Chromium not found at {CHROMIUM}: the built book was not opened in a browser "
                  "(make test installs Debian's chromium where it runs as root)")
    return CHROMIUM


class _Assets:
    """The local copies of the CDNs' files: the npm packages unpacked under ``root``."""

    def __init__(self, root: Path) -> None:
        self.packages: dict[str, tuple[str, Path]] = {}
        for meta in sorted(root.glob("*/package.json")) if root.is_dir() else []:
            info = json.loads(meta.read_text(encoding="utf-8"))
            self.packages[info["name"]] = (info["version"], meta.parent)

    def file(self, path: str) -> Path | None:
        """The local file for a request under /_cdn/, or None."""
        if m := re.fullmatch(r"/_cdn/npm/((?:@[^/@]+/)?[^/@]+)@([^/]+)/(.+)", path):
            name, spec, rest = m.groups()
        elif m := re.fullmatch(r"/_cdn/cdnjs/([^/]+)/([^/]+)/(.+)", path):
            library, spec, rest = m.groups()
            name, rest = _CDNJS.get((library, rest), (library, rest))
        else:
            return None
        version, folder = self.packages.get(name, ("", Path()))
        if not version or not _satisfies(version, spec):
            return None
        target = (folder / rest).resolve()
        return target if target.is_file() and target.is_relative_to(folder.resolve()) else None


def _satisfies(version: str, spec: str) -> bool:
    """Whether an npm version fits the version a CDN URL asks for: "3", "3.2", "3.2.2", "^1.0.1"."""
    if spec.startswith("^"):
        want = spec[1:].split(".")
        have = version.split(".")
        return have[0] == want[0] and [int(x) for x in have if x.isdigit()] >= [
            int(x) for x in want if x.isdigit()]
    return version == spec or version.startswith(spec + ".")


@dataclass
class _Server:
    url: str
    assets: _Assets
    missing: set[str] = field(default_factory=set)  # /_cdn/ requests with no local copy


def _handler(html_dir: Path, server: _Server) -> Callable[..., SimpleHTTPRequestHandler]:
    local = bool(server.assets.packages)
    expect = json.dumps({"math": local, "widgets": local})
    head = f"<script>window.__modlibExpect = {expect};\n{CHECK_JS}</script>"

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
            pass

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - base name
            path = unquote(urlparse(self.path).path)
            if path.startswith("/_cdn/"):
                if (file := server.assets.file(path)) is None:
                    server.missing.add(path)
                    self.send_error(404)
                else:
                    ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    self._send(file.read_bytes(), ctype)
                return
            page = html_dir / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))
            if page.suffix != ".html" or not page.is_file():
                super().do_GET()
                return
            text = page.read_text(encoding="utf-8")
            if local:
                text = _to_local(text)
            text = re.sub(r"<head[^>]*>", lambda m: m.group(0) + head, text, count=1)
            self._send(text.encode("utf-8"), "text/html; charset=utf-8")

    return functools.partial(Handler, directory=str(html_dir))


def _to_local(text: str) -> str:
    """A page whose CDN URLs point to the test server (integrity hashes dropped with them: the
    local copy of require.js is the npm package's, not cdnjs's minified file)."""
    for cdn, local in _CDNS.items():
        text = text.replace(cdn, local)
    return re.sub(r"<(?:script|link)\b[^>]*>",
                  lambda m: re.sub(r'\s+integrity="[^"]*"', "", m.group(0))
                  if '"/_cdn/' in m.group(0) else m.group(0), text)


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
def server(html_dir: Path) -> Iterator[_Server]:
    info = _Server(url="", assets=_Assets(ASSETS))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(html_dir, info))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    info.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        yield info
    finally:
        httpd.shutdown()
        httpd.server_close()


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           f"--user-data-dir={tmp / 'profile'}", *args]
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


@dataclass
class _Page:
    dom: str  # the rendered DOM, without the check's report
    check: dict  # what browser_check.js found


@pytest.fixture(scope="module")
def rendered(html_dir: Path, server: _Server, tmp_path_factory) -> dict[str, _Page]:
    """Every page of the book that is not a redirect, as headless Chromium rendered it."""
    tmp = tmp_path_factory.mktemp("chromium")
    pages = {}
    for page in _pages(html_dir):
        if _redirect(html_dir, page) is not None:
            continue
        result = _chromium(tmp, f"--virtual-time-budget={_BUDGET_MS}", "--dump-dom",
                           server.url + page)
        match = _CHECK.search(result.stdout)
        assert result.returncode == 0 and match, (
            f"Chromium could not open {page}, or the page's check did not report: "
            f"{result.stderr[-500:]}")
        pages[page] = _Page(dom=_CHECK.sub("", result.stdout),
                            check=json.loads(html.unescape(match.group(1))))
    return pages


def _link_problems(dom: str, html_dir: Path, base_url: str, page: str) -> list[str]:
    page_url = base_url + page
    links = _Links()
    links.feed(dom)
    found = []
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


def _line(text: str, at: int) -> str:
    """The line of ``text`` that holds position ``at``, stripped and cut to 120 characters."""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start:end if end >= 0 else None].strip()[:120]


def _is_cdn(url: str) -> bool:
    return any(url.startswith(cdn) for cdn in _CDNS)


def test_every_page_renders_cleanly(html_dir, server, rendered):
    """No tracebacks or raw exception text, no JavaScript errors or failed loads, no broken links,
    every image decoded, no ordered list started by a wrapped line of prose."""
    pages = _pages(html_dir)
    assert "index.html" in pages and len(pages) > 3
    problems, n_colab = {}, 0
    local = bool(server.assets.packages)
    for page in pages:
        if (target := _redirect(html_dir, page)) is not None:
            if not (html_dir / target).is_file():
                problems[page] = [f"redirects to a missing page {target}"]
            continue
        dom, check = rendered[page].dom, rendered[page].check
        n_colab += dom.count(COLAB)
        found = _link_problems(dom, html_dir, server.url, page)
        found += [f"a Python traceback: {t}" for t in check["tracebacks"]]
        found += [f"error block: {t}" for t in check["errorBlocks"]]
        found += [f"raw exception text in an output: {_line(check['outputs'], m.start())!r}"
                  for m in _RAW_ERROR.finditer(check["outputs"])]
        if "\x1b[" in check["outputs"]:
            found.append("ANSI escape codes in an output")
        # Without the local copies the CDN scripts cannot load; test_math_and_widgets says so.
        found += [f"JavaScript: {e}" for e in check["errors"]
                  if not _TOOLCHAIN_JS_ERRORS.search(e)
                  and (local or not _is_cdn(e.removeprefix("could not load ")))]
        found += [f"image not loaded: {src}" for src in check["images"]["broken"]]
        found += [f"ordered list inside prose: {snippet}" for snippet in check["lists"]]
        if check["timedOut"]:
            found.append("the page had not finished rendering after 20 s")
        if found:
            problems[page] = found
    assert not problems, "\n".join(f"{p}: {'; '.join(f)}" for p, f in problems.items())
    assert n_colab > 0, "no Colab launch link on any page"


def test_math_and_widgets(server, rendered):
    """MathJax rendered every formula, without errors, and the widget manager every saved widget
    view (from local copies of the CDNs' scripts, no request left unanswered)."""
    if not server.assets.packages:
        _not_here(f"no local copies of MathJax and the widget scripts in {ASSETS} (make browser "
                  "fetches them with npm): math and widgets were not checked in a browser")
    problems = {}
    for page, p in rendered.items():
        math, widgets = p.check["math"], p.check["widgets"]
        found = [f"formula not rendered: {t}" for t in math["unrendered"]]
        found += [f"MathJax error: {t}" for t in math["errors"]]
        found += [f"widget view not rendered: {t}" for t in widgets["unrendered"]]
        if found:
            problems[page] = found
    if server.missing:
        problems["(all pages)"] = [f"no local copy of {path}" for path in sorted(server.missing)]
    assert not problems, "\n".join(f"{p}: {'; '.join(f)}" for p, f in problems.items())
    assert sum(p.check["math"]["n"] for p in rendered.values()) > 0, "no math on any page"


def _student_link(stem: str) -> str:
    """The Colab link to a notebook's student version, from the repository in _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    org_repo = urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    return f"{COLAB}{org_repo}/blob/{repo.get('branch', 'main')}/notebooks/student/{stem}.ipynb"


def test_every_notebook_page_links_its_student_version(rendered):
    """Each page built from notebooks/NN_*.ipynb links to its student notebook in Colab."""
    pages = {p: Path(p).stem for p in rendered if re.fullmatch(r"notebooks/\d\d_[^/]+\.html", p)}
    assert pages, "no page built from notebooks/NN_*.ipynb"
    missing = []
    for page, stem in sorted(pages.items()):
        want = _student_link(stem)
        links = _Links()
        links.feed(rendered[page].dom)
        if want not in links.hrefs:
            missing.append(f"{page}: no link to {want}")
        elif not (ROOT / "notebooks" / "student" / f"{stem}.ipynb").is_file():
            missing.append(f"{page}: links to notebooks/student/{stem}.ipynb, missing here")
    assert not missing, "\n".join(missing)


def test_screenshots(html_dir, server, tmp_path):
    notebook = next(p for p in _pages(html_dir) if p.startswith("notebooks/"))
    home = _redirect(html_dir, "index.html") or "index.html"
    for name, page in [("home", home), ("notebook", notebook)]:
        shot = tmp_path / f"{name}.png"
        result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900",
                           server.url + page)
        assert shot.is_file(), f"no screenshot of {page}: {result.stderr[-500:]}"
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, (
            f"screenshot of {page} is not a real PNG ({len(data)} bytes)")


def test_checks_cells_are_hidden_from_readers(rendered):
    """The assert-only checks cells (tagged remove-cell) do not reach the notebook pages."""
    pages = {p: r for p, r in rendered.items() if re.fullmatch(r"notebooks/\d\d_[^/]+\.html", p)}
    assert pages, "no page built from notebooks/NN_*.ipynb"
    shown = [p for p, r in sorted(pages.items()) if 'id="checks"' in r.dom]
    assert not shown, f"checks cells shown on {shown}"
