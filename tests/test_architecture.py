"""The library's layout: four parts, dependencies one way, no cycles, a light ``import modlib``.

Parts, in order: the shared base (``modlib.validate``, ``modlib.hooks``) <- ``core`` <-
``training`` <- ``analysis`` <- ``course``; the package itself and its command line sit on top.
A module may import only from its own part or the parts before it. Imports inside functions count
too: a lazy import is still a dependency.
"""

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import modlib

ROOT = Path(modlib.__file__).resolve().parent
PARTS = ["base", "core", "training", "analysis", "course", "top"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _part(module: str) -> str:
    parts = module.split(".")
    if module in ("modlib", "modlib.__main__"):
        return "top"
    if len(parts) == 2 and parts[1] not in PARTS:  # modlib.validate, modlib.hooks
        return "base"
    return parts[1]


def _imports(module: str) -> list[tuple[str, list[str], int]]:
    """(imported modlib module, names imported from it, line) for every import in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("modlib")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("modlib"):
                continue
            names = [a.name for a in node.names]
            if not node.module and node.level:  # from . import x: x is a module
                out += [(f"{target}.{n}", [], node.lineno) for n in names]
            else:
                out.append((target, names, node.lineno))
    return out


def _resolve(target: str) -> str:
    """The module a dotted import target names (a package's __init__ counts as the package)."""
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def test_every_module_is_in_a_known_part():
    assert {_part(m) for m in MODULES} <= set(PARTS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) != "top"))
def test_imports_run_one_way(module):
    """A part imports only from itself and the parts to its left (base <- core <- ... <- course)."""
    mine = PARTS.index(_part(module))
    wrong = [(t, line) for t, _, line in _imports(module)
             if PARTS.index(_part(_resolve(t))) > mine]
    assert not wrong, f"{module} imports from a later part: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_sub_package(module):
    """``from ..x import _name`` across sub-packages couples them to each other's internals."""
    own = module.rsplit(".", 1)[0] if MODULES[module].name != "__init__.py" else module
    crossing = []
    for target, names, line in _imports(module):
        t = _resolve(target)
        t_pkg = t.rsplit(".", 1)[0] if MODULES[t].name != "__init__.py" else t
        same = t_pkg == own or t_pkg.startswith(own + ".") or own.startswith(t_pkg + ".")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and not same:
            crossing.append((t, private, line))
    assert not crossing, f"{module} imports private names across sub-packages: {crossing}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycles():
    graph = {m: {_resolve(t) for t, _, _ in _imports(m)} - {m} for m in MODULES}
    # a package's __init__ re-exporting its own modules is not a cycle of concern
    for m in graph:
        graph[m] = {t for t in graph[m] if not (MODULES[t].name == "__init__.py"
                                               and m.startswith(t + "."))}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"
    # and the search finds one where there is one (metrics <-> spectral, as it once was)
    assert _cycles({"metrics": {"spectral"}, "spectral": {"metrics", "partition"},
                    "partition": set()}) == [["metrics", "spectral", "metrics"]]


def test_the_checker_sees_a_backward_import(tmp_path, monkeypatch):
    """The direction test can fail: a core module importing the course is caught."""
    bad = tmp_path / "modlib" / "core" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ..course import viz\nfrom ..training.text import _say\n")
    monkeypatch.setitem(MODULES, "modlib.core.bad", bad)
    targets = [_resolve(t) for t, _, _ in _imports("modlib.core.bad")]
    assert [_part(t) for t in targets] == ["course", "training"]
    with pytest.raises(AssertionError, match="later part"):
        test_imports_run_one_way("modlib.core.bad")
    with pytest.raises(AssertionError, match="private names"):
        test_no_private_name_crosses_a_sub_package("modlib.core.bad")


@pytest.mark.parametrize("name", sorted(modlib.SUBMODULES))
def test_every_sub_module_is_one_attribute_away(name):
    module = importlib.import_module(f"modlib.{modlib.SUBMODULES[name]}")
    assert getattr(modlib, name) is module


def test_every_module_file_has_a_short_name():
    """``modlib.X`` reaches every module the same way: each file is listed in SUBMODULES."""
    listed = {f"modlib.{v}" for v in modlib.SUBMODULES.values()}
    missing = [m for m in MODULES if _part(m) != "top" and m not in listed
               and not m.startswith("modlib.course.exercises.")]
    assert not missing, f"add these to modlib.SUBMODULES: {missing}"


def test_re_exports_match_their_table():
    assert sorted(modlib.__all__) == sorted(modlib._NAMES)
    for name in modlib.__all__:  # each name is the object its home module defines
        home = importlib.import_module(f"modlib.{modlib._NAMES[name]}")
        assert getattr(modlib, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        modlib.nonesuch  # noqa: B018


@pytest.mark.parametrize("module", ["modlib.__main__", "modlib.course.student"])
def test_a_command_line_runs_only_under_its_main_guard(module):
    """Importing a module with a command line (as pytest's doctest collection does) runs
    nothing: no top-level call outside ``if __name__ == "__main__":``."""
    body = ast.parse(MODULES[module].read_text()).body
    guards = [n for n in body if isinstance(n, ast.If)
              and ast.unparse(n.test) == "__name__ == '__main__'"]
    assert len(guards) == 1
    calls = [ast.unparse(n) for n in body if isinstance(n, (ast.Expr, ast.For, ast.With, ast.If))
             and n not in guards and not isinstance(getattr(n, "value", None), ast.Constant)]
    assert not calls, f"{module} runs code on import: {calls}"


# One fresh interpreter, step by step (each start imports torch: one process, not three):
# `import modlib` alone, then the method's names, then the short names of two modules.
_FRESH = """
import json, sys
import modlib
light = sorted(m for m in sys.modules if m.split('.')[0] in
               ('matplotlib', 'ipywidgets', 'transformers', 'pandas') or m.startswith('modlib.'))
modlib.clusterability, modlib.fit, modlib.spectral_cocluster, modlib.ClusterabilityLoss
modlib.circuits, modlib.llm
method = sorted({m.split('.')[0] for m in sys.modules}
                & {'matplotlib', 'ipywidgets', 'transformers'})
import modlib.viz, modlib.partition
from modlib.models import PaperMLP
short = [modlib.viz is sys.modules['modlib.course.viz'],
         modlib.partition is sys.modules['modlib.core.partition'],
         PaperMLP is sys.modules['modlib.training.models'].PaperMLP, modlib.viz.__name__]
print(json.dumps({"light": light, "method": method, "short": short}))
"""


@pytest.fixture(scope="module")
def fresh_interpreter() -> dict:
    return json.loads(subprocess.run([sys.executable, "-c", _FRESH], capture_output=True,
                                     text=True, check=True).stdout)


def test_import_modlib_is_light(fresh_interpreter):
    """``import modlib`` loads neither matplotlib, ipywidgets, transformers nor any part."""
    assert fresh_interpreter["light"] == []


def test_the_method_loads_without_the_plotting_stack(fresh_interpreter):
    assert fresh_interpreter["method"] == []


def test_short_names_import_the_one_module(fresh_interpreter):
    """``import modlib.viz`` and ``from modlib.models import X`` reach the module's home, once,
    whether the home was loaded before (``modlib.core.partition``, by the method) or not."""
    assert fresh_interpreter["short"] == [True, True, True, "modlib.course.viz"]


def test_an_unknown_short_name_is_not_found():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("modlib.nonesuch")
