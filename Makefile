# Two set-up commands for a fresh machine (see README): `make render` and `make test`.
# Each creates .venv (the virtualenv Pulumi.yaml names) and installs the project into it when needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: render test lint bench schema clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

render: $(VENV)/.installed  ## render the default profile (local) offline into build/local
	$(BIN)/mlcluster render

test: $(VENV)/.installed  ## lint and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(VENV)/.installed  ## render and diff benchmarks (numbers, not assertions)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/diff.py

schema: $(VENV)/.installed  ## regenerate profiles/schema.json after changing the profile model
	$(BIN)/mlcluster schema

clean:
	rm -rf build .pytest_cache .ruff_cache
