"""Tables of results files other than accuracy: generic tables (``tables``: a list of
``{"title", "columns", "rows"}``, cells as strings) and the speed benchmark's results
(``tools/benchmark_distill.py --json``: ``meta``, ``settings``, ``results`` per precision)."""

from typing import List

from tabulate import tabulate

from ..benchmark.distill_speed import csgr_goals
from ..benchmark.speed_report import speed_table

__all__ = ["generic_tables", "speed_tables", "provenance_text"]


def generic_tables(data: dict) -> str:
    """Every table of ``data["tables"]``, each under its title (when it has one) and followed
    by its ``lines`` (e.g. goals met or not), one list item each."""
    parts: List[str] = []
    for table in data["tables"]:
        if table.get("title"):
            parts.append(f"*{table['title']}*")
        rows = [[str(cell) for cell in row] for row in table["rows"]]
        parts.append(
            tabulate(rows, headers=table["columns"], tablefmt="github", disable_numparse=True)
        )
        if table.get("lines"):
            parts.append("\n".join(table["lines"]))
    return "\n\n".join(parts)


def speed_tables(data: dict) -> str:
    """One table per precision, then the CSGR goals met or not."""
    parts: List[str] = []
    for precision, rows in data["results"].items():
        if len(data["results"]) > 1:
            parts.append(f"*{precision}*")
        parts.append(speed_table(rows))
        goals = csgr_goals(rows)
        if goals:
            parts.append(
                "\n".join(
                    f"- goal {name} <= {target:g}: {value:.3f} ({'met' if met else 'NOT met'})"
                    for name, (value, target, met) in goals.items()
                )
            )
    return "\n\n".join(parts)


def provenance_text(name: str, data: dict, results_link: str) -> str:
    """The command of a results file in a code block, then when, where and on which seeds it
    was measured, and a link to the file."""
    prov = data.get("provenance", {})
    lines = []
    if prov.get("command"):
        lines += ["```", prov["command"], "```", ""]
    facts = [f"measured {prov['date']}" if prov.get("date") else ""]
    facts.append(f"on {prov['machine']}" if prov.get("machine") else "")
    if prov.get("seeds"):
        facts.append("seeds " + ", ".join(str(s) for s in prov["seeds"]))
    if prov.get("split"):
        facts.append(f"evaluated on `{prov['split']}`")
    text = ", ".join(f for f in facts if f)
    text = text[:1].upper() + text[1:]
    lines.append(f"{text}. Data: [`{name}.json`]({results_link}).")
    return "\n".join(lines)
