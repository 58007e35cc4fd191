# Both targets create (or reuse) .venv with the pinned development dependencies and the project itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium

BENCH_STAMP := $(VENV)/.bench-stamp
NICE := nice -n 10

.PHONY: demo test test-compat lint screenshot bench

$(STAMP): pyproject.toml requirements-base.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

# The HTML report's browser test drives Debian's chromium through Playwright (never a downloaded browser).
# Installed here when missing and allowed (root with apt-get, as on CI); otherwise that one test is skipped.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is not installed (sudo apt-get install chromium); the HTML browser test will be skipped"; \
	fi

demo: $(STAMP)
	$(VENV)/bin/torchcost profile torchvision:resnet50

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -q

# The second environment CI tests: the oldest supported torch and torchvision with the newest transformers and
# timm (requirements-compat.txt), in .venv-compat.
COMPAT_VENV := .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp

$(COMPAT_STAMP): pyproject.toml requirements-base.txt requirements-compat.txt
	test -x $(COMPAT_PY) || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install -q -r requirements-compat.txt -e .
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP) $(CHROMIUM)
	$(COMPAT_PY) -m pip install -q --upgrade transformers timm
	$(COMPAT_PY) -m pip list 2>/dev/null | grep -E '^(torch|torchvision|transformers|timm) '
	$(COMPAT_PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests
	$(PY) -m mypy

# The README's picture: the HTML report of resnet18, taken with the browser test's tooling.
screenshot: $(STAMP) $(CHROMIUM)
	mkdir -p build
	$(VENV)/bin/torchcost profile torchvision:resnet18 --html build/resnet18.html --brief
	$(PY) -m tests.report.browser build/resnet18.html docs/html-report.png

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
