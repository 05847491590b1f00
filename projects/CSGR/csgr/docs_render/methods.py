"""Tables rendered from the method registry: the methods table (name, what it distils, defaults
by detector, paper), a method's keys and defaults per detector, and the BibTeX of the methods."""

import re
from typing import Dict, List

from detectron2.config import CfgNode
from tabulate import tabulate

from ..modeling.losses import get_method, method_names
from .citations import PAPERS

__all__ = ["DETECTORS", "method_defaults", "methods_table", "keys_table", "bibtex", "citation"]

# (student meta-architecture, column name)
DETECTORS = (("GeneralizedRCNN", "Faster R-CNN"), ("RetinaNet", "RetinaNet"))


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        if not value:
            return "all common levels"
        return "-".join((value[0], value[-1])) if len(value) > 2 else ", ".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def method_defaults(name: str, arch: str) -> Dict[str, object]:
    """Every key of ``MODEL.DISTILL.<name>`` as a config of a ``arch`` student holds it by
    default, with -1 replaced by the published value (``PUBLISHED``)."""
    method = get_method(name)
    node = CfgNode()
    method.add_config(node)
    published = method.PUBLISHED.get(arch, {})
    out = {}
    for key, value in node.items():
        if key in published and (value == -1 or value == []):
            value = published[key]
        out[key] = value
    return out


def _short_defaults(name: str, arch: str) -> str:
    """The published weights and levels, and first every key that another key's default sets,
    as the loss for an ``arch`` student uses them."""
    method = get_method(name)
    if not method.applies_to(arch):
        return "n/a"
    raw = method_defaults(name, arch)
    defaults = method.resolved_defaults(arch, raw)
    shown = list(method.PUBLISHED.get(arch, {})) or [
        k for k, v in defaults.items() if isinstance(v, float)
    ]
    if "IN_FEATURES" in defaults:
        shown.append("IN_FEATURES")
    changed = [k for k in defaults if defaults[k] != raw[k]]
    keys = list(dict.fromkeys(changed + shown))
    return ", ".join(f"{k.lower()} {_value(defaults[k])}" for k in keys)


def citation(name: str, link_prefix: str = "") -> str:
    """ "Authors, venue" linked to the paper, then to the method's page under ``link_prefix``."""
    paper = PAPERS[name]
    cite = f"[{paper.short}]({paper.url})" if paper.url else paper.short
    if paper.reconstructed:
        cite += " (reconstructed from the abstract)"
    return cite


def methods_table(link_prefix: str = "docs/methods/") -> str:
    """One row per registered method, in registry order."""
    headers = ["method", "distils", *(f"defaults, {col}" for _, col in DETECTORS), "paper"]
    rows = []
    for name in method_names():
        page = f"[{name}]({link_prefix}{name.lower()}.md)"
        rows.append(
            [page, PAPERS[name].distils]
            + [_short_defaults(name, arch) for arch, _ in DETECTORS]
            + [citation(name)]
        )
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def keys_table(name: str) -> str:
    """Every key of ``MODEL.DISTILL.<name>`` with its default per detector type."""
    method = get_method(name)
    archs = [(arch, col) for arch, col in DETECTORS if method.applies_to(arch)]
    per_arch = {arch: method_defaults(name, arch) for arch, _ in archs}
    keys: List[str] = list(next(iter(per_arch.values())))
    rows = [
        [f"`MODEL.DISTILL.{name}.{key}`", *(f"`{per_arch[arch][key]!r}`" for arch, _ in archs)]
        for key in keys
    ]
    headers = ["key", *(f"default, {col} student" for _, col in archs)]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    if len(archs) < len(DETECTORS):
        table += f"\n\nNot for other students: {method.NOT_APPLICABLE_REASON}."
    return table


def _packed(entry: str, width: int = 100) -> str:
    """A BibTeX entry with its fields packed into lines of at most ``width`` characters."""
    head, _, body = entry.partition("\n")
    fields = re.findall(r"\s*(\w+\s*=\s*\{(?:[^{}]|\{[^{}]*\})*\}),?", body)
    fields = [re.sub(r"\s+", " ", f) for f in fields]
    lines, line = [head], " "
    for field in fields:
        if len(line) + len(field) + 2 > width and line.strip():
            lines.append(line.rstrip())
            line = " "
        line += " " + field + ","
    lines.append(line.rstrip(",") + "}")
    return "\n".join(lines)


def bibtex(names: List[str] = None, packed: bool = False) -> str:
    """The BibTeX entries of ``names`` (default: every registered method) in one code block;
    ``packed``: several fields per line."""
    names = names or method_names()
    entries = [_packed(PAPERS[n].bibtex) if packed else PAPERS[n].bibtex for n in names]
    return "```bibtex\n" + "\n".join(entries) + "\n```"
