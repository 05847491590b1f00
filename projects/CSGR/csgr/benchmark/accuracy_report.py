"""Reports of the shapes experiments: ``make main``'s comparison table, and the accuracy
benchmark aggregated over seeds (markdown table, goals, bar chart, report files)."""

import json
import math
import os
import platform
import statistics
from typing import Dict, List, Optional, Sequence

from tabulate import tabulate

from ..modeling.loss_scale import SCALAR_PREFIX
from .accuracy_runs import METRICS
from .experiment import ExperimentResult
from .measure import load_average
from .seed_goals import csgr_seed_goals

__all__ = [
    "comparison_table",
    "aggregate",
    "accuracy_table",
    "accuracy_goals",
    "loss_scale_lines",
    "bar_chart",
    "write_accuracy_report",
]


def _fmt(value: float, signed: bool = False) -> str:
    """A metric for a table; COCO reports -1/NaN where a size range has no objects."""
    if value != value or value < 0 and not signed:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def comparison_table(results: Dict[str, Dict[str, float]], method: str) -> str:
    """Markdown table of one seed's runs (one row per label, in order) and the difference of
    ``method`` to the baseline."""
    rows = [[label, *(_fmt(results[label][m]) for m in METRICS)] for label in results]
    diff = [results[method][m] - results["baseline"][m] for m in METRICS]
    rows.append([f"{method} - baseline", *(_fmt(d, signed=True) for d in diff)])
    return tabulate(rows, headers=["model", *METRICS], tablefmt="github", disable_numparse=True)


_COLORS = {"baseline": "tab:gray", "CSGR": "tab:red"}


def _valid(values: List[float]) -> List[float]:
    # COCO reports -1 (or NaN) for a size range without objects
    return [v for v in values if v == v and v >= 0]


def aggregate(results: Dict[str, List[Dict[str, float]]]) -> Dict[str, Dict[str, dict]]:
    """Mean, sample standard deviation, min and max over seeds, per label and metric.

    Args:
        results: per label, the metrics of each seed.

    Returns:
        ``{label: {metric: {"mean", "std", "min", "max", "n"}}}``; NaN where no seed has a
        valid value; std is NaN for a single seed.
    """
    out = {}
    for label, runs in results.items():
        out[label] = {}
        for m in METRICS:
            values = _valid([r[m] for r in runs])
            nan = float("nan")
            out[label][m] = {
                "mean": statistics.fmean(values) if values else nan,
                "std": statistics.stdev(values) if len(values) > 1 else nan,
                "min": min(values) if values else nan,
                "max": max(values) if values else nan,
                "n": len(values),
            }
    return out


def _cell(stat: dict) -> str:
    if math.isnan(stat["mean"]):
        return "n/a"
    if math.isnan(stat["std"]):
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def accuracy_table(
    agg: Dict[str, Dict[str, dict]],
    seeds: Dict[str, int],
    failed: Optional[Dict[str, int]] = None,
) -> str:
    """Markdown table: one row per label, ``mean ± std`` per metric, the AP range over seeds
    and the AP difference to the baseline.

    Args:
        agg: from :func:`aggregate`.
        seeds: label -> number of its finished runs.
        failed: label -> number of its runs that failed; shown in the seeds cell ("2 (1
            failed)"), and a label whose every run failed still gets a row.
    """
    failed = failed or {}
    base = agg.get("baseline", {}).get("AP", {}).get("mean", float("nan"))
    headers = ["model", "seeds", *METRICS, "AP min-max", "ΔAP vs baseline"]

    def seeds_cell(label: str) -> str:
        n = failed.get(label, 0)
        return f"{seeds.get(label, 0)}" + (f" ({n} failed)" if n else "")

    rows = []
    for label, stats in agg.items():
        ap = stats["AP"]
        spread = "n/a" if math.isnan(ap["mean"]) else f"{ap['min']:.2f}-{ap['max']:.2f}"
        delta = ap["mean"] - base
        delta_cell = (
            "" if label in ("baseline", "teacher") or math.isnan(delta) else f"{delta:+.2f}"
        )
        rows.append([label, seeds_cell(label), *(_cell(stats[m]) for m in METRICS)])
        rows[-1] += [spread, delta_cell]
    for label in failed:
        if label not in agg:
            rows.append([label, seeds_cell(label), *(["n/a"] * len(METRICS)), "n/a", ""])
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def accuracy_goals(
    agg: Dict[str, Dict[str, dict]], failed: Optional[Dict[str, int]] = None
) -> List[str]:
    """The goals as report lines, met or not: CSGR >= baseline + 2 AP and CSGR >= FGD at
    published weights; with calibrated rows (``<METHOD>-calibrated``), CSGR >= FGD among them
    and no calibrated method below the baseline.

    Args:
        agg: :func:`aggregate` of the finished runs.
        failed: label -> number of its runs that failed (diverged, crashed). A comparison with
            a method none of whose runs finished is decided by which of the two trained at all;
            a calibrated method without a finished run counts as below the baseline.
    """
    mean = {label: stats["AP"]["mean"] for label, stats in agg.items()}
    failed = failed or {}

    def failures(label: str) -> str:
        n = failed.get(label, 0)
        return f"; {label}: {n} failed run(s)" if n and label in mean else ""

    lines = []
    if "CSGR" in mean and "baseline" in mean:
        target = mean["baseline"] + 2
        verdict = "met" if mean["CSGR"] >= target else "NOT met"
        lines.append(
            f"- CSGR AP >= baseline + 2: {mean['CSGR']:.2f} vs {target:.2f} ({verdict})"
            + failures("CSGR")
        )
    for csgr, fgd in (("CSGR", "FGD"), ("CSGR-calibrated", "FGD-calibrated")):
        if csgr in mean and fgd in mean:
            verdict = "met" if mean[csgr] >= mean[fgd] else "NOT met"
            lines.append(
                f"- {csgr} AP >= {fgd} AP: {mean[csgr]:.2f} vs {mean[fgd]:.2f} ({verdict})"
                + failures(csgr)
                + failures(fgd)
            )
        elif csgr in mean and failed.get(fgd):
            lines.append(
                f"- {csgr} AP >= {fgd} AP: {mean[csgr]:.2f} vs none: every {fgd} run failed "
                f"({failed[fgd]}) (met)" + failures(csgr)
            )
        elif fgd in mean and failed.get(csgr):
            lines.append(
                f"- {csgr} AP >= {fgd} AP: none vs {mean[fgd]:.2f}: every {csgr} run failed "
                f"({failed[csgr]}) (NOT met)"
            )
    calibrated = [label for label in {**mean, **failed} if label.endswith("-calibrated")]
    if calibrated and "baseline" in mean:
        below = [
            label
            for label in calibrated
            if failed.get(label) or not mean.get(label, float("nan")) >= mean["baseline"]
        ]
        verdict = "met" if not below else "NOT met: " + ", ".join(below)
        lines.append(
            f"- no calibrated method below the baseline ({mean['baseline']:.2f}) or failing: "
            f"{len(calibrated) - len(below)} of {len(calibrated)} at or above ({verdict})"
        )
    return lines


def loss_scale_lines(results: Dict[str, List[Dict[str, float]]]) -> List[str]:
    """Report lines of the loss-scale factors of calibrated runs, per label and seed.

    Args:
        results: per label, each seed's metrics; a calibrated run's hold its factors as
            ``"loss_scale/<method>"`` (see :func:`.run_metrics.final_metrics`).
    """
    lines = []
    for label, runs in results.items():
        for key in sorted({k for r in runs for k in r if k.startswith(SCALAR_PREFIX)}):
            values = ", ".join(f"{r[key]:.3g}" if key in r else "n/a" for r in runs)
            lines.append(f"- {label}: {key} per seed {values}")
    return lines


def bar_chart(agg: Dict[str, Dict[str, dict]], path: str, title: str, metric: str = "AP"):
    """Bar chart of ``metric`` (mean, std error bars) per student; the teacher as a dashed line.

    Writes a PNG with matplotlib's Agg backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [k for k in agg if k != "teacher"]
    means = [agg[k][metric]["mean"] for k in labels]
    errors = [0.0 if math.isnan(agg[k][metric]["std"]) else agg[k][metric]["std"] for k in labels]
    colors = [_COLORS.get(k.split("-")[0], "tab:blue") for k in labels]  # CSGR-<variant> red too
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.8 * len(labels)), 3.8))
    ax.bar(
        labels, [0.0 if math.isnan(m) else m for m in means], yerr=errors, color=colors, capsize=3
    )
    teacher: Optional[float] = agg.get("teacher", {}).get(metric, {}).get("mean")
    if teacher is not None and not math.isnan(teacher):
        ax.axhline(teacher, color="black", linestyle="--", linewidth=1, label="teacher")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel(f"box {metric} (mean ± std over seeds)")
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_accuracy_report(
    out_dir: str,
    title: str,
    schedule: str,
    seeds: List[int],
    command: str,
    experiment: ExperimentResult,
    skipped: Dict[str, str],
    load_before: str,
    provenance: Optional[dict] = None,
    metric: str = "AP",
    recommendation: Sequence[str] = (),
    extra: Optional[dict] = None,
) -> str:
    """Write ``accuracy.md``, ``accuracy.png`` and ``results.json`` of a benchmark to ``out_dir``
    (created if needed).

    ``results.json`` holds ``provenance`` (what produced it, plus the seeds), ``results`` (each
    run's metrics per label), ``aggregate`` (:func:`aggregate`), ``seeds`` (of each label's
    finished runs), ``seconds``, ``skipped``, ``failed`` and ``recommendation`` (its lines):
    the schema that ``tools/render_docs.py`` renders once the file is copied to
    ``docs/results/<name>.json``.

    Args:
        title: what was compared (dataset, detector, students, teacher).
        schedule: the schedule, in words.
        seeds: the students' seeds.
        command: the command that reproduces the report.
        skipped: methods not run, and why.
        load_before: the machine's load when the runs started.
        provenance: command, commit, machine, date, ... (:func:`.provenance.provenance`).
        metric: the metric of the chart (the test set's: AP, or AP50 for PASCAL VOC).
        recommendation: lines that end the report (:func:`.recommend.recommend`).
        extra: more keys of ``results.json`` (e.g. ``metric``, ``screen``).

    Returns:
        the markdown report.
    """
    results, seconds = experiment.results, experiment.seconds
    os.makedirs(out_dir, exist_ok=True)
    agg = aggregate(results)
    chart = os.path.join(out_dir, "accuracy.png")
    chart_title = title.replace(", ", "\n", 1)  # "<students>\n<teacher>": short lines
    bar_chart(agg, chart, f"{chart_title}\n{schedule}; student seeds {seeds}", metric)
    counts = {label: len(runs) for label, runs in results.items()}
    lines = ["```", command, "```", "", f"{title}; {schedule}; student seeds {seeds}", ""]
    teacher_seed = (provenance or {}).get("teacher_seed")
    finished = {label: _finished_seeds(label, seeds, experiment, teacher_seed) for label in results}
    goals = accuracy_goals(agg, experiment.failures) + csgr_seed_goals(results, finished, metric)
    table = accuracy_table(agg, counts, experiment.failures)
    lines += [table, "", *goals, *loss_scale_lines(results)]
    lines += [f"- {m}: skipped ({why})" for m, why in skipped.items()]
    lines += [f"- {run}: FAILED ({why})" for run, why in experiment.failed.items()]
    lines += [
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"before: {load_before}; after: {load_average()}",
        "- wall time of one run, train + eval (min, mean over seeds; a reused run's as recorded): "
        + ", ".join(f"{k} {sum(v) / len(v) / 60:.1f}" for k, v in seconds.items()),
        f"- chart: {chart}",
    ]
    if recommendation:
        lines += ["", "Recommendation:", "", *recommendation]
    report = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "accuracy.md"), "w") as f:
        f.write(report)
    data = {
        "provenance": {**(provenance or {}), "seeds": list(seeds)},
        "results": results,
        "aggregate": agg,
        "seeds": finished,
        "seconds": seconds,
        "skipped": skipped,
        "failed": experiment.failed,
        "recommendation": list(recommendation),
        **(extra or {}),
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
    return report


def _finished_seeds(
    label: str, seeds: List[int], experiment: ExperimentResult, teacher_seed: Optional[int]
) -> List[Optional[int]]:
    """The seeds of ``label``'s finished runs, in run order (the teacher's: its one run)."""
    if label == "teacher":
        return [teacher_seed] * len(experiment.results[label])
    return [s for s in seeds if f"{label} seed {s}" not in experiment.failed]
