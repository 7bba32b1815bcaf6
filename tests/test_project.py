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


def test_pages_workflow_executes_the_notebooks_on_real_data_before_building():
    """The published book shows real data: the runner (which has internet) runs the notebooks in
    the cpu profile, refuses to publish a stand-in, then builds; within two hours."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    build = workflow["jobs"]["build"]
    runs = [step.get("run", "") for step in build["steps"]]
    order = [next(i for i, r in enumerate(runs) if cmd in r)
             for cmd in ("make install", "make notebooks", "no internet", "make book")]
    assert order == sorted(order), runs
    assert build["env"]["MODLIB_PROFILE"] == "cpu"
    assert build["timeout-minutes"] <= 120


def test_the_docstring_examples_of_every_module_are_tests():
    """`pytest` alone, `make unit` and `make test-fast` run the examples of every module of modlib
    (a new example is tested without being listed anywhere)."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = options["ini_options"]
    assert "--doctest-modules" in options["addopts"]
    assert {"tests", "modlib"} <= set(options["testpaths"])
    makefile = (ROOT / "Makefile").read_text()
    for target in ("unit", "test-fast"):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert "pytest -q -p no:cacheprovider tests modlib --doctest-modules" in recipe, target


def test_make_lint_checks_the_workflows():
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "--builtin-schema vendor.github-workflows .github/workflows/*.yml" in lint


def _yaml_blocks(text: str) -> list[dict]:
    import re

    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_the_fsdp_examples_of_the_book_and_notebook_07_agree():
    import json

    nb = json.loads((ROOT / "notebooks/07_modular_language_models.ipynb").read_text())
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    in_book = [b for b in _yaml_blocks((ROOT / "book/scaling.md").read_text())
               if b.get("distributed_type") == "FSDP"]
    in_notebook = [b for b in _yaml_blocks(markdown) if b.get("distributed_type") == "FSDP"]
    assert len(in_book) == 1 and in_notebook == in_book


def test_the_scaling_page_installs_from_the_repository_and_points_at_timings_that_exist():
    from modlib.course.student import install_source

    page = (ROOT / "book/scaling.md").read_text()
    assert f'"modular-training-course[llm] @ {install_source()}"' in page
    assert 'pip install "modlib' not in page
    results = (ROOT / "benchmarks/RESULTS.md").read_text()
    assert "GPU times: estimates for a Colab T4" in page
    assert "## GPU times: estimates for a Colab T4" in results
