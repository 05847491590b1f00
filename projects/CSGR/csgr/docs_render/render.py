"""Rendering every block of the documentation: which text a block's spec stands for, and the
files that hold blocks (README.md, BENCHMARKS.md, docs/**/*.md)."""

import glob
import os
from typing import Callable, Dict, List, Tuple

from ..benchmark.seed_goals import csgr_seed_goals
from .accuracy_tables import compact_table, full_table, make_main_table, method_rows
from .markers import replace_blocks, stale_blocks
from .methods import bibtex, keys_table, methods_table
from .results import RESULTS_DIR, AccuracyResults, load_results
from .tables import generic_tables, provenance_text, speed_tables

__all__ = ["doc_files", "render_spec", "render_file", "check_files"]


def doc_files(root: str) -> List[str]:
    """README.md, BENCHMARKS.md and every markdown file under docs/, as absolute paths."""
    files = [os.path.join(root, "README.md"), os.path.join(root, "BENCHMARKS.md")]
    files += sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def _gpu_section(root: str) -> str:
    """The GPU section from ``gpu_check.json`` (tools/gpu_check.py), or the "not measured yet"
    text with the command that fills it."""
    from ..benchmark.gpu_check import render_gpu_section

    measured = os.path.isfile(os.path.join(root, RESULTS_DIR, "gpu_check.json"))
    return render_gpu_section(load_results(root, "gpu_check") if measured else None)


def _results(root: str, name: str, view: str, doc_dir: str) -> str:
    data = load_results(root, name)
    if view == "command":
        link = os.path.relpath(os.path.join(root, RESULTS_DIR, name + ".json"), doc_dir)
        return provenance_text(name, data, link)
    if view == "goals":
        seeds = data.get("seeds", {})
        default = data.get("display", {}).get("default")
        lines = csgr_seed_goals(data["results"], seeds, data.get("metric", "AP"), default)
        return "\n".join(lines)
    if "tables" in data:
        return generic_tables(data)
    if "meta" in data and "settings" in data:
        return speed_tables(data)
    res = AccuracyResults(data)
    if view == "make_main":
        return make_main_table(res)
    if view == "compact":
        return compact_table([res], [data.get("display", {}).get("name", name)])
    return full_table(res)


def _accuracy_files(root: str) -> List[Tuple[str, AccuracyResults]]:
    """``(name, results)`` of every multi-seed accuracy results file, by name."""
    files = []
    for path in sorted(glob.glob(os.path.join(root, RESULTS_DIR, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        data = load_results(root, name)
        if "results" in data and "meta" not in data and len(data["provenance"]["seeds"]) > 1:
            files.append((name, AccuracyResults(data)))
    return files


def render_spec(root: str, spec: str, path: str) -> str:
    """The text of the block ``spec`` (``<source>[:<view>]``) in the file ``path``.

    Sources: ``methods`` (views ``table``, ``bibtex``), ``method-<NAME>`` (views ``keys``,
    ``bibtex``, ``results``), ``gpu_check``, or results files (``a`` or ``a+b`` for the ``compact`` view;
    views ``full``, ``compact``, ``make_main``, ``command``, ``goals``: each CSGR row's seed goals).

    Raises:
        ValueError: an unknown source or view, naming the spec.
    """
    source, _, view = spec.partition(":")
    doc_dir = os.path.dirname(os.path.abspath(path))
    if source == "methods":
        prefix = os.path.relpath(os.path.join(root, "docs", "methods"), doc_dir)
        if view == "bibtex":
            return bibtex(packed=True)
        return methods_table(prefix + "/")
    if source.startswith("method-"):
        name = source[len("method-") :]
        if view == "keys":
            return keys_table(name)
        if view == "bibtex":
            return bibtex([name])
        if view == "results":
            return method_rows(_accuracy_files(root), name)
        raise ValueError(f"{path}: block 'results:{spec}': unknown view {view!r}")
    if source == "gpu_check":
        return _gpu_section(root)
    names = source.split("+")
    if len(names) > 1 or view == "compact":
        datas = [load_results(root, n) for n in names]
        columns = [d.get("display", {}).get("name", n) for d, n in zip(datas, names)]
        return compact_table([AccuracyResults(d) for d in datas], columns)
    if view not in ("", "full", "make_main", "command", "goals"):
        raise ValueError(f"{path}: block 'results:{spec}': unknown view {view!r}")
    return _results(root, source, view, doc_dir)


def _renderer(root: str, path: str) -> Callable[[str], str]:
    cache: Dict[str, str] = {}

    def render(spec: str) -> str:
        if spec not in cache:
            cache[spec] = render_spec(root, spec, path)
        return cache[spec]

    return render


def render_file(root: str, path: str) -> bool:
    """Rewrite every block of ``path``; True if the file changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = replace_blocks(text, _renderer(root, path), path)
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


def check_files(root: str, paths: List[str]) -> List[Tuple[str, int, str]]:
    """``(path, line, spec)`` of every block that differs from its rendering."""
    stale = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for line, spec in stale_blocks(text, _renderer(root, path), path):
            stale.append((os.path.relpath(path, root), line, spec))
    return stale
