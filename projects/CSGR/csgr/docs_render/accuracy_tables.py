"""Accuracy tables rendered from results files: the full table of a regime (BENCHMARKS), the
compact table of one or more detectors (README) with where CSGR loses, and ``make main``'s
comparison table."""

import math
from typing import List

from tabulate import tabulate

from ..modeling.losses import get_method, method_names
from .results import METRICS, AccuracyResults, divergence

__all__ = ["full_table", "compact_table", "make_main_table"]

CALIBRATED = "-calibrated"


def _fmt(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _mean_std(stat: dict) -> str:
    if stat.get("recorded") is False:
        return "–"  # a transcribed run whose value was not recorded
    if stat["n"] == 0 or math.isnan(stat["mean"]):
        return "n/a"
    if math.isnan(stat["std"]):
        return _fmt(stat["mean"])
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def _seeds_cell(res: AccuracyResults, label: str) -> str:
    done, failed = len(res.seeds(label)), len(res.failures(label))
    cell = f"{done}" + (f" ({failed} diverged)" if failed else "")
    planned = res.data.get("provenance", {}).get("seeds", [])
    if label != "teacher" and done and not failed and len(res.seeds(label)) < len(planned):
        cell += " (seed " + ", ".join(str(s) for s in res.seeds(label)) + ")"
    return cell


def _seed_order(seed) -> tuple:
    """Sort key of a seed: integers by value (9 before 10), then unknown (string) seeds."""
    return (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed))


def _per_seed_cell(res: AccuracyResults, label: str) -> str:
    values = res.per_seed(label)
    fails = res.failures(label)
    if values is None:
        stat = res.stat(label, "AP")
        return "" if stat["n"] < 2 else f"{stat['min']:.2f}-{stat['max']:.2f} (range)"
    cells = {s: _fmt(v) for s, v in values.items()}
    cells.update({s: divergence(w) for s, w in fails.items()})
    if len(cells) < 2:
        return ""
    return ", ".join(cells[s] for s in sorted(cells, key=_seed_order))


def _factor_cell(res: AccuracyResults, label: str) -> str:
    return ", ".join(f"{f:#.3g}" for f in res.factors(label))


def full_table(res: AccuracyResults) -> str:
    """Every label of a results file: seeds, loss-scale factors (when any run has one), mean ±
    std of each metric with valid values, AP per seed and the AP difference to the baseline."""
    metrics = [m for m in METRICS if res.has_metric(m)]
    with_factors = any(res.factors(label) for label in res.labels)
    headers = ["model", "seeds"] + (["factor per seed"] if with_factors else [])
    headers += [*metrics, "AP per seed", "ΔAP vs baseline"]
    rows = []
    for label in res.labels:
        row = [res.name(label), _seeds_cell(res, label)]
        row += [_factor_cell(res, label)] if with_factors else []
        if not res.seeds(label):
            fails = res.failures(label)
            its = ", ".join(
                divergence(fails[s]).replace("diverged at it ", "")
                for s in sorted(fails, key=_seed_order)
            )
            row += [f"diverged on every seed (iterations {its})"] + [""] * (len(metrics) + 1)
        else:
            row += [_mean_std(res.stat(label, m)) for m in metrics]
            row.append(_per_seed_cell(res, label))
        plain = label in ("teacher", "baseline") or not res.seeds(label)
        rows.append(row + ["" if plain else _fmt(res.delta(label), True)])
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = [f"- {method}: not run ({why})" for method, why in res.skipped().items()]
    return "\n\n".join([table, "\n".join(notes)]) if notes else table


# a results file's detector (provenance) -> the student meta-architecture
_ARCH = {"frcnn": "GeneralizedRCNN", "retinanet": "RetinaNet"}


def _arch(res: AccuracyResults):
    """The student meta-architecture of a results file, None where its provenance names none."""
    return _ARCH.get(res.data.get("provenance", {}).get("detector", ""))


def _compact_cell(res: AccuracyResults, label: str) -> str:
    if label not in res.labels:
        arch = _arch(res)
        if arch and label in method_names() and not get_method(label).applies_to(arch):
            return "n/a"  # the method does not apply to this detector
        return "not run"
    done, fails = res.seeds(label), res.failures(label)
    if not done:
        return f"diverged ({len(fails)} of {len(fails)})"
    cell = _mean_std(res.stat(label, "AP"))
    if label not in ("teacher", "baseline"):
        cell += f" ({_fmt(res.delta(label), True)})"
    if fails:
        cell += f", {len(fails)} of {len(done) + len(fails)} diverged"
    return cell


def _loses_line(res: AccuracyResults, column: str) -> str:
    """Where CSGR's default (the file's ``display["default"]`` row, where it names one), its
    published and its calibrated rows of one file lose; "" if it has none of them."""
    parts = []
    rows = [("CSGR", "published", ""), ("CSGR" + CALIBRATED, "calibrated", CALIBRATED)]
    if res.display.get("default"):
        rows.insert(0, (res.display["default"], "default", ""))
    for csgr, mode, suffix in rows:
        if csgr not in res.labels or not res.seeds(csgr):
            continue
        mine = res.mean(csgr)
        above = [
            (label[: len(label) - len(suffix)], res.mean(label))
            for label in res.labels
            if label not in ("teacher", "baseline", "CSGR", csgr)
            and label.endswith(suffix)
            and (suffix or not label.endswith(CALIBRATED))
            and not label.startswith("CSGR-")
            and res.seeds(label)
            and res.mean(label) > mine
        ]
        if res.mean("baseline") > mine:
            above.insert(0, ("the baseline", res.mean("baseline")))
        names = ", ".join(f"{n} {v:.2f}" for n, v in sorted(above, key=lambda x: -x[1]))
        parts.append(f"{mode} {mine:.2f}, below {names}" if names else f"{mode} {mine:.2f}, best")
    return (f"{column}: " + "; ".join(parts)) if parts else ""


def compact_table(results: List[AccuracyResults], columns: List[str]) -> str:
    """One row per student (published weights and, where measured, calibrated side by side),
    one pair of columns per results file, then a line per file saying where CSGR loses.

    Args:
        results: the files, e.g. Faster R-CNN and RetinaNet of one regime.
        columns: a short name per file (e.g. "Faster R-CNN").
    """
    labels: List[str] = []
    for res in results:
        labels += [
            label
            for label in res.labels
            if not label.endswith(CALIBRATED)
            and label not in labels
            and (label == "teacher" or len(res.seeds(label)) + len(res.failures(label)) > 1)
        ]
    labels = _default_first(labels, results)
    headers, calibrated = ["student"], []
    for res, column in zip(results, columns):
        calibrated.append(any(label.endswith(CALIBRATED) for label in res.labels))
        headers.append(f"{column}: AP (Δ baseline)")
        if calibrated[-1]:
            headers.append(f"{column}: calibrated")
    rows = []
    for label in labels:
        names = [r.name(label) for r in results if label in r.labels]
        row = [" / ".join(dict.fromkeys(names))]  # each file's own name, once
        for res, calib in zip(results, calibrated):
            row.append(_compact_cell(res, label))
            if calib:
                other = label + CALIBRATED
                row.append(_compact_cell(res, other) if other in res.labels else "")
        rows.append(row)
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    lines = [line for line in map(_loses_line, results, columns) if line]
    text = table + ("\n\nWhere CSGR loses (mean AP): " + ". ".join(lines) + "." if lines else "")
    missing = [_not_run(res, column) for res, column in zip(results, columns)]
    missing = [m for m in missing if m]
    if missing:
        text += (" " if lines else "\n\n") + "Not run yet: " + "; ".join(missing) + "."
    return text


def _default_first(labels: List[str], results: List[AccuracyResults]) -> List[str]:
    """``labels`` with the rows the files name as CSGR's default (``display["default"]``) moved
    right after the teacher and the baseline, so a reader finds the default under its baseline."""
    defaults = [r.display["default"] for r in results if r.display.get("default") in labels]
    head = [label for label in ("teacher", "baseline") if label in labels]
    first = head + [d for d in dict.fromkeys(defaults) if d not in head]
    return first + [label for label in labels if label not in first]


def _not_run(res: AccuracyResults, column: str) -> str:
    """The registered methods that apply to the file's detector and have no row in it."""
    arch = _arch(res)
    if arch is None:
        return ""
    names = [
        name
        for name in method_names()
        if get_method(name).applies_to(arch)
        and not any(label == name or label.startswith(name + "-") for label in res.labels)
    ]
    return f"{column}: {', '.join(names)}" if names else ""


def make_main_table(res: AccuracyResults) -> str:
    """``make main``'s table (teacher, baseline, CSGR of one seed, and CSGR - baseline), as
    :func:`~csgr.benchmark.accuracy_report.comparison_table` prints it, with the row names of the
    file's ``display``. The differences are those of the file's ``aggregate["CSGR"]["delta"]``
    where given (a transcribed table, whose metrics are rounded), else of the metrics."""
    runs = {label: res.results[label][0] for label in ("teacher", "baseline", "CSGR")}
    rows = [[res.name(label), *(_metric(run, m) for m in METRICS)] for label, run in runs.items()]
    given = res.data.get("aggregate", {}).get("CSGR", {}).get("delta", {})
    diff = [
        _nan(given[m]) if m in given else _nan(runs["CSGR"].get(m)) - _nan(runs["baseline"].get(m))
        for m in METRICS
    ]
    rows.append(["CSGR - baseline", *(_fmt(d, signed=True) for d in diff)])
    table = tabulate(rows, headers=["model", *METRICS], tablefmt="github", disable_numparse=True)
    times = [
        f"{res.name(label).split(' ')[0]} {secs[0] / 60:.1f} min"
        for label, secs in res.seconds().items()
        if secs
    ]
    if times:
        table += "\n\nWall time of each run, train + eval: " + ", ".join(times) + "."
    return table


def _nan(value) -> float:
    return float("nan") if value is None else value


def _metric(run: dict, metric: str) -> str:
    value = _nan(run.get(metric))
    return "n/a" if math.isnan(value) or value < 0 else _fmt(value)


def method_rows(files: List[tuple], method: str) -> str:
    """Every row of ``method`` (its published, calibrated and variant labels) across results
    files, with the baseline of the same file.

    Args:
        files: ``(name, AccuracyResults)`` of each accuracy results file.
    """
    headers = ["results file", "student", "seeds", "AP", "ΔAP vs baseline", "baseline AP"]
    rows = []
    for name, res in files:
        for label in res.labels:
            if label != method and not label.startswith(method + "-"):
                continue
            base = _mean_std(res.stat("baseline", "AP"))
            if res.seeds(label):
                ap, delta = _mean_std(res.stat(label, "AP")), _fmt(res.delta(label), True)
            else:
                ap, delta = "diverged on every seed", ""
            rows.append([f"`{name}`", res.name(label), _seeds_cell(res, label), ap, delta, base])
    if not rows:
        return f"No results of {method} yet."
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
