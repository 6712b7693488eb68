# Two commands do all set-up on a fresh machine:
#   make demo   install into .venv, then run the embedded-default workflow end to end (report in results/report/)
#   make test   install into .venv, then run the test suite (includes one real end-to-end run of the demo DAG)
#   make axe    fetch the pinned axe-core from npm into .axe/ (the report's accessibility check in the browser test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
AXE_VERSION ?= 4.10.3
AXE_STAMP := .axe/axe-core-$(AXE_VERSION).installed

.PHONY: install demo test lint dag bench clean axe

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/snakemake --cores $(CORES) --printshellcmds
	@echo "report: results/report/index.html"

test: install
	$(PY) -m pytest -q

# Pinned and exact, so every run checks the report against the same rules (the test reads
# .axe/node_modules/axe-core/axe.min.js); a new AXE_VERSION installs again.
$(AXE_STAMP):
	npm install --prefix .axe --no-audit --no-fund --save-exact axe-core@$(AXE_VERSION)
	touch $@

axe: $(AXE_STAMP)

lint: install
	$(VENV)/bin/snakemake --lint

dag: install
	$(VENV)/bin/snakemake -n

bench: install
	$(PY) bench/attribution.py
	$(PY) bench/decompose.py
	$(PY) bench/zeroshot.py
	$(PY) bench/faithfulness.py

clean:
	rm -rf results logs benchmarks .snakemake
