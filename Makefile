# The two commands: `make run` (the workbench on ./projects with a demo project) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
WORKSPACE ?= projects
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: run test install install-test lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1 || $(PIP) install -q "torch>=2.4,<2.15" "torchvision>=0.19,<0.30"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(VENV)/bin/workbench --workspace $(WORKSPACE) ui --host $(HOST) --port $(PORT) --demo-if-empty

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check workbench tests bench migrations
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/coco_io.py
