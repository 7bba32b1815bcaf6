"""The student notebooks (notebooks/student/) are complete, up to date and give nothing away."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import nbformat
import pytest

import modlib.course.exercises
from modlib.course.student import colab_url, make_student_notebooks, stub_source

ROOT = Path(__file__).resolve().parent.parent
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = ROOT / "notebooks" / "student"
_CHECK = re.compile(r"modlib\.exercises\.(check_\w+)\((\w+)\)")


def _solution_cells(path: Path) -> list[tuple[nbformat.NotebookNode, str | None]]:
    """(stub cell, source of the next code cell) for each solution cell of a notebook."""
    cells = nbformat.read(path, as_version=4).cells
    found = []
    for i, cell in enumerate(cells):
        if "solution" in cell.metadata.get("tags", []):
            nxt = next((c.source for c in cells[i + 1:] if c.cell_type == "code"), None)
            found.append((cell, nxt))
    return found


def _stub_functions(cell: nbformat.NotebookNode) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(compile(cell.source, "<stub>", "exec"), namespace)  # noqa: S102 - our own stub
    return {k: v for k, v in namespace.items() if inspect.isfunction(v)}


def test_every_master_has_a_student_version():
    assert MASTERS
    for master in MASTERS:
        assert (STUDENT / master.name).is_file(), "run `make student`"


def test_student_notebooks_are_up_to_date(tmp_path):
    written = make_student_notebooks(ROOT / "notebooks", tmp_path)
    assert [p.name for p in written] == [m.name for m in MASTERS]
    for path in written:
        fresh = json.loads(path.read_text())
        stored = json.loads((STUDENT / path.name).read_text())
        assert fresh == stored, f"{path.name} is stale: run `make student`"


def test_generation_is_deterministic(tmp_path):
    a = make_student_notebooks(ROOT / "notebooks", tmp_path / "a")
    b = make_student_notebooks(ROOT / "notebooks", tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_no_outputs_and_colab_badge(master):
    nb = nbformat.read(STUDENT / master.name, as_version=4)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "hide-input" not in cell.metadata.get("tags", [])
    assert colab_url(master.stem) in nb.cells[0].source
    assert "notebooks/student/" in colab_url(master.stem)


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_stubs_hold_no_solution(master):
    masters = _solution_cells(master)
    stubs = _solution_cells(STUDENT / master.name)
    assert len(stubs) == len(masters)
    for (stub, _), (solution, _) in zip(stubs, masters, strict=True):
        assert stub.source == stub_source(solution.source)
        functions = _stub_functions(stub)
        if not functions:
            assert stub.source == "# your code here"
            continue
        for name, fn in functions.items():
            n_args = len(inspect.signature(fn).parameters)
            with pytest.raises(NotImplementedError):
                fn(*[None] * n_args)
            assert name in solution.source


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_checkers_reject_the_stubs(master, capsys):
    n_checked = 0
    for stub, checker_cell in _solution_cells(STUDENT / master.name):
        match = _CHECK.search(checker_cell or "")
        if match is None:
            continue  # an open exercise without a checker
        check, name = match.groups()
        fn = _stub_functions(stub)[name]
        assert getattr(modlib.exercises, check)(fn) is False
        assert "not implemented" in capsys.readouterr().out
        n_checked += 1
    if any("check_" in (c or "") for _, c in _solution_cells(master)):
        assert n_checked > 0


_BODY = "\n    ...  # your code here\n    raise NotImplementedError"


@pytest.mark.parametrize(("source", "stub"), [
    ("def f(x):\n    return x", "def f(x):" + _BODY),
    ('def f(x,\n      y):\n    """Doc."""\n    # the answer: x + y\n    return x + y',
     "def f(x,\n      y):" + _BODY),
    ("def f(x): return x", "def f(x):" + _BODY),
    ("import torch\n\n@torch.no_grad()\ndef g(a, *, b=1):\n    return a",
     "@torch.no_grad()\ndef g(a, *, b=1):" + _BODY),
    ("for k in (2, 4):\n    print(k)", "# your code here"),
])
def test_stub_source(source, stub):
    assert stub_source(source) == stub


def _copy_repository_mentions(dst: Path) -> None:
    """The files sync_repository reads and writes, copied to ``dst``."""
    import shutil

    book = [f"book/{p.name}" for p in (ROOT / "book").glob("*.md")]
    for name in ["_config.yml", "README.md", *book, *(f"notebooks/{p.name}" for p in MASTERS)]:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dst / name)


def test_every_mention_of_the_repository_follows_config(tmp_path):
    """Nothing to rewrite in this checkout: notebooks, README and book follow _config.yml."""
    from modlib.course.student import sync_repository

    _copy_repository_mentions(tmp_path)
    assert sync_repository(tmp_path) == []


def test_changing_the_repository_in_config_moves_every_mention(tmp_path):
    """Publishing under another name: edit _config.yml, run `make student`."""
    from modlib.course.student import install_source, sync_repository

    _copy_repository_mentions(tmp_path)
    config = tmp_path / "_config.yml"
    old = install_source(tmp_path).removeprefix("git+https://github.com/").split("@")[0]
    config.write_text(config.read_text().replace(old, "someone/their-course")
                      .replace("branch: main", "branch: teach"))
    changed = sync_repository(tmp_path)
    assert tmp_path / "README.md" in changed
    assert {tmp_path / "notebooks" / p.name for p in MASTERS} <= set(changed)
    for path in [tmp_path / "README.md", *(tmp_path / "notebooks").glob("*.ipynb"),
                 *(tmp_path / "book").glob("*.md")]:
        assert old not in path.read_text(), path.name
    first = next(c for c in nbformat.read(tmp_path / "notebooks" / MASTERS[0].name,
                                          as_version=4).cells if c.cell_type == "code")
    assert 'COURSE = "git+https://github.com/someone/their-course@teach"' in first.source
    assert "colab.research.google.com/github/someone/their-course/blob/teach/notebooks/" \
        in (tmp_path / "README.md").read_text()


def test_every_master_links_its_student_version_under_the_title():
    from modlib.course.student import student_link

    for master in MASTERS:
        cells = nbformat.read(master, as_version=4).cells
        assert cells[1].cell_type == "markdown" and cells[1].get("id") == "student-link"
        assert cells[1].source == student_link(master.stem)
        assert colab_url(master.stem) in cells[1].source


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_student_check_cells_fall_back_on_the_reference(master):
    """No check cell of a student notebook stops "Run all"; no student notebook links itself."""
    nb = nbformat.read(STUDENT / master.name, as_version=4)
    assert all(c.get("id") != "student-link" for c in nb.cells)
    assert "instructors.md" in nb.cells[0].source
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "modlib.exercises.check_" not in cell.source:
            continue
        assert not cell.source.startswith("assert"), cell.source
        name = re.search(r"check_(\w+)\(", cell.source).group(1)
        assert f'modlib.exercises.reference("{name}")' in cell.source
        assert callable(modlib.exercises.reference(name))
        n += 1
    masters = nbformat.read(master, as_version=4).cells
    assert n == sum("modlib.exercises.check_" in c.source for c in masters if c.cell_type == "code")


def test_fallback_check_rebinds_a_failing_function(capsys):
    from modlib.course.student import fallback_check

    cell = fallback_check("assert modlib.exercises.check_jaccard(my_jaccard)")
    namespace = {"modlib": modlib, "my_jaccard": lambda a, b: float("nan")}
    exec(compile(cell, "<cell>", "exec"), namespace)  # noqa: S102 - our own cell
    assert namespace["my_jaccard"] is modlib.exercises.reference("jaccard")
    out = capsys.readouterr().out
    assert out.startswith("✗ jaccard") and "reference implementation" in out

    good = modlib.exercises.reference("jaccard")
    namespace = {"modlib": modlib, "my_jaccard": good}
    exec(compile(cell, "<cell>", "exec"), namespace)  # noqa: S102 - our own cell
    assert namespace["my_jaccard"] is good
    assert "reference implementation" not in capsys.readouterr().out


@pytest.mark.parametrize("source", ["x = 1", "assert modlib.exercises.check_jaccard(f) and g",
                                    "print(modlib.exercises.check_jaccard(f))"])
def test_fallback_check_leaves_other_cells_alone(source):
    from modlib.course.student import fallback_check

    assert fallback_check(source) == source


@pytest.mark.slow
@pytest.mark.parametrize("name", ["00_setup", "04_what_clusters_learn"])
def test_run_all_reaches_the_end_of_a_student_notebook(name, tmp_path):
    """Every exercise left as its stub: the notebook still runs to its last cell (ci profile)."""
    from nbclient import NotebookClient

    nb = nbformat.read(STUDENT / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "not implemented yet" in printed and "reference implementation" in printed
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
