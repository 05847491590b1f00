"""Reading results files (``docs/results/<name>.json``) for the rendered documentation.

An accuracy results file is the ``results.json`` that ``tools/benchmark_accuracy.py`` writes
(:func:`csgr.benchmark.accuracy_report.write_accuracy_report`):

* ``results``: ``{label: [metrics of each finished run]}`` (``AP``, ``AP50``, ... and, for a
  calibrated run, ``loss_scale/<method>``); a run's metrics may hold ``AP`` only;
* ``aggregate`` (optional): ``{label: {metric: {"mean", "std", "min", "max", "n"}}}``; when
  absent it is computed from ``results``. An optional ``delta_AP`` per label is the difference to
  the baseline as reported (otherwise it is computed from the means);
* ``seeds`` (optional): ``{label: [seed of each finished run]}``;
* ``failed``: ``{"<label> seed <k>": why}`` of the runs that failed (diverged or crashed);
* ``provenance``: command, commit, machine, date, seeds, split (and ``transcribed_from`` for a
  file transcribed from an earlier document);
* ``display`` (optional): ``{"labels": {label: row name}, "name": column name, "default": the
  label of the row that ran CSGR's default, where the file's "CSGR" row is another setting}``.

Other results files hold ``tables`` (generic tables, see :mod:`.tables`) or the speed
benchmark's ``meta``/``settings``/``results`` (``tools/benchmark_distill.py --json``).
"""

import json
import math
import os
import re
from typing import Dict, List, Optional

from ..benchmark.accuracy_runs import METRICS

__all__ = ["RESULTS_DIR", "load_results", "AccuracyResults"]

RESULTS_DIR = os.path.join("docs", "results")
NAN = float("nan")


def _nan(value):
    return NAN if value is None else value


def load_results(root: str, name: str) -> dict:
    """``<root>/docs/results/<name>.json``.

    Raises:
        FileNotFoundError: naming the file.
    """
    path = os.path.join(root, RESULTS_DIR, name + ".json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no results file {path} (a rendered block names '{name}')")
    with open(path) as f:
        return json.load(f)


def _stats(values: List[float]) -> dict:
    valid = [v for v in values if v is not None and v == v and v >= 0]
    n = len(valid)
    mean = sum(valid) / n if n else NAN
    std = math.sqrt(sum((v - mean) ** 2 for v in valid) / (n - 1)) if n > 1 else NAN
    return {
        "mean": mean,
        "std": std,
        "min": min(valid) if valid else NAN,
        "max": max(valid) if valid else NAN,
        "n": n,
    }


class AccuracyResults:
    """One accuracy results file, read for rendering."""

    def __init__(self, data: dict):
        self.data = data
        self.results: Dict[str, List[dict]] = data.get("results", {})
        self.failed: Dict[str, str] = data.get("failed", {})
        self.display = data.get("display", {})

    @property
    def labels(self) -> List[str]:
        """Every label, in file order: finished labels, then labels whose every run failed."""
        labels = list(self.results)
        for run in self.failed:
            label = run.rsplit(" seed ", 1)[0]
            if label not in labels:
                labels.append(label)
        return labels

    def name(self, label: str) -> str:
        """The row name of ``label``."""
        return self.display.get("labels", {}).get(label, label)

    def stat(self, label: str, metric: str) -> dict:
        """``{"mean", "std", "min", "max", "n"}`` of ``metric`` over ``label``'s finished runs."""
        agg = self.data.get("aggregate", {}).get(label, {})
        if metric in agg:
            return {k: _nan(v) for k, v in agg[metric].items()}
        runs = self.results.get(label, [])
        stats = _stats([_nan(r.get(metric)) for r in runs])
        stats["recorded"] = any(metric in r for r in runs)
        return stats

    def mean(self, label: str, metric: str = "AP") -> float:
        return self.stat(label, metric)["mean"]

    def delta(self, label: str) -> float:
        """AP difference to the baseline: as reported, or of the means; a label trained on fewer
        seeds than the baseline is compared with the baseline's runs of the same seeds."""
        given = self.data.get("aggregate", {}).get(label, {}).get("delta_AP")
        if given is not None:
            return given
        seeds, base = self.seeds(label), self.per_seed("baseline") or {}
        if set(seeds) < set(base):
            return self.mean(label) - sum(base[s] for s in seeds) / len(seeds)
        return self.mean(label) - self.mean("baseline")

    def has_metric(self, metric: str) -> bool:
        """Whether any label has a valid value of ``metric``."""
        return any(self.stat(label, metric)["n"] > 0 for label in self.results)

    def seeds(self, label: str) -> List[int]:
        """The seeds of ``label``'s finished runs."""
        given = self.data.get("seeds", {}).get(label)
        if given is not None:
            return list(given)
        if label == "teacher":
            return [self.data.get("provenance", {}).get("teacher_seed", 1)]
        seeds = self.data.get("provenance", {}).get("seeds", [])
        done = [s for s in seeds if f"{label} seed {s}" not in self.failed]
        return done[: len(self.results.get(label, []))]

    def failures(self, label: str) -> Dict[object, str]:
        """``{seed: why}`` of ``label``'s failed runs (a seed is an int, or a string where the
        seed of a transcribed run is not known)."""
        out = {}
        for run, why in self.failed.items():
            name, _, seed = run.rpartition(" seed ")
            if name == label:
                out[int(seed) if seed.isdigit() else seed] = why
        return out

    def per_seed(self, label: str, metric: str = "AP") -> Optional[Dict[object, float]]:
        """``{seed: value}`` of the finished runs, or None when a run lacks ``metric``."""
        runs = self.results.get(label, [])
        if not runs or any(metric not in r for r in runs):
            return None
        return dict(zip(self.seeds(label), (_nan(r[metric]) for r in runs)))

    def factors(self, label: str) -> List[float]:
        """The loss-scale factors of ``label``'s runs (one method's), in run order."""
        values = []
        for run in self.results.get(label, []):
            keys = sorted(k for k in run if k.startswith("loss_scale/"))
            values += [run[k] for k in keys[:1]]
        return values

    def skipped(self) -> Dict[str, str]:
        """``{method: why}`` of the methods not run."""
        return self.data.get("skipped", {})

    def seconds(self) -> Dict[str, List[float]]:
        """Wall seconds of each run, train + eval, per label (where recorded)."""
        return self.data.get("seconds", {})


def divergence(why: str) -> str:
    """A failed run in a few words: "diverged at it 31", "diverged" or "failed"."""
    if "diverged" not in why:
        return "failed"
    match = re.search(r"\bat (?:iteration|it) (\d+)", why) or re.search(
        r"\b(?:iteration|it) (\d+)", why
    )
    return f"diverged at it {match.group(1)}" if match else "diverged"


__all__ += ["divergence", "METRICS"]
