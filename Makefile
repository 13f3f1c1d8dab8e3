# The two commands of the README: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup run test bench clean

setup:
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/ese run

test: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/python benchmarks/bench_features.py
	$(VENV)/bin/python benchmarks/bench_training.py

clean:
	rm -rf runs build .pytest_cache
