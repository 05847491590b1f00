"""Benchmarks of the distillation toolkit: speed and memory of a training step, and the experiment
runner (accuracy of each method side by side, on a built-in suite or on a user's own configs,
with a recommendation; ``make main`` is a preset). Used by ``tools/benchmark_distill.py``,
``tools/benchmark_accuracy.py`` and ``tools/run_main.py``; not imported by ``import csgr``."""
