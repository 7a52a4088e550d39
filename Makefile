# The README's two commands. Both create .venv on first use and are safe to repeat.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.koemo-installed
# dvc.yaml's stage commands call `python`: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## make demo: run the whole DVC pipeline on the embedded demo corpus (a second run does nothing)
demo: $(STAMP)
	$(BIN)/dvc repro
	$(BIN)/dvc status

## make test: the test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make bench: the benchmark scripts (print ratios measured side by side)
bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
