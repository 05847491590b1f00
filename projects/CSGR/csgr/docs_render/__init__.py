"""The documentation's rendered blocks: results tables from ``docs/results/*.json`` and method
tables from the registry, written between markers in README.md, BENCHMARKS.md and docs/
(``tools/render_docs.py``)."""

from .render import check_files, doc_files, render_file, render_spec

__all__ = ["check_files", "doc_files", "render_file", "render_spec"]
