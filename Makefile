# Two entry points (see README.md): `make run` (the demo through Snakemake) and `make test`.
# Both create .venv and install the pinned requirements when they are missing or changed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test bench report clean-results

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

report: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

bench: $(VENV)/.installed
	$(BIN)/python -m artify.bench $(BENCH_ARGS)

clean-results:
	rm -rf results logs benchmarks .snakemake
