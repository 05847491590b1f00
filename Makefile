# The two commands of the README: `make main` (the main job on the offline dataset) and
# `make test` (the test suite). Both set up .venv first; that is a no-op once it is up to date.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup main test
setup:
	@bash tools/bootstrap.sh

main: setup
	$(PY) tools/run_main.py $(ARGS)

test: setup
	$(PY) -m pytest -q tests $(PYTEST_ARGS)
