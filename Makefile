# The commands of the README: `make run`, `make test` (the full suite, what CI runs) and
# `make test-fast` (the edit loop: the suite without the tests marked slow). All set everything up first.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup run test test-fast bench clean

setup:
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/ese run

test: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/python benchmarks/bench_features.py
	$(VENV)/bin/python benchmarks/bench_training.py

clean:
	rm -rf runs build .pytest_cache
