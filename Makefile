# The two commands of the README: `make main` (the main job on the offline dataset) and
# `make test` (the test suite). Both set up .venv first; that is a no-op once it is up to date.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup main test
setup:
	@bash tools/bootstrap.sh

main: setup
	$(PY) tools/run_main.py $(ARGS)

# One torch thread per test process: on a 2-core machine the tests' own subprocesses (DDP,
# kill-and-resume) would otherwise oversubscribe the cores. tests/pytest.ini deletes a passing
# test's tmp_path (the training runs write checkpoints, ~10 GB over the suite) when it passes.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests $(PYTEST_ARGS)
