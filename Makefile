# Both targets create (or reuse) .venv with the pinned development dependencies and the project itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/torchcost profile torchvision:resnet50

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests
	$(PY) -m mypy
