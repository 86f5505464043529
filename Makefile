# imagent — install, demo, test, bench. `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.imagent-installed

.PHONY: install demo test bench clean

install: $(STAMP)

# torch is pinned in the same pip command as everything else: on a CPU-only machine
# torch==2.13.0 resolves to the local CPU build, and an unpinned torch pulled in by
# another package would drag in GBs of CUDA wheels. torchvision is never installed
# (no CPU build on PyPI; it breaks transformers/diffusers imports here).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" -e ".[test]"
	@if $(BIN)/python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('torchvision') else 1)"; then \
		echo "error: torchvision is installed in $(VENV); it breaks transformers/diffusers here. Remove it: $(BIN)/pip uninstall -y torchvision"; exit 1; fi
	touch $(STAMP)

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

# Lint first (ruff settings in pyproject.toml): a lint finding fails `make test`.
test: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/store.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/tools.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/tui_startup.py
	bash bench/tui_smoke.sh
	$(BIN)/python bench/photo_scale.py
	if [ -f bench/tui_scale.py ]; then $(BIN)/python bench/tui_scale.py; fi

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
