"""Every notebook: listed in the book, stored with outputs of a top-to-bottom run, no errors, no
machine paths, the Colab set-up cell first, an exercise checker and assert cells."""

import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {ch["file"] for part in toc["parts"] for ch in part["chapters"]}


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_listed_in_the_toc(path):
    assert f"notebooks/{path.stem}" in _toc_files()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_from_a_top_to_bottom_run(path):
    cells = _code_cells(path)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    outputs = [o for c in cells for o in c["outputs"]]
    assert outputs, "stored without outputs: run `make notebooks`"
    assert not [o for o in outputs if o["output_type"] == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_paths_in_outputs(path):
    blob = json.dumps([c["outputs"] for c in _code_cells(path)])
    assert not re.search(r"/(work|tmp|root|home)/", blob)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_cell_first_and_pointing_at_this_repository(path):
    """The set-up cell installs the course's distribution from the repository of _config.yml
    (tests/test_installed.py runs it as Colab does) and enables Colab's widget manager."""
    first = "".join(_code_cells(path)[0]["source"])
    url = CONFIG["repository"]["url"].removeprefix("https://")
    branch = CONFIG["repository"]["branch"]
    assert re.search(rf'^COURSE = "git\+https://{re.escape(url)}@{branch}"', first, re.M)
    assert "from google.colab import output as colab_output" in first
    assert 'f"modular-training-course[llm] @ {COURSE}"' in first
    assert "colab_output.enable_custom_widget_manager()" in first
    assert "modlib.profile()" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_an_exercise_with_a_checker_and_asserts(path):
    sources = ["".join(c["source"]) for c in _code_cells(path)]
    assert any("modlib.exercises.check_" in s for s in sources)
    assert any(s.lstrip().startswith("assert ") for s in sources)
    cells = json.loads(path.read_text())["cells"]
    solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions and all("hide-input" in c["metadata"]["tags"] for c in solutions)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checks_cells_are_hidden_from_readers_but_still_run(path):
    """A cell of claims (asserts, not an exercise's check) is tagged remove-cell: the book
    leaves it out, nbval still runs it. So is the "## Checks" heading above such cells."""
    cells = json.loads(path.read_text())["cells"]
    hidden = 0
    for cell in cells:
        source = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        claims = cell["cell_type"] == "code" and "modlib.exercises.check_" not in source and any(
            line.startswith("assert ") for line in source.splitlines())
        heading = cell["cell_type"] == "markdown" and source.lstrip().startswith("## Checks")
        if claims or heading:
            assert "remove-cell" in tags, source[:80]
            hidden += claims
        else:
            assert "remove-cell" not in tags, source[:80]
    assert hidden >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_two_to_four_exercises_each_with_a_solution_and_a_checker(path):
    """Every exercise: a heading with difficulty and time, a solution cell, then a checker."""
    cells = json.loads(path.read_text())["cells"]
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
              and re.search(r"^#+ Exercise \d+\.\d+", "".join(c["source"]), re.M)]
    assert 2 <= len(starts) <= 4, f"{len(starts)} exercises"
    for start, end in zip(starts, [*starts[1:], len(cells)], strict=True):
        heading = re.search(r"^#+ Exercise .*$", "".join(cells[start]["source"]), re.M)[0]
        assert re.search(r"\((easy|medium|hard), \d+(–\d+)? min\)", heading), heading
        tags = [c.get("metadata", {}).get("tags", []) for c in cells[start:end]]
        sources = ["".join(c["source"]) for c in cells[start:end]]
        first = next((i for i, t in enumerate(tags) if "solution" in t), None)
        assert first is not None, f"no solution cell after {heading!r}"
        assert any("modlib.exercises.check_" in s for s in sources[first + 1:]), \
            f"no checker after the solution of {heading!r}"


def test_readme_opens_every_notebook_and_its_student_version_in_colab():
    """The README's Colab links point at this repository's branch, at notebooks that exist."""
    readme = (ROOT / "README.md").read_text()
    url = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    prefix = f"https://colab.research.google.com/github/{url}/blob/{CONFIG['repository']['branch']}/"
    linked = re.findall(r"\((https://colab\.research\.google\.com/[^)]+)\)", readme)
    assert linked and all(link.startswith(prefix) for link in linked), linked
    paths = {link.removeprefix(prefix) for link in linked}
    assert all((ROOT / p).is_file() for p in paths), sorted(p for p in paths
                                                           if not (ROOT / p).is_file())
    for nb in NOTEBOOKS:
        assert {f"notebooks/{nb.name}", f"notebooks/student/{nb.name}"} <= paths, nb.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_object_addresses_in_outputs(path):
    """A repr such as '<matplotlib.legend.Legend at 0x7f...>' is noise that changes every run."""
    blob = json.dumps([c["outputs"] for c in _code_cells(path)])
    assert not re.search(r" at 0x[0-9a-f]{6,}>", blob)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_exception_text_in_outputs(path):
    """A fallback says what it uses in one clean sentence; no stored output shows an
    exception's repr, a URL error or a traceback."""
    blob = json.dumps([c["outputs"] for c in _code_cells(path)])
    found = re.findall(r"Errno|urlopen|Traceback|Error: <|huggingface\.co is unreachable", blob)
    assert not found, found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sizes_come_from_profile_fields_not_profile_names(path):
    """A cell that picks a size by profile name breaks (or silently skips) under a profile it
    does not list, such as `paper`; sizes are fields of modlib.Profile."""
    for cell in _code_cells(path):
        source = "".join(cell["source"])
        assert "[profile.name]" not in source and "profile.name ==" not in source, source[:80]
