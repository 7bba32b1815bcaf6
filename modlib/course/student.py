"""Student versions of the course notebooks: solutions stubbed out, outputs cleared.

The master notebooks in ``notebooks/`` hold the solutions (code cells tagged ``solution`` and
``hide-input``, which the book shows behind a toggle). Learners work in ``notebooks/student/``,
where each solution cell keeps only its ``def`` line(s) and raises ``NotImplementedError``, so
the checker cell that follows it (``modlib.exercises.check_*``) reports "not implemented yet".

Regenerate them after editing a master notebook::

    python -m modlib.course.student

The same command first makes every place that names the course repository follow
``repository.url`` and ``repository.branch`` in ``_config.yml``, the one place where it is set:
the ``COURSE = ...`` line of each notebook's Colab set-up cell, the Colab links of the README and
the install commands of the book (see :func:`sync_repository`).

The output is deterministic (nbformat, sorted keys), so ``tests/test_student.py`` can check that
the committed student notebooks are up to date.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import yaml

from ..validate import check_instance

__all__ = ["DISTRIBUTION", "colab_url", "fallback_check", "install_source",
           "make_student_notebook", "make_student_notebooks", "student_link", "stub_source",
           "sync_repository"]

DISTRIBUTION = "modular-training-course"  # the name pip knows; the import name is modlib

_ROOT = Path(__file__).resolve().parents[2]
_MASTER = re.compile(r"^\d\d_.*\.ipynb$")
_STUB_BODY = ["    ...  # your code here", "    raise NotImplementedError"]
_BADGE_ID = "student-colab-badge"
_LINK_ID = "student-link"  # the master notebook's cell that links its student version
# A check cell of a master notebook: `assert modlib.exercises.check_<name>(<function>)`.
_CHECK_CELL = re.compile(r"^assert modlib\.exercises\.check_(\w+)\((\w+)\)\s*$")


def stub_source(source: str) -> str:
    """Replace a solution cell's code by a stub that keeps only the signatures.

    Every top-level function keeps its decorators and ``def`` line(s) (a docstring and any
    comment before the first statement are dropped) and gets the body
    ``...  # your code here`` / ``raise NotImplementedError``. A cell without a top-level
    function becomes the single comment ``# your code here``.

    Args:
        source: the code of a solution cell.

    Returns:
        The code of the stub cell.

    Raises:
        SyntaxError: if ``source`` is not valid Python.

    Example:
        >>> print(stub_source("def f(x):\\n    return x + 1"))
        def f(x):
            ...  # your code here
            raise NotImplementedError
    """
    check_instance(source, "source", str, "a str of Python code")
    tree = ast.parse(source)
    lines = source.splitlines()
    stubs = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        if node.body[0].lineno > node.lineno:  # the body starts on a line of its own
            header = lines[start:node.body[0].lineno - 1]
            while header and (not header[-1].strip() or header[-1].strip().startswith("#")):
                header.pop()  # comments before the body may give the answer away
        else:  # `def f(x): return x`
            prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            signature = f"{prefix} {node.name}({ast.unparse(node.args)}):"
            header = lines[start:node.lineno - 1] + [signature]
        stubs.append("\n".join(header + _STUB_BODY))
    return "\n\n\n".join(stubs) if stubs else "# your code here"


def _root(root: object, name: str = "root") -> Path:
    """``root`` (a str or Path, default this checkout) as a Path to a folder with _config.yml."""
    if root is None:
        return _ROOT
    check_instance(root, name, (str, Path), "a str or Path of the repository root, or None")
    path = Path(root)
    if not (path / "_config.yml").is_file():
        raise ValueError(f"'{name}' must be a repository root holding _config.yml. "
                         f"Got {str(root)!r}.")
    return path


def _path(value: object, name: str) -> Path:
    """``value`` (a str or Path) as a Path."""
    check_instance(value, name, (str, Path), "a str or Path")
    assert isinstance(value, (str, Path))
    return Path(value)


def _repository(root: Path | None = None) -> tuple[str, str, str]:
    """(org, repo, branch) from ``repository`` in the book's ``_config.yml``."""
    config = yaml.safe_load(((root or _ROOT) / "_config.yml").read_text())["repository"]
    match = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", config["url"])
    if match is None:
        raise ValueError("repository.url in _config.yml must be a GitHub URL; "
                         f"got {config['url']!r}")
    return match.group(1), match.group(2), config.get("branch", "main")


def colab_url(name: str) -> str:
    """The Colab address of the student notebook ``notebooks/student/<name>.ipynb``.

    Example:
        >>> colab_url("00_setup").endswith("/notebooks/student/00_setup.ipynb")
        True
    """
    check_instance(name, "name", str, "a notebook name (str)")
    if not name or "/" in name:
        raise ValueError(f"'name' must be a notebook name such as '00_setup'. Got {name!r}.")
    return _student_url(*_repository(), name)


def _student_url(org: str, repo: str, branch: str, name: str) -> str:
    return (f"https://colab.research.google.com/github/{org}/{repo}/blob/{branch}"
            f"/notebooks/student/{name}.ipynb")


def _guide_url(org: str, repo: str, branch: str) -> str:
    """The instructor guide (model answers) in the repository."""
    return f"https://github.com/{org}/{repo}/blob/{branch}/book/instructors.md"


def student_link(name: str, root: str | Path | None = None) -> str:
    """The text of the cell that a master notebook's page shows under its title: a link that
    opens the student version ``notebooks/student/<name>.ipynb`` in Colab.

    Example:
        >>> "/notebooks/student/00_setup.ipynb" in student_link("00_setup")
        True
    """
    check_instance(name, "name", str, "a notebook name (str)")
    url = _student_url(*_repository(_root(root)), name)
    return (f"**Working through it yourself?** Open the [student version in Colab]({url}): "
            "the same notebook with the exercises left for you to write. The launch button "
            "at the top of this page opens this version, with the solutions.")


def fallback_check(source: str) -> str:
    """The student version of a check cell: if the learner's function fails its checker (or
    is not written yet), the notebook goes on with the library's reference implementation.

    A cell ``assert modlib.exercises.check_<name>(<function>)`` becomes an ``if`` that, when
    the checker prints its ✗ line, rebinds ``<function>`` to
    ``modlib.exercises.reference("<name>")`` and says so, so that "Run all" reaches the end
    of the notebook. Any other cell is returned unchanged.

    Example:
        >>> print(fallback_check("assert modlib.exercises.check_jaccard(my_jaccard)"))
        if not modlib.exercises.check_jaccard(my_jaccard):
            my_jaccard = modlib.exercises.reference("jaccard")
            print("→ From here on, my_jaccard is the library's reference implementation;",
                  "come back to this exercise later.")
    """
    check_instance(source, "source", str, "a str of Python code")
    match = _CHECK_CELL.match(source.strip())
    if match is None:
        return source
    name, fn = match.groups()
    return (f"if not modlib.exercises.check_{name}({fn}):\n"
            f"    {fn} = modlib.exercises.reference(\"{name}\")\n"
            f"    print(\"→ From here on, {fn} is the library's reference implementation;\",\n"
            f"          \"come back to this exercise later.\")")


def install_source(root: str | Path | None = None) -> str:
    """The pip source of the course library: ``git+<repository.url>@<repository.branch>``.

    Args:
        root: the repository root whose ``_config.yml`` is read (default: this checkout).

    Example:
        >>> install_source().startswith("git+https://github.com/")
        True
    """
    org, repo, branch = _repository(_root(root))
    return f"git+https://github.com/{org}/{repo}@{branch}"


# What sync_repository rewrites: the set-up cell's COURSE line, Colab links, pip git sources.
_COURSE_LINE = re.compile(r'^COURSE = "[^"]*"', re.M)
_COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/[^/\s]+/")
_GIT_SOURCE = re.compile(r"git\+https://github\.com/[^/\s\"']+/[^@\s\"']+@[\w.\-/]+?(?=[\s\"'`]|$)",
                         re.M)


def sync_repository(root: str | Path | None = None) -> list[Path]:
    """Make every mention of the course repository follow ``_config.yml``.

    Rewrites the ``COURSE = "git+..."`` line of each master notebook's first code cell and its
    link to the student version (the cell under the title, see :func:`student_link`, added
    when missing), the Colab links in ``README.md`` and the
    ``git+https://github.com/...@branch`` install sources in ``README.md`` and ``book/*.md``.
    Stored outputs are kept. Run it (through ``python -m modlib.course.student``) after
    changing ``repository`` in ``_config.yml``.

    Args:
        root: the repository root (default: the checkout this module lives in).

    Returns:
        The files that changed.
    """
    root = _root(root)
    org, repo, branch = _repository(root)
    source = install_source(root)
    colab = f"https://colab.research.google.com/github/{org}/{repo}/blob/{branch}/"
    changed = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        if not _MASTER.match(path.name):
            continue
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        new = _COURSE_LINE.sub(f'COURSE = "{source}"', first.source, count=1)
        link = student_link(path.stem, root)
        cell = next((c for c in nb.cells if c.get("id") == _LINK_ID), None)
        if new != first.source or cell is None or cell.source != link:
            first.source = new
            if cell is None:  # under the title
                cell = nbformat.v4.new_markdown_cell(link)
                cell.id = _LINK_ID
                nb.cells.insert(1, cell)
            cell.source = link
            path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
            changed.append(path)
    for path in [root / "README.md", *sorted((root / "book").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        new = _GIT_SOURCE.sub(source, _COLAB_LINK.sub(colab, text))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def make_student_notebook(src: Path, dst: Path) -> None:
    """Write the student version of the master notebook ``src`` to ``dst``.

    Solution cells are stubbed (see :func:`stub_source`) and lose their ``hide-input`` tag;
    check cells fall back on the reference implementation (see :func:`fallback_check`); the
    link to the student version is dropped; every output, execution count and execution timing
    is removed (widget state too); a markdown cell with an "Open in Colab" badge for the
    student version goes first.

    Args:
        src: a master notebook, e.g. ``notebooks/01_weights_as_graphs.ipynb``.
        dst: where to write the student notebook; its folder is created if needed.
    """
    src, dst = _path(src, "src"), _path(dst, "dst")
    nb = nbformat.read(src, as_version=4)
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # saved widget views hold outputs (images)
    nb.cells = [c for c in nb.cells if c.get("id") != _LINK_ID]  # the badge replaces it
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timestamps: not deterministic
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [t for t in tags if t != "hide-input"]
        cell.source = fallback_check(cell.source)
    badge = nbformat.v4.new_markdown_cell(
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(src.stem)})\n\n"
        "*Student version: replace each `...  # your code here` with your own code, then run "
        "the check below it. An exercise you have not finished does not stop the notebook: "
        "its check says so and the rest runs on the library's reference implementation, so "
        "\"Run all\" reaches the end. Teachers find the model answers in the "
        f"[instructor guide]({_guide_url(*_repository())}).*")
    badge.id = _BADGE_ID
    nb.cells.insert(0, badge)
    nbformat.validate(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")  # nbformat sorts the keys


def make_student_notebooks(src_dir: str | Path = "notebooks",
                           dst_dir: str | Path = "notebooks/student") -> list[Path]:
    """Write the student version of every master notebook ``src_dir/NN_*.ipynb``.

    Args:
        src_dir: folder of the master notebooks (relative paths are taken from the repository
            root, so this works from any working directory).
        dst_dir: folder for the student notebooks (same name as the master).

    Returns:
        The paths written, in teaching order.

    Raises:
        FileNotFoundError: if ``src_dir`` holds no ``NN_*.ipynb`` notebook.
    """
    # an absolute path stays as it is
    src_dir, dst_dir = _ROOT / _path(src_dir, "src_dir"), _ROOT / _path(dst_dir, "dst_dir")
    masters = sorted(p for p in src_dir.glob("*.ipynb") if _MASTER.match(p.name))
    if not masters:
        raise FileNotFoundError(f"no NN_*.ipynb notebook in src_dir={str(src_dir)!r}")
    written = []
    for src in masters:
        make_student_notebook(src, dst_dir / src.name)
        written.append(dst_dir / src.name)
    return written


if __name__ == "__main__":
    for path in sync_repository():
        print(f"repository: updated {path.relative_to(_ROOT)}")
    for path in make_student_notebooks():
        print(f"wrote {path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path}")
