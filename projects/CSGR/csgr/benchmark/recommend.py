"""The recommendation that ends a side-by-side study: which method to use, by how much it beats
the baseline student, whether the seeds resolve that gain, which methods diverged and why, and
whether the teacher is worth distilling at all.

Pure functions of the aggregated results (:func:`.accuracy_report.aggregate`) and the failed
runs' errors, in plain lines for ``accuracy.md``, ``results.json`` and the console.
"""

import math
import re
from typing import Dict, List, Optional

from ..modeling.losses import method_names

__all__ = ["divergence_cause", "divergence_iteration", "teacher_note", "recommend"]

_GROWTH = re.compile(r"Largest growth: (\S+) from")
_DOMINANT = re.compile(r"At the start (\S+) was \S+ \(iteration \d+\), \S+x the detection")
_NON_FINITE = re.compile(r"Non-finite loss at iteration \d+[^:]*: ([A-Za-z0-9_/]+)=")
_ITERATION = re.compile(r"(?:diverged at|Non-finite loss at) iteration (\d+)")


def _is_distillation_term(term: str) -> bool:
    """``loss_<method>_...`` of a registered method (``loss_mse``, ``loss_fgd_fg``)."""
    parts = term.split("_")
    return len(parts) > 1 and parts[1].upper() in method_names()


def divergence_cause(error: str) -> str:
    """What made a run diverge, in a few words, from its error (the NaN guard's message, see
    :mod:`csgr.engine.nan_guard`, anywhere in the text): the distillation term that dominated
    the detection terms from the start and the term that grew most (a distillation term first),
    else the first non-finite term; "" when the text names none."""
    grown, dominant = _GROWTH.search(error), _DOMINANT.search(error)
    grown = grown.group(1) if grown else None
    causes = []
    if grown and _is_distillation_term(grown):
        causes.append(f"{grown} grew most")
    if dominant:
        causes.append(f"{dominant.group(1)} dominated the detection terms from the start")
    if grown and not _is_distillation_term(grown):
        causes.append(f"then {grown} grew most" if causes else f"{grown} grew most")
    if not causes:
        found = _NON_FINITE.search(error)
        causes += [f"{found.group(1)} became non-finite"] if found else []
    return ", ".join(causes)


def divergence_iteration(error: str) -> Optional[int]:
    """The iteration at which a run diverged, from its error; None if not named."""
    found = _ITERATION.search(error)
    return int(found.group(1)) if found else None


def _value(stat: dict) -> str:
    if math.isnan(stat["std"]):
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def teacher_note(agg: Dict[str, Dict[str, dict]], metric: str = "AP") -> Optional[str]:
    """A line when the teacher scores no better than the baseline student's mean, or when its
    score is unknown (given weights without an evaluation beside them); None when it scores
    better, or the baseline's score is unknown."""
    teacher = agg.get("teacher", {}).get(metric, {}).get("mean", math.nan)
    base = agg.get("baseline", {}).get(metric, {}).get("mean", math.nan)
    if math.isnan(base) or teacher > base:
        return None
    if "teacher" not in agg:
        return (
            f"- The teacher's {metric} is unknown (no evaluation on this test set beside its "
            "weights): "
            f"tools/check_teacher.py evaluates it; one no better than the baseline student "
            f"({base:.2f}) has little to teach."
        )
    if math.isnan(teacher):
        return None
    return (
        f"- The teacher ({metric} {teacher:.2f}) scores no better than the baseline student "
        f"({base:.2f}): the students have little to learn from it. Likely causes: it trained "
        "too short (more iterations: its SOLVER.MAX_ITER or --teacher-iters), it overfit a "
        "small training set (a smaller teacher, stronger augmentation, or ImageNet-initialised "
        "weights), or the wrong weights (tools/check_teacher.py evaluates them). Fix the "
        "teacher before choosing a method."
    )


def _failed_lines(
    labels: List[str],
    errors: Dict[str, str],
    agg: Dict[str, Dict[str, dict]],
    metric: str,
    failures: Dict[str, int],
) -> List[str]:
    """One line per label with failed runs: how many, each divergence's cause, and the score of
    the runs that finished."""
    lines = []
    runs = {k: v[metric]["n"] for k, v in agg.items()}
    for label in labels:
        texts = [e for run, e in errors.items() if run.rsplit(" seed ", 1)[0] == label]
        n_failed = failures.get(label, len(texts))
        total = runs.get(label, 0) + n_failed
        diverged = [t for t in texts if "diverged" in t]
        causes = "; ".join(dict.fromkeys(c for c in map(divergence_cause, diverged) if c))
        causes = causes or "the log names no loss term"
        its = [i for i in map(divergence_iteration, diverged) if i is not None]
        at = f" (at iteration{'s' if len(its) > 1 else ''} {', '.join(map(str, its))})"
        at = at if its else ""
        if runs.get(label):
            causes += f"; {metric} {_value(agg[label][metric])} on the seeds that finished"
        if diverged and len(diverged) == n_failed:
            lines.append(f"- {label} diverged on {n_failed} of {total} seed(s){at}: {causes}.")
        else:
            lines.append(
                f"- {label} failed on {n_failed} of {total} seed(s) (see the FAILED lines)"
                + (f"; {len(diverged)} diverged{at}: {causes}." if diverged else ".")
            )
    if any("grew most" in line or "dominated" in line for line in lines):
        lines.append(
            "  A distillation term that grows or dominates usually means its weight is too "
            "large for this data: --calibrated (MODEL.DISTILL.LOSS_SCALE.MODE calibrated), a "
            "lower weight (--variant), or gradient clipping."
        )
    return lines


def recommend(
    agg: Dict[str, Dict[str, dict]],
    metric: str = "AP",
    errors: Optional[Dict[str, str]] = None,
    failures: Optional[Dict[str, int]] = None,
    screened_out: Optional[List[str]] = None,
) -> List[str]:
    """The recommendation, as report lines.

    Args:
        agg: :func:`.accuracy_report.aggregate` of the finished runs (``teacher``,
            ``baseline`` and one label per method or variant).
        metric: the test set's metric (``AP``; ``AP50`` for PASCAL VOC).
        errors: ``{"<label> seed <k>": error}`` of the failed runs.
        failures: ``{label: number of failed runs}`` (default: counted from ``errors``).
        screened_out: lines on the methods a screen left out (appended).

    Returns:
        The method to use with its gain over the baseline and whether the baseline's seed spread
        resolves it (or that none beats the baseline), the next best, the methods that failed
        with their causes, a note on a teacher no better than the baseline student.
    """
    errors = errors or {}
    if failures is None:
        failures = {}
        for run in errors:
            label = run.rsplit(" seed ", 1)[0]
            failures[label] = failures.get(label, 0) + 1
    failed_labels = list(dict.fromkeys(r.rsplit(" seed ", 1)[0] for r in errors))
    failed_labels += [label for label in failures if label not in failed_labels]
    mean = lambda label: agg[label][metric]["mean"]  # noqa: E731
    students = [k for k in agg if k not in ("teacher", "baseline") and not math.isnan(mean(k))]
    clean = [k for k in students if not failures.get(k)]
    ranked = sorted(clean or students, key=mean, reverse=True)
    lines = []
    base = agg.get("baseline", {}).get(metric)
    if base is None or math.isnan(base["mean"]):
        lines.append("- No baseline student finished: no method can be judged by its gain.")
    elif not ranked:
        lines.append(
            "- No distilled student scored (none finished, or none detected anything on the test "
            "set): train the student alone (the baseline)."
        )
    else:
        lines += _verdict(agg, ranked, base, metric)
    lines += _failed_lines(failed_labels, errors, agg, metric, failures)
    note = teacher_note(agg, metric)
    lines += [note] if note else []
    return lines + list(screened_out or [])


def _verdict(agg, ranked: List[str], base: dict, metric: str) -> List[str]:
    """The method to use, its gain and whether the seeds resolve it, and the next best."""
    best = ranked[0]
    stat = agg[best][metric]
    gain = stat["mean"] - base["mean"]
    seeds = f"{stat['n']} seed{'s' if stat['n'] != 1 else ''}"
    if gain <= 0:
        lines = [
            f"- No method beats the baseline student ({metric} {_value(base)}): train the student "
            f"alone, or try other weights (--calibrated, --variant). Best: {best} "
            f"{_value(stat)} ({gain:+.2f})."
        ]
    else:
        lines = [
            f"- Use {best}: {metric} {_value(stat)} over {seeds}, {gain:+.2f} over the baseline "
            f"student ({_value(base)})."
        ]
        spread = base["max"] - base["min"]
        if base["n"] < 2:
            lines.append(
                "- Whether the seeds resolve the gain is unknown: one baseline seed has no spread; "
                "run two or more (--seeds 1 2 3)."
            )
        elif gain > spread:
            lines.append(
                f"- The gain is resolved by the seeds: {gain:+.2f} is larger than the baseline's "
                f"seed spread ({spread:.2f}, {metric} {base['min']:.2f}-{base['max']:.2f})."
            )
        else:
            lines.append(
                f"- The gain is NOT resolved by the seeds: {gain:+.2f} is within the baseline's "
                f"seed spread ({spread:.2f}, {metric} {base['min']:.2f}-{base['max']:.2f}); more "
                "seeds would tell."
            )
    if len(ranked) > 1:
        runners = [
            f"{k} {_value(agg[k][metric])} ({agg[k][metric]['mean'] - base['mean']:+.2f})"
            for k in ranked[1:3]
        ]
        lines.append("- Next: " + ", ".join(runners) + ".")
    return lines
