"""Benchmarks of the distillation toolkit: speed and memory of a training step, and accuracy of
each method side by side. Used by ``tools/benchmark_distill.py`` and
``tools/benchmark_accuracy.py``; not imported by ``import csgr``."""
