"""How a screen compares with a full study of the same methods: which methods it keeps against
the full study's best, and the training it costs.

Input: the screen's ``results.json`` (``tools/benchmark_accuracy.py --screen ... --screen-only``
writes it to ``<study>/screen``) and the full study's results file (e.g.
``docs/results/coral_frcnn.json``). Output: a results file of generic tables
(``docs_render.tables``) for ``docs/results/``.
"""

import math
from typing import List

from ..docs_render.results import AccuracyResults
from .recommend import divergence_iteration

__all__ = ["screen_versus_full"]


def _full_ranking(full: AccuracyResults, labels: List[str], metric: str) -> List[str]:
    """``labels`` by their mean in the full study, best first; labels without a finished run
    (every seed diverged) last."""
    mean = {k: full.mean(k, metric) for k in labels}
    finite = sorted((k for k in labels if not math.isnan(mean[k])), key=lambda k: -mean[k])
    return finite + [k for k in labels if math.isnan(mean[k])]


def _iterations(full: AccuracyResults, label: str, max_iter: int) -> int:
    """Student iterations a study trained for ``label``: ``max_iter`` per finished run, the
    divergence iteration (else ``max_iter``) per failed one."""
    failed = [divergence_iteration(why) or max_iter for why in full.failures(label).values()]
    return max_iter * len(full.results.get(label, [])) + sum(failed)


def screen_versus_full(screen_data: dict, full_data: dict, max_iter: int, command: str) -> dict:
    """A results file comparing a screen with the full study.

    Args:
        screen_data: the screen's results.json (its ``screen`` block: scores, kept, dropped,
            seconds, iters, fraction, seed, keep, metric).
        full_data: the full study's results file.
        max_iter: the students' full schedule (iterations).
        command: what produced the comparison (recorded in the provenance).

    Returns:
        ``{"provenance", "tables"}``: per method the screen's score and rank, the full study's
        mean and rank and whether the screen kept it; then the training each plan costs.
    """
    screen, full = screen_data["screen"], AccuracyResults(full_data)
    metric, keep = screen["metric"], screen["keep"]
    methods = [k for k in screen["scores"] if k != "baseline"]
    ranking = _full_ranking(full, methods, metric)
    screened = screen["kept"] + list(screen["dropped"])
    rows = []
    for label in ranking:
        stat = full.stat(label, metric)
        failures = len(full.failures(label))
        cell = f"{stat['mean']:.2f}" if stat["n"] else f"diverged ({failures} of {failures})"
        cell += f" ± {stat['std']:.2f}" if stat["n"] > 1 else ""
        cell += (
            f" ({failures} of {stat['n'] + failures} diverged)" if failures and stat["n"] else ""
        )
        score = screen["scores"][label]
        shown = screen["dropped"].get(label) or (f"{score:.2f}" if score is not None else "failed")
        rows.append(
            [label, shown, screened.index(label) + 1, cell, ranking.index(label) + 1]
            + ["kept" if label in screen["kept"] else "out"]
        )
    top = ranking[:keep]
    hits = [k for k in screen["kept"] if k in top]
    labels, short = ["baseline", *methods], AccuracyResults(screen_data)
    full_iters = sum(_iterations(full, k, max_iter) for k in labels)
    screen_iters = sum(_iterations(short, k, screen["iters"]) for k in labels)
    stage2 = sum(_iterations(full, k, max_iter) for k in ["baseline", *screen["kept"]])
    minutes = sum(sum(v) for v in screen["seconds"].values()) / 60
    cost = [
        ["full study (every method, every seed)", full_iters, ""],
        ["screen", screen_iters, f"{minutes:.1f} min measured"],
        [f"screen + the {len(screen['kept'])} kept on every seed", screen_iters + stage2, ""],
    ]
    return {
        "provenance": {**screen_data.get("provenance", {}), "command": command},
        "tables": [
            {
                "title": f"{metric}: screen ({screen['fraction']:g} of the schedule, seed "
                f"{screen['seed']}) against the full study; the screen kept {len(hits)} of the "
                f"full study's top {keep} ({', '.join(top)})",
                "columns": ["method", "screen", "screen rank", "full study", "full rank", ""],
                "rows": rows,
            },
            {
                "title": "training each plan costs (student iterations; the teacher trains once "
                "in each)",
                "columns": ["plan", "student iterations", "wall time"],
                "rows": cost,
            },
        ],
    }
