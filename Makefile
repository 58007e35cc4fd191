# Both targets create (or reuse) .venv with the pinned development dependencies and the project itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

BENCH_STAMP := $(VENV)/.bench-stamp
NICE := nice -n 10

.PHONY: demo test lint bench

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

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install -q -r requirements-bench.txt -e '.[bench]'
	touch $(BENCH_STAMP)

# Every tool on every case (about an hour on 2 cores, in pieces), the scale runs, then docs/benchmarks.md.
bench: $(BENCH_STAMP)
	rm -f bench/results/peers*.json bench/results/scale.json
	$(NICE) $(PY) bench/peers.py run --suite handmade transformers --out bench/results/peers-small.json
	$(NICE) $(PY) bench/peers.py run --suite torchvision --out bench/results/peers-zoo-a.json \
		--tools "torchcost (auto: meta)" "torchcost (cpu)" FlopCounterMode fvcore thop "ptflops (pytorch)"
	$(NICE) $(PY) bench/peers.py run --suite torchvision --out bench/results/peers-zoo-b.json \
		--tools "ptflops (aten)" torchinfo calflops torchprofile torchscan
	$(NICE) $(PY) bench/scale.py
	$(PY) bench/report.py
