"""What users install, tested as they get it (``make installed``).

Colab and a GPU box install the course with pip: a wheel built from the repository, not this
editable checkout. These tests build the wheel and the sdist from a snapshot of the repository,
install the wheel into a fresh virtual environment whose dependencies come from the running
environment (nothing is downloaded), and import every sub-module from a folder outside the
repository. The Colab test runs notebook 00 in a fresh environment with a stand-in
``google.colab`` module, so that its set-up cell really installs the course with pip from a git
clone of the repository, then runs the notebook to its end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from modlib.course.student import DISTRIBUTION

pytestmark = pytest.mark.installed

ROOT = Path(__file__).resolve().parents[1]
DEPS = sysconfig.get_paths()["purelib"]  # the project's own environment: every dependency
GIT = ["git", "-c", "user.name=course", "-c", "user.email=course@example.org",
       "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment that sees the dependencies of this one, but not modlib."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    # A plain path line: the folder is searched after the venv's own, and the .pth files in it
    # (among them the editable install of this checkout) are not run.
    Path(purelib.stdout.strip(), "_course_dependencies.pth").write_text(DEPS + "\n")
    return python


def _source_files() -> list[str]:
    """What a clone holds: tracked files and untracked ones that git does not ignore."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout
    return sorted(f for f in listed.split("\0") if f and (ROOT / f).is_file())


@pytest.fixture(scope="session")
def clone(tmp_path_factory) -> Path:
    """A git repository (branch main) holding the files of this checkout, as a clone would."""
    repo = tmp_path_factory.mktemp("course") / "modular-training-course"
    for name in _source_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    _run([*GIT, "init", "-q"], cwd=repo)
    _run([*GIT, "add", "-A"], cwd=repo)
    _run([*GIT, "commit", "-q", "-m", "snapshot"], cwd=repo)
    return repo


@pytest.fixture(scope="session")
def dist(clone, tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist built from the clone, without build isolation (no download)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
          "--no-build-isolation", "-w", str(out), str(clone)])
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
          "print(b.build_sdist(sys.argv[1]))", str(out)], cwd=clone)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _package_files(clone: Path) -> set[str]:
    return {p.relative_to(clone).as_posix() for p in (clone / "modlib").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_wheel_holds_every_file_of_the_package(clone, dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    missing = _package_files(clone) - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert any(n.endswith(".dist-info/METADATA") for n in names)


def test_sdist_holds_the_package_and_the_tests(clone, dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tests = {f"tests/{p.name}" for p in (clone / "tests").glob("*.py")}
    missing = (_package_files(clone) | tests | {"pyproject.toml", "README.md"}) - names
    assert not missing, f"not in the sdist: {sorted(missing)}"
    assert "tests/conftest.py" in names


_IMPORT_ALL = textwrap.dedent("""
    import importlib, importlib.metadata, json, pkgutil, sys
    from packaging.requirements import Requirement
    import modlib
    names = sorted(m.name for m in pkgutil.walk_packages(modlib.__path__, "modlib."))
    for name in names:
        importlib.import_module(name)
    dist = importlib.metadata.distribution(sys.argv[1])
    unmet = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra ([llm], [dev], [book]): not needed by the core
        try:
            if importlib.metadata.version(req.name) not in req.specifier:
                unmet.append(line)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(line)
    print(json.dumps({"file": modlib.__file__, "modules": names, "unmet": unmet}))
""")


def test_installed_wheel_imports_every_module_from_outside_the_repository(clone, dist,
                                                                          tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
          str(dist["wheel"])])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}
    report = json.loads(_run([str(python), "-c", _IMPORT_ALL, DISTRIBUTION], cwd=outside,
                             env=env).stdout.splitlines()[-1])
    assert Path(report["file"]).is_relative_to(tmp_path / "venv"), report["file"]
    expected = {".".join(Path(f).with_suffix("").parts).removesuffix(".__init__")
                for f in _package_files(clone) if f.endswith(".py")} - {"modlib"}
    assert set(report["modules"]) == expected
    assert report["unmet"] == []
    for cmd in ([str(python), "-m", "modlib", "--help"], [str(tmp_path / "venv/bin/modlib"),
                                                         "reproduce", "--help"]):
        out = _run(cmd, cwd=outside, env=env).stdout
        assert "reproduce" in out


_COLAB_STANDIN = '''\
"""Stand-in for Colab's google.colab package: only what the course's set-up cell calls."""
import os
import types


def _enable_custom_widget_manager():
    open(os.environ["COLAB_STANDIN_MARKER"], "a").write("enable_custom_widget_manager\\n")


output = types.SimpleNamespace(enable_custom_widget_manager=_enable_custom_widget_manager)
'''


def _colab_notebook(name: str, source: str) -> nbformat.NotebookNode:
    """Notebook ``name`` with its set-up cell's COURSE pointing at ``source`` (a pip source)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    lines = first.source.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("COURSE = ")]
    assert len(at) == 1, "the set-up cell must set COURSE = '<pip source>' on one line"
    lines[at[0]] = f"COURSE = {source!r}"
    first.source = "\n".join(lines)
    return nb


def test_colab_set_up_cell_installs_from_the_repository_and_notebook_00_runs(clone, tmp_path,
                                                                             monkeypatch):
    venv = tmp_path / "colab"
    python = _fresh_venv(venv)
    work = tmp_path / "content"  # Colab's working folder; the repository is not on the path
    work.mkdir()
    probe = subprocess.run([str(python), "-c", "import modlib"], cwd=work, capture_output=True)
    assert probe.returncode != 0, "modlib must not be importable before the set-up cell"

    standin = tmp_path / "standin" / "google" / "colab"  # `google` stays a namespace package
    standin.mkdir(parents=True)
    (standin / "__init__.py").write_text(_COLAB_STANDIN)
    marker = tmp_path / "colab-calls.txt"
    spec = venv / "share" / "jupyter" / "kernels" / "colab-standin"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python",
        "env": {"PYTHONPATH": str(tmp_path / "standin"), "COLAB_STANDIN_MARKER": str(marker),
                "MODLIB_PROFILE": "ci", "MODLIB_CACHE": str(tmp_path / "cache"),
                # pip takes the build tools and dependencies from the environment, offline
                "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(venv / "share" / "jupyter"))

    nb = _colab_notebook("00_setup.ipynb", f"git+file://{clone}@main")
    NotebookClient(nb, kernel_name="colab-standin", timeout=900,
                   resources={"metadata": {"path": str(work)}}).execute()

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert marker.read_text().splitlines() == ["enable_custom_widget_manager"]
    code = ("import importlib.metadata as m, modlib; print(modlib.__file__); "
            f"print(m.distribution({DISTRIBUTION!r}).read_text('direct_url.json'))")
    where = _run([str(python), "-c", code], cwd=work,
                 env={**os.environ, "PYTHONPATH": ""}).stdout.splitlines()
    assert Path(where[0]).is_relative_to(venv), where[0]  # installed, not this checkout
    direct = json.loads(where[1])
    assert direct["url"] == f"file://{clone}" and direct["vcs_info"]["vcs"] == "git"
