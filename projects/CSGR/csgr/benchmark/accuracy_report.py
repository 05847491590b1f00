"""Aggregating the accuracy benchmark over seeds: markdown table, goals and bar chart."""

import math
import statistics
from typing import Dict, List, Optional

from tabulate import tabulate

from .accuracy_runs import METRICS

__all__ = ["aggregate", "accuracy_table", "accuracy_goals", "bar_chart"]

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


def accuracy_table(agg: Dict[str, Dict[str, dict]], seeds: Dict[str, int]) -> str:
    """Markdown table: one row per label, ``mean ± std`` per metric, the AP range over seeds
    and the AP difference to the baseline."""
    base = agg.get("baseline", {}).get("AP", {}).get("mean", float("nan"))
    headers = ["model", "seeds", *METRICS, "AP min-max", "ΔAP vs baseline"]
    rows = []
    for label, stats in agg.items():
        ap = stats["AP"]
        spread = "n/a" if math.isnan(ap["mean"]) else f"{ap['min']:.2f}-{ap['max']:.2f}"
        delta = ap["mean"] - base
        delta_cell = (
            "" if label in ("baseline", "teacher") or math.isnan(delta) else f"{delta:+.2f}"
        )
        rows.append([label, seeds.get(label, 0), *(_cell(stats[m]) for m in METRICS)])
        rows[-1] += [spread, delta_cell]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def accuracy_goals(agg: Dict[str, Dict[str, dict]]) -> List[str]:
    """The goals (CSGR >= baseline + 2 AP, CSGR >= FGD) as report lines, met or not."""
    mean = {label: stats["AP"]["mean"] for label, stats in agg.items()}
    lines = []
    if "CSGR" in mean and "baseline" in mean:
        target = mean["baseline"] + 2
        verdict = "met" if mean["CSGR"] >= target else "NOT met"
        lines.append(f"- CSGR AP >= baseline + 2: {mean['CSGR']:.2f} vs {target:.2f} ({verdict})")
    if "CSGR" in mean and "FGD" in mean:
        verdict = "met" if mean["CSGR"] >= mean["FGD"] else "NOT met"
        lines.append(f"- CSGR AP >= FGD AP: {mean['CSGR']:.2f} vs {mean['FGD']:.2f} ({verdict})")
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
    colors = [_COLORS.get(k, "tab:blue") for k in labels]
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
