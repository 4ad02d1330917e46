# Two set-up commands for a fresh machine (see README): `make render` and `make test`.
# Each creates .venv (the virtualenv Pulumi.yaml names) and installs what it needs into it, once.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: render test lint bench schema clean e2e-toolchain e2e journey

$(VENV)/.installed: pyproject.toml
	@echo "installing mlcluster into $(VENV) (first run only: a minute or two)…"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e . | grep -v "^Requirement already satisfied" || true
	$(BIN)/python -c "import mlcluster.cli" && touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@echo "installing the test tools into $(VENV) (first run only)…"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]' | grep -v "^Requirement already satisfied" || true
	$(BIN)/python -c "import pytest, jsonschema, pulumi_policy" && touch $@

render: $(VENV)/.installed  ## render the default profile (local) offline into build/local
	$(BIN)/mlcluster render

test: $(VENV)/.installed-test  ## lint and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(VENV)/.installed  ## render and diff benchmarks (numbers, not assertions)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/diff.py

schema: $(VENV)/.installed  ## regenerate profiles/schema.json, profiles/REFERENCE.md and docs/guardrails.md
	$(BIN)/mlcluster schema

e2e-toolchain:  ## build the Pulumi CLI, providers and a Kubernetes control plane from Go modules (cached, once)
	bash e2e/toolchain/build.sh

e2e: $(VENV)/.installed-test  ## the real-engine loop: preview, up, up again, change, destroy (needs e2e-toolchain)
	$(BIN)/python -m pytest -m e2e tests/e2e -p no:cacheprovider

journey: $(VENV)/.installed-test  ## every tier of every team through real Kueue and kube-scheduler (needs e2e-toolchain)
	$(BIN)/python -m pytest -m journey tests/e2e -p no:cacheprovider

clean:
	rm -rf build .pytest_cache .ruff_cache
