# The two set-up commands: `make demo` and `make test`. Each builds .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export RAY_AUTH_MODE ?= disabled

.PHONY: demo test test-slow test-multinode test-reliability bench bench-quick browser screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m engine.demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and (not multinode or multinode_smoke)"

# What make test leaves out to stay under 15 minutes: second tests of a kind (marked slow).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not multinode"

test-multinode: $(STAMP)
	$(PY) -m pytest -q -m multinode

# The UI tests drive a real headless Chromium (Debian's chromium and chromium-driver); without them
# they are skipped, saying so. `make browser` installs them (apt-get, as root or through sudo).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "chromium and chromedriver are installed"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

screenshots: $(STAMP) browser
	$(PY) docs/screenshots.py

# The whole reliability suite (RELIABILITY.md): every seed of every matrix. `make test` runs a
# reduced set of it. The figures of the run go to $(RELIABILITY_FIGURES) and to the terminal.
RELIABILITY_FIGURES ?= reliability-figures.json
test-reliability: $(STAMP)
	RAY_DURABLE_RELIABILITY=full RAY_DURABLE_FIGURES=$(RELIABILITY_FIGURES) $(PY) -m pytest -q tests/reliability

# The benchmark suite (README "Performance"): every benchmark against its baseline, one table,
# results.json and a chart per benchmark in benchmarks/results/suite/. Peers: add --peer ray-workflow
# --peer dbos to `$(PY) -m benchmarks` (each in its own virtualenv; see benchmarks/_peers.py).
bench: $(STAMP)
	$(PY) -m benchmarks

bench-quick: $(STAMP)
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) build *.egg-info
