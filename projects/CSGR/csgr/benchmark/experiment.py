"""One study's runs: the teacher (or a given teacher's evaluation), then every student, and what
they gave (:class:`ExperimentResult`). The runs themselves start in :mod:`.runner`.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..utils.progress import ProgressBoard
from .accuracy_runs import Run
from .evaluate_run import evaluate_given_teacher
from .run_metrics import given_teacher_metrics
from .runner import run_many, run_or_reuse

__all__ = ["ExperimentResult", "run_experiment"]


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns; every dict is keyed by run label (teacher, baseline,
    a method) and lists one entry per seed, in run order.

    Attributes:
        results: the metrics of each finished run.
        seconds: the wall seconds of each run's training (a reused run's as recorded).
        reused: whether each run was reused.
        failed: ``{"<label> seed <k>": the error}`` of the student runs that failed.
        failures: ``{label: number of its runs that failed}``.
        errors: ``{"<label> seed <k>": the whole error}`` of the failed runs (with the end of
            the log, where a divergence names its terms).
    """

    results: Dict[str, List[Dict[str, float]]] = field(default_factory=dict)
    seconds: Dict[str, List[float]] = field(default_factory=dict)
    reused: Dict[str, List[bool]] = field(default_factory=dict)
    failed: Dict[str, str] = field(default_factory=dict)
    failures: Dict[str, int] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)

    def add(self, label: str, metrics: Dict[str, float], seconds: float, reused: bool) -> None:
        self.results.setdefault(label, []).append(metrics)
        self.seconds.setdefault(label, []).append(seconds)
        self.reused.setdefault(label, []).append(reused)


def run_experiment(
    teacher: Optional[Run],
    students: List[Run],
    reuse_teacher: bool,
    reuse_students: bool,
    jobs: int = 1,
    teacher_weights: str = "",
    log=print,
    progress: Optional[ProgressBoard] = None,
    dataset: Optional[str] = None,
    evaluate_on: Optional[str] = None,
) -> ExperimentResult:
    """Run (or reuse) the teacher, then the students ``jobs`` at a time.

    Args:
        teacher / students: from :func:`plan_runs`.
        reuse_teacher / reuse_students: reuse finished runs of the same merged config.
        teacher_weights: with no teacher run, the given teacher's weights; its own evaluation
            is reported when a metrics.json lies next to them.
        progress: live progress of every run (see :func:`plan_progress`); ``log`` should then
            be its :meth:`~csgr.utils.progress.ProgressBoard.write`.
        dataset: with several ``DATASETS.TEST``, the one reported (default: the first).
        evaluate_on: report every run (a given teacher too, when its folder holds the
            config.yaml it was trained with) on this test set, evaluated after training.

    Raises:
        RuntimeError: the teacher's training failed (a failed student is recorded in
            ``failed`` and the others go on).
    """
    out = ExperimentResult()
    if teacher is not None:
        outcome = run_or_reuse(
            teacher, reuse_teacher, log, progress=progress, dataset=dataset, evaluate_on=evaluate_on
        )
        out.add("teacher", *outcome)
    elif teacher_weights:
        if evaluate_on:
            like = students[0] if students else None
            metrics = evaluate_given_teacher(teacher_weights, evaluate_on, log, like)
        else:
            metrics = given_teacher_metrics(teacher_weights, dataset)
        if metrics is not None:
            out.results["teacher"] = [metrics]
    outcomes = run_many(
        students, reuse_students, jobs, log, progress, dataset=dataset, evaluate_on=evaluate_on
    )
    for run, outcome in zip(students, outcomes):
        if isinstance(outcome, RuntimeError):  # report it; the other runs went on
            lines = [line for line in str(outcome).splitlines() if line.strip()]
            out.failed[run.name] = f"{lines[0]} ... {lines[-1][:300]}"
            out.errors[run.name] = str(outcome)
            out.failures[run.label] = out.failures.get(run.label, 0) + 1
            log(str(outcome))
            continue
        out.add(run.label, *outcome)
    return out
