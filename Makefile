# The two commands are `make book` and `make test`; every other target is a step of theirs.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
VENV ?= .venv
PY := $(VENV)/bin/python
# The install stamp is keyed on pyproject.toml: a changed dependency list reinstalls.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
QUIET_PIP := { grep -v '^WARNING: Location' || true; }

.PHONY: install test test-fast lint browser unit installed nbval book book-strict notebooks student bench serve clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q $(TORCH_PINS) 2>&1 | $(QUIET_PIP)
	@$(PY) -m pip uninstall -q -y modlib >/dev/null 2>&1 || true  # the distribution's old name
	$(PY) -m pip install -q -e ".[dev,llm]" 2>&1 | { grep -vE '^WARNING: Location|BuildBackendWarning|^ *!!|\*{10}|^ *$$' || true; }
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@rm -f $(VENV)/.installed-* && touch $@ && echo "install: $(VENV) is ready"

test: install
	@$(MAKE) --no-print-directory lint unit installed nbval book-strict

# The inner loop while editing: lint, every test not marked slow and the docstring examples of
# every module (under a minute on two idle cores).
test-fast: install
	@$(MAKE) --no-print-directory lint
	MODLIB_PROFILE=ci $(VENV)/bin/pytest -q -p no:cacheprovider tests modlib --doctest-modules \
		-m "not slow and not installed"

lint: install
	$(VENV)/bin/ruff check modlib tests benchmarks
	$(VENV)/bin/check-jsonschema -q --builtin-schema vendor.github-workflows .github/workflows/*.yml

# The browser test (tests/test_browser.py) opens every page of the built book in headless
# Chromium. Where /usr/bin/chromium is missing, root installs Debian's package (apt's output goes to
# $(VENV)/chromium-apt.log); anyone else is told in one line that the book was not opened in a
# browser. MathJax and the widget scripts, which the pages load from CDNs, are served to Chromium
# from local copies of their npm packages in $(BROWSER_ASSETS).
CHROMIUM := /usr/bin/chromium
BROWSER_ASSETS := $(VENV)/browser-assets
BROWSER_PACKAGES := mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.6 requirejs@2.3.4
BROWSER_STAMP := $(BROWSER_ASSETS)/.ok-$(shell echo "$(BROWSER_PACKAGES)" | sha1sum | cut -c1-12)
NO_CHROMIUM := browser test: Chromium is not installed and cannot be installed here

browser: install
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then why="not root"; \
	  elif ! command -v apt-get >/dev/null; then why="no apt-get"; fi; \
	  if [ -n "$${why:-}" ]; then \
	    echo "$(NO_CHROMIUM) ($$why); the built book was not opened in a browser."; \
	  else \
	    log=$(VENV)/chromium-apt.log; \
	    echo "browser test: installing Chromium with apt-get (log: $$log)"; \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      --no-install-recommends chromium; } >"$$log" 2>&1 && [ -x $(CHROMIUM) ] || \
	      echo "browser test: apt-get could not install Chromium (see $$log); the built book was not opened in a browser."; \
	  fi; \
	fi
	@if [ ! -f $(BROWSER_STAMP) ]; then \
	  if ! command -v npm >/dev/null; then \
	    echo "browser test: npm is not installed; math and widgets were not checked in a browser."; \
	  else \
	    rm -rf $(BROWSER_ASSETS) && mkdir -p $(BROWSER_ASSETS)/tgz; \
	    log=$(BROWSER_ASSETS)/npm.log; \
	    if npm pack -q --pack-destination $(BROWSER_ASSETS)/tgz $(BROWSER_PACKAGES) >"$$log" 2>&1; then \
	      for tgz in $(BROWSER_ASSETS)/tgz/*.tgz; do \
	        dir=$(BROWSER_ASSETS)/$$(basename "$$tgz" .tgz); mkdir -p "$$dir"; \
	        tar -xzf "$$tgz" -C "$$dir" --strip-components=1; done; \
	      rm -rf $(BROWSER_ASSETS)/tgz && touch $(BROWSER_STAMP); \
	    else \
	      echo "browser test: npm could not fetch $(BROWSER_PACKAGES) (see $$log); math and widgets were not checked in a browser."; \
	    fi; \
	  fi; \
	fi

# Every test, slow ones included, and the docstring examples of every module of modlib. Where the
# browser step left Chromium and the local scripts in place, the browser test must run in full.
unit: install browser
	MODLIB_PROFILE=ci MODLIB_BROWSER_ASSETS=$(BROWSER_ASSETS) \
	MODLIB_REQUIRE_BROWSER=$$([ -x $(CHROMIUM) ] && [ -f $(BROWSER_STAMP) ] && echo 1 || echo 0) \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests modlib --doctest-modules -m "not installed"

# What users get: the built wheel and sdist in a fresh virtual environment (dependencies from
# .venv, nothing downloaded), imported from outside the repository; and notebook 00 run as in
# Colab, its set-up cell installing the course with pip from a local clone of this repository.
installed: install
	MODLIB_PROFILE=ci $(VENV)/bin/pytest -q -p no:cacheprovider tests -m installed

# nbval on every notebook in notebooks/ (an empty folder is not an error).
nbval: install
	@nbs=$$(ls notebooks/*.ipynb 2>/dev/null || true); \
	if [ -z "$$nbs" ]; then echo "nbval: no notebooks yet"; exit 0; fi; \
	MODLIB_PROFILE=ci $(VENV)/bin/pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env $$nbs

book: install
	$(VENV)/bin/jupyter-book build .
	@echo "book: open _build/html/index.html"

# The strict build: warnings are errors, into a temporary folder that is removed afterwards.
book-strict: install
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	$(VENV)/bin/jupyter-book build . --path-output "$$out" -W --keep-going

# Regenerate the stored notebook outputs (cpu profile), then the student versions.
# NOTEBOOKS chooses which, e.g. make notebooks NOTEBOOKS="notebooks/0[0-6]_*.ipynb".
NOTEBOOKS ?= notebooks/*.ipynb
notebooks: install
	@for nb in $(NOTEBOOKS); do echo "running $$nb"; \
	MODLIB_PROFILE=cpu $(VENV)/bin/jupyter-execute --inplace --timeout=3600 "$$nb"; done
	@$(MAKE) --no-print-directory student

# notebooks/student/: the masters with solutions replaced by stubs and outputs cleared.
student: install
	$(PY) -m modlib.course.student

bench: install
	$(PY) benchmarks/bench_import.py
	$(PY) benchmarks/bench_spectral.py
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_llm.py

serve: book
	$(PY) -m http.server -d _build/html 8000

clean:
	rm -rf _build .pytest_cache
