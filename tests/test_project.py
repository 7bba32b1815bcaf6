"""The repository's own promises: pins in sync, CI calls the README's command, public API."""

import pathlib

import tomllib
import yaml

import modlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = set(project["dependencies"])
    for extra in ("llm", "book", "dev"):
        reqs |= {r for r in extras[extra] if not r.startswith(project["name"])}
    return reqs


def test_environment_yml_has_the_same_pins_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == _pyproject_requirements()


def test_jupyter_book_pinned_below_2():
    assert "jupyter-book>=1.0.4,<2" in _pyproject_requirements()


def test_ci_runs_make_test_and_nothing_else():
    lines = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    commands = [ln for ln in lines if not ln.startswith(("set ", "cd "))]
    assert commands == ["exec make test"]


def test_public_api_is_exported():
    for name in ["layer_matrix", "Partition", "contiguous_partition", "clusterability",
                 "spectral_cocluster", "ClusterabilityLoss", "random_baseline", "shuffle_test",
                 "chance_level"]:
        assert name in modlib.__all__ and hasattr(modlib, name)


def test_every_public_function_has_a_docstring():
    for name in modlib.__all__:
        assert getattr(modlib, name).__doc__, name
