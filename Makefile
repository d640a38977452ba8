# embedlab: `make demo` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch: on this project's machines pip finds it locally under this exact version. Elsewhere,
# point pip at a CPU wheel index, e.g. `make test TORCH_SPEC="torch --index-url <your CPU wheel index>"`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("embedlab needs Python >= 3.10") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-text: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[text,viz]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-text

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

demo: $(VENV)/.installed-text
	$(BIN)/embedlab demo --out embedlab-demo

# ESLint for the report's script, from the npm registry (Node.js >= 20), pinned in package.json (no lock file).
node_modules/.installed-eslint: package.json
	npm install --no-package-lock --no-audit --no-fund
	touch $@

lint: $(VENV)/.installed-dev node_modules/.installed-eslint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	npx --no-install eslint --max-warnings 0 src/embedlab/report/assets

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) embedlab-demo .pytest_cache .ruff_cache node_modules
