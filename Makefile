# The two set-up commands: `make demo` and `make test`. Each builds .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export RAY_AUTH_MODE ?= disabled

.PHONY: demo test test-reliability bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m engine.demo

test: $(STAMP)
	$(PY) -m pytest -q

# The whole reliability suite (RELIABILITY.md): every seed of every matrix. `make test` runs a
# reduced set of it. The figures of the run go to $(RELIABILITY_FIGURES) and to the terminal.
RELIABILITY_FIGURES ?= reliability-figures.json
test-reliability: $(STAMP)
	RAY_DURABLE_RELIABILITY=full RAY_DURABLE_FIGURES=$(RELIABILITY_FIGURES) $(PY) -m pytest -q tests/reliability

bench: $(STAMP)
	$(PY) benchmarks/storage_throughput.py
	$(PY) benchmarks/replay_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
