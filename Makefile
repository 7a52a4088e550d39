# The README's two commands. Both create .venv on first use and are safe to repeat.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.koemo-installed
CHROMIUM ?= /usr/bin/chromium
# dvc.yaml's stage commands call `python`: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo results check aihub test bench scale proxy plots-template browser clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## make demo: run the whole DVC pipeline on the embedded demo corpus (a second run does nothing)
demo: $(STAMP)
	$(BIN)/koemo check
	$(BIN)/dvc repro
	$(BIN)/dvc status
	$(BIN)/koemo report

## make results: README.md's results section, regenerated from the workspace's reports (`koemo report`)
results: $(STAMP)
	$(BIN)/koemo report --update README.md

## make check: what params.yaml will need (data, encoders, GPU, cores, disk, RAM), in seconds; exit 1 on a blocker
check: $(STAMP)
	$(BIN)/koemo check

## make aihub AIHUB_DIR=/path/to/copy [PROFILE=aihub-cpu]: the real job: its params, what changed, the check, the run
PROFILE ?= aihub-gpu
aihub: $(STAMP)
	test -n "$(AIHUB_DIR)" || { echo "make aihub AIHUB_DIR=/path/to/your/AI-Hub/copy [PROFILE=aihub-cpu]"; exit 2; }
	$(BIN)/koemo profile $(PROFILE) --dir "$(AIHUB_DIR)"
	$(BIN)/dvc params diff
	$(BIN)/koemo check
	$(BIN)/dvc repro

## make test: the test suite on 2 workers (installs Debian's chromium, when root and missing, for the offline-plots browser test)
## (one worker builds the demo pipeline and runs its tests while the other runs the rest: tests/conftest.py)
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "make test: the offline-plots test needs Debian's chromium (sudo apt-get install chromium)"; fi

## make bench: the benchmark scripts (print ratios measured side by side)
bench: $(STAMP)
	for b in audio_features augment text_embeddings train_step; do $(BIN)/python benchmarks/$$b.py || exit 1; done

## make scale: the data stages at N = 500 / 2,000 / 8,000 synthetic rows; growth exponents, 44k projection
scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py $(SCALE_ARGS)

## make proxy: what split.group_by does on a release-shaped 44,000-row corpus (benchmarks/speaker_proxy.py)
proxy: $(STAMP)
	$(BIN)/python benchmarks/speaker_proxy.py

## make plots-template: rebuild .dvc/plots.html (the offline `dvc plots show` page) from vega's npm packages
plots-template: $(STAMP)
	rm -rf .npm-vega && mkdir .npm-vega && cd .npm-vega && npm pack --silent vega@5 vega-lite@5 vega-embed@6 \
		&& for f in *.tgz; do mkdir "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}" --strip-components=1; done
	$(BIN)/python -m koemo.ops.plots_page --npm .npm-vega --out .dvc/plots.html
	rm -rf .npm-vega

## make browser: headless Chromium (Debian) for tests/test_plots_page.py, which is skipped without it
browser:
	command -v chromium || $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y --no-install-recommends chromium

clean-venv:
	rm -rf $(VENV)
