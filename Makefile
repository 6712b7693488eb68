# Two commands do all set-up on a fresh machine:
#   make demo   install into .venv, then run the embedded-default workflow end to end (report in results/report/)
#   make test   install into .venv, then run the test suite (includes one real end-to-end run of the demo DAG)
#   make rehearsal  the paper DAG (config/paper.yaml) end to end on a local mirror of every download with random
#               weights of the real architectures, served on 127.0.0.1 (docs/rehearsal.md); runs in .rehearsal/
#   make axe    fetch the pinned axe-core from npm into .axe/ (the report's accessibility check in the browser test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
AXE_VERSION ?= 4.10.3
AXE_STAMP := .axe/axe-core-$(AXE_VERSION).installed

REHEARSAL_DIR ?= .rehearsal
REHEARSAL_PORT ?= 8765
REHEARSAL_MIRROR := $(REHEARSAL_DIR)/resources/rehearsal

.PHONY: install demo test lint dag bench clean axe rehearsal

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

# The mirror is served only while Snakemake runs; config paths (weights, ImageNet) are relative to $(REHEARSAL_DIR).
rehearsal: install
	$(VENV)/bin/clipxai rehearsal-mirror $(REHEARSAL_MIRROR) --weights all --base-url http://127.0.0.1:$(REHEARSAL_PORT)
	$(PY) -m http.server $(REHEARSAL_PORT) --bind 127.0.0.1 --directory $(REHEARSAL_MIRROR) >/dev/null 2>&1 & \
	  server=$$!; trap 'kill $$server' EXIT; sleep 1; \
	  $(VENV)/bin/snakemake --cores $(CORES) --directory $(REHEARSAL_DIR) --snakefile $(CURDIR)/Snakefile \
	    --configfile $(CURDIR)/config/paper.yaml $(CURDIR)/config/rehearsal.yaml $(CURDIR)/$(REHEARSAL_MIRROR)/sources.yaml
	@echo "rehearsal report: $(REHEARSAL_DIR)/results/report/index.html"

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
	rm -rf results logs benchmarks .snakemake $(REHEARSAL_DIR)
