# Two commands do all the set-up on a fresh clone:
#   make demo   installs pixcolor into .venv and colorizes the bundled sample photos
#   make test   installs the dev extras into .venv and runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installed before pixcolor itself: a range that the CPU wheel on this kind of machine satisfies,
# so pip takes it instead of downloading a multi-GB CUDA build. Elsewhere pip picks the newest
# 2.x below 2.14 for your platform (override with TORCH_SPEC="torch==...").
TORCH_SPEC ?= torch>=2.2,<2.14

.PHONY: demo test lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/pixcolor demo -o demo_out

test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
