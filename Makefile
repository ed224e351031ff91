# The two commands of the README, the inner loop (test-fast), the documentation site and the benchmarks. Each sets up .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: demo lint test test-fast docs bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "riskmodel needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/riskmodel demo --preset small --seed 0 --out data/simulated

# The linter, the type checker (the public API's annotations, [tool.mypy] in pyproject.toml) and
# the layers' import contract ([tool.importlinter]).
lint: $(BIN)/.installed
	$(BIN)/ruff check riskmodel tests bench notebooks
	$(BIN)/ruff format --check riskmodel tests bench
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

# Two test workers share two cores: OpenMP threads (LightGBM's) must sleep, not spin, while they wait.
# loadgroup: the Dask tests share one LocalCluster on one test worker.
# The suite builds the docs too (tests/test_docs.py: sphinx-build -W, which runs every notebook once).
test: lint
	OMP_WAIT_POLICY=passive $(BIN)/python -m pytest -n 2 --dist loadgroup

# The inner loop: the same checks without the end-to-end tests (marked slow: notebooks, README,
# HTTP serving, the demo, the Dask cluster). `make test`, which CI runs, keeps them all.
test-fast: lint
	OMP_WAIT_POLICY=passive $(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

# The site (user guide, API reference, the notebooks executed) into docs/_build/html, offline.
docs: $(BIN)/.installed
	OMP_WAIT_POLICY=passive $(BIN)/python -m sphinx -W --keep-going -q -b html -d docs/_build/doctrees docs docs/_build/html
	@echo "open docs/_build/html/index.html"

bench: $(BIN)/.installed
	cd bench && ../$(BIN)/python foundation.py && ../$(BIN)/python features.py && ../$(BIN)/python models.py \
		&& ../$(BIN)/python evaluation.py && ../$(BIN)/python serving.py && ../$(BIN)/python real_data.py && ../$(BIN)/python ablation.py \
		&& ../$(BIN)/python scaleout.py && ../$(BIN)/python io.py && ../$(BIN)/python forecast_store.py && ../$(BIN)/python monitoring.py && ../$(BIN)/python visit_effects.py \
		&& ../$(BIN)/python linkage.py accuracy effects province \
		&& for task in coverage "policies 2" "equal 2" "audit 2" ranking speed; do ../$(BIN)/python prevention.py $$task || exit 1; done

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis .mypy_cache docs/_build docs/generated
