"""The goals a CSGR row must meet to be relied on, seed by seed, as report lines: above the
baseline of the same seed on every seed, and the best student or within one seed std of it."""

import math
import statistics
from typing import Dict, List, Optional, Sequence

__all__ = ["csgr_seed_goals"]


def _by_seed(runs: Sequence[dict], seeds: Sequence[Optional[int]], metric: str) -> Dict[int, float]:
    return {s: r[metric] for s, r in zip(seeds, runs) if not math.isnan(r.get(metric, math.nan))}


def csgr_seed_goals(
    results: Dict[str, List[dict]],
    seeds: Dict[str, List[Optional[int]]],
    metric: str = "AP",
    default: Optional[str] = None,
) -> List[str]:
    """Per CSGR row (``CSGR`` and every ``CSGR-<variant>``): above the baseline on every seed
    the baseline finished (a seed whose CSGR run failed counts as below), and best student or
    within one sample std (over seeds) of the best student's mean.

    Args:
        results: label -> the metrics of its finished runs, in run order.
        seeds: label -> the seed of each of those runs (same order).
        metric: the metric compared (the test set's: AP, or AP50 for PASCAL VOC).
        default: the label of the row that ran CSGR's default, where it is not "CSGR": its
            lines come first and name it "the default (<label>)".

    Returns:
        one line per goal and CSGR row, ending "(met)" or "(NOT met)"; [] without a baseline.
    """
    if "baseline" not in results:
        return []
    base = _by_seed(results["baseline"], seeds["baseline"], metric)
    runs = {
        label: _by_seed(results[label], seeds[label], metric)
        for label in results
        if label != "teacher"
    }
    means = {label: statistics.mean(v.values()) for label, v in runs.items() if v}
    if not base or not means:
        return []
    best = max(means, key=means.get)
    best_values = list(runs[best].values())
    best_std = statistics.stdev(best_values) if len(best_values) > 1 else 0.0
    lines = []
    labels = [k for k in results if k == "CSGR" or k.startswith("CSGR-")]
    if default in labels:
        labels.remove(default)
        labels.insert(0, default)
    for label in labels:
        name = f"the default ({label})" if label == default else label
        own = runs.get(label, {})
        above = [s for s in sorted(base) if s in own and own[s] > base[s]]
        verdict = "met" if len(above) == len(base) else "NOT met"
        deltas = ", ".join(
            f"seed {s} {own[s] - base[s]:+.2f}" if s in own else f"seed {s} failed"
            for s in sorted(base)
        )
        lines.append(
            f"- {name} {metric} above the baseline on every seed: {len(above)} of {len(base)} "
            f"({deltas}) ({verdict})"
        )
        if label not in means:
            continue
        near = label == best or means[label] >= means[best] - best_std
        lines.append(
            f"- {name} best or within one std of the best ({best} {means[best]:.2f} ± "
            f"{best_std:.2f}): {means[label]:.2f} ({'met' if near else 'NOT met'})"
        )
    return lines
