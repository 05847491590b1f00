"""Screening methods on a short schedule before the full study (a two-rung successive halving).

Stage 1 trains the baseline and every method once (the first seed) on a fraction of the
students' schedule; the ``keep`` methods of highest metric go on to stage 2, the full study (every
seed, the full schedule). A method whose screen run failed (diverged) is screened out.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

from .recommend import divergence_cause

__all__ = ["screen_schedule", "select_screened", "screen_lines"]


def screen_schedule(max_iter: int, steps: Sequence[int], fraction: float) -> List[str]:
    """Opts of the screen's schedule: ``fraction`` of ``max_iter`` (at least 1) with the LR steps
    scaled alike (steps that fall outside (0, iterations) or coincide are dropped).

    Raises:
        ValueError: ``fraction`` is not in (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"--screen takes a fraction of the schedule in (0, 1], got {fraction}")
    iters = max(1, round(max_iter * fraction))
    scaled = sorted({round(s * fraction) for s in steps} - {0})
    scaled = [s for s in scaled if s < iters]
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", repr(tuple(scaled))]


def select_screened(
    scores: Dict[str, Optional[float]], keep: int, errors: Optional[Dict[str, str]] = None
) -> Tuple[List[str], Dict[str, str]]:
    """The methods that go on to the full study, and why the others do not.

    Args:
        scores: per method (in table order), its metric in the screen (NaN: it detected
            nothing), or None when its run failed; the baseline is not a candidate.
        keep: how many go on (the highest scores, NaN last; ties keep table order).
        errors: per method, the error of its failed screen run (to name the divergence).

    Returns:
        (the kept methods, best first; ``{screened-out method: its score or what failed}``, best
        first, failed last).
    """
    if keep < 1:
        raise ValueError(f"--keep must be >= 1, got {keep}")
    errors = errors or {}
    finished = [k for k, v in scores.items() if k != "baseline" and v is not None]
    ranked = sorted(finished, key=lambda k: -scores[k] if scores[k] == scores[k] else math.inf)
    kept, dropped = ranked[:keep], {}
    for label in ranked[keep:]:
        value = scores[label]
        dropped[label] = f"{value:.2f}" if value == value else "no detection"
    for label, value in scores.items():
        if label != "baseline" and value is None:
            error = errors.get(label, "")
            cause = divergence_cause(error)
            what = "diverged" if "diverged" in error else "failed"
            dropped[label] = f"{what} ({cause})" if cause else what
    return kept, dropped


def screen_lines(screen: dict, metric: str) -> List[str]:
    """Report lines of a screen (see :func:`.study.run_study` for the dict's keys)."""
    scores, baseline = screen["scores"], screen["scores"].get("baseline")

    def score(label: str) -> str:
        value = scores.get(label)
        if value is None:
            return "failed"
        return "no detection" if math.isnan(value) else f"{value:.2f}"

    minutes = sum(sum(v) for v in screen["seconds"].values()) / 60
    head = (
        f"- Screen ({screen['fraction']:g} of the schedule, {screen['iters']} iterations, seed "
        f"{screen['seed']}; baseline {metric} {score('baseline') if baseline is not None else 'n/a'}"
        f"; {minutes:.1f} min of training): kept "
    )
    kept = ", ".join(f"{k} {score(k)}" for k in screen["kept"]) or "none"
    out = ", ".join(f"{k} {why}" for k, why in screen["dropped"].items())
    return [head + kept + (f"; screened out {out}." if out else ".")]
