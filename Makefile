# The two set-up commands: `make demo` and `make test`. Each builds .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export RAY_AUTH_MODE ?= disabled

.PHONY: demo test test-multinode bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m engine.demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not multinode or multinode_smoke"

test-multinode: $(STAMP)
	$(PY) -m pytest -q -m multinode

bench: $(STAMP)
	$(PY) benchmarks/storage_throughput.py
	$(PY) benchmarks/replay_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
