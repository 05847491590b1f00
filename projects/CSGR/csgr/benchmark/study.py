"""Running a side-by-side study of any :class:`~.study_specs.StudySpec` (a built-in suite or a
user's own configs): optionally a screen on a short schedule first (:mod:`.screening`), then the
teacher, the baseline and the methods over every seed, and the report with its recommendation.

The one path from a planned study to its report, for ``tools/benchmark_accuracy.py``.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..config import load_config
from ..evaluation import evaluator_type
from .accuracy_report import aggregate, write_accuracy_report
from .accuracy_runs import Run, Variant, plan_study
from .recommend import recommend
from .experiment import ExperimentResult, run_experiment
from .runner import plan_progress, report_dataset
from .screening import screen_lines, screen_schedule, select_screened

__all__ = ["StudyPlan", "StudyOutcome", "study_metric", "run_study", "report_study"]


@dataclass
class StudyPlan:
    """What to train: the methods (at published weights) and variants, seeds, schedules."""

    methods: List[str]
    seeds: List[int]
    out: str
    root: str
    iters: Optional[int] = None
    teacher_iters: Optional[int] = None
    teacher_seed: int = 1
    teacher_weights: str = ""
    extra_opts: Tuple[str, ...] = ()
    variants: Tuple[Variant, ...] = ()
    num_gpus: int = 1
    screen: Optional[float] = None  # fraction of the students' schedule
    keep: int = 3
    screen_only: bool = False  # stop after the screen
    report_on: Optional[str] = None  # with several DATASETS.TEST, the one reported
    evaluate_on: Optional[str] = None  # a test set every finished run is evaluated on instead

    def plan(self, spec, seeds=None, out=None, extra=(), teacher_weights=None):
        """:func:`plan_study` of this plan (optionally other seeds, folder, more opts)."""
        return plan_study(
            spec,
            self.methods,
            self.seeds if seeds is None else seeds,
            self.out if out is None else out,
            self.root,
            iters=self.iters,
            teacher_iters=self.teacher_iters,
            teacher_seed=self.teacher_seed,
            teacher_weights=self.teacher_weights if teacher_weights is None else teacher_weights,
            extra_opts=tuple(self.extra_opts) + tuple(extra),
            variants=self.variants,
            num_gpus=self.num_gpus,
        )


def study_metric(
    baseline: Run, report_on: Optional[str] = None, evaluate_on: Optional[str] = None
) -> Tuple[str, str]:
    """(the metric that ranks the methods, the test set reported): AP50 when that test set
    (``evaluate_on``, else ``report_on``, default the first) is evaluated as PASCAL VOC, else
    AP. The datasets' modules must be imported.

    Raises:
        ValueError: ``report_on`` is not one of the baseline's ``DATASETS.TEST``.
    """
    test = list(load_config(baseline.config_file, baseline.opts).DATASETS.TEST)
    if evaluate_on:
        name = evaluate_on
        split = f"{name} (evaluated after training; DATASETS.TEST {', '.join(test)})"
    else:
        name = report_dataset(baseline, report_on) or (test[0] if test else "")
        split = name if len(test) < 2 else f"{name} (of DATASETS.TEST {', '.join(test)})"
    kind = evaluator_type(name, guess=True) if name else "coco"
    return ("AP50" if kind == "pascal_voc" else "AP"), split


@dataclass
class StudyOutcome:
    """What :func:`run_study` trained: the study's runs (``result``; None after a screen only),
    the skipped labels and why, the ranking metric and test sets, and with a screen its summary
    (fraction, iters, seed, metric, keep, scores, kept, dropped, seconds) and its runs
    (``stage1``)."""

    result: Optional[ExperimentResult]
    skipped: Dict[str, str]
    metric: str
    split: str
    screen: Optional[dict] = None
    stage1: Optional[ExperimentResult] = None


def _run(teacher, students, reuse, jobs, weights, dataset=None, evaluate_on=None):
    board = plan_progress(teacher, students, jobs)
    return run_experiment(
        teacher,
        students,
        reuse,
        reuse,
        jobs,
        weights,
        log=board.write,
        progress=board,
        dataset=dataset,
        evaluate_on=evaluate_on,
    )


def _with_teacher(stage1: ExperimentResult, stage2: ExperimentResult) -> ExperimentResult:
    """``stage2`` with the teacher's entries of ``stage1`` first (the teacher trains once)."""
    for key in ("results", "seconds", "reused"):
        first, second = getattr(stage1, key), getattr(stage2, key)
        if "teacher" in first:
            rest = {k: v for k, v in second.items() if k != "teacher"}
            setattr(stage2, key, {"teacher": first["teacher"], **rest})
    return stage2


def run_study(spec, plan: StudyPlan, reuse: bool, jobs: int = 1) -> StudyOutcome:
    """Train (or reuse) the study's runs, ``jobs`` student runs at a time.

    With ``plan.screen``, stage 1 trains the teacher, then the baseline and every method on
    ``plan.screen`` of the schedule on the first seed (in ``<out>/screen``), and stage 2 the
    baseline and the ``plan.keep`` best methods on every seed and the full schedule (unless
    ``plan.screen_only``).
    """
    if plan.screen and plan.evaluate_on:
        raise ValueError(
            "--evaluate-on reports a trained study; with --screen the screen would choose on that "
            "test set: screen first, then --evaluate-on with the kept --methods (no --screen)"
        )
    teacher, students, skipped = plan.plan(spec)
    metric, split = study_metric(students[0], plan.report_on, plan.evaluate_on)
    weights = plan.teacher_weights or os.path.join(teacher.output_dir, "model_final.pth")
    on = plan.report_on
    if not plan.screen:
        result = _run(teacher, students, reuse, jobs, weights, on, plan.evaluate_on)
        return StudyOutcome(result, skipped, metric, split)
    full = load_config(students[0].config_file, students[0].opts).SOLVER
    opts = screen_schedule(full.MAX_ITER, full.STEPS, plan.screen)
    seed = plan.seeds[0]
    out = os.path.join(plan.out, "screen")
    _, screen_runs, _ = plan.plan(spec, [seed], out, opts, teacher_weights=weights)
    stage1 = _run(teacher, screen_runs, reuse, jobs, weights, on)
    scores = {r.label: None for r in screen_runs}
    scores.update({k: v[0][metric] for k, v in stage1.results.items() if k != "teacher"})
    errors = {name.rsplit(" seed ", 1)[0]: e for name, e in stage1.errors.items()}
    kept, dropped = select_screened(scores, plan.keep, errors)
    stage2 = [r for r in students if r.label == "baseline" or r.label in kept]
    result = None
    if not plan.screen_only:
        result = _with_teacher(stage1, _run(None, stage2, reuse, jobs, weights, on))
    screen = {
        "fraction": plan.screen,
        "iters": int(opts[1]),
        "seed": seed,
        "metric": metric,
        "keep": plan.keep,
        "scores": scores,
        "kept": kept,
        "dropped": dropped,
        "seconds": {k: v for k, v in stage1.seconds.items() if k != "teacher"},
    }
    return StudyOutcome(result, skipped, metric, split, screen, stage1)


def report_study(
    outcome: StudyOutcome,
    out_dir: str,
    title: str,
    schedule: str,
    seeds: List[int],
    command: str,
    load_before: str,
    facts: dict,
) -> str:
    """Write the study's report with the recommendation (and the screen's, in
    ``<out_dir>/screen``; after a screen only, that one has the recommendation); return the
    markdown of the study's report (after a screen only, of the screen's)."""
    metric, screen, skipped, result = (
        outcome.metric,
        outcome.screen,
        outcome.skipped,
        outcome.result,
    )
    extra = {"metric": metric}
    screened = []
    if screen is not None:
        screened = screen_lines(screen, metric)
        extra["screen"] = screen
        stage1 = outcome.stage1
        lines = () if result is not None else _recommend(stage1, metric, screened)
        report = write_accuracy_report(
            os.path.join(out_dir, "screen"),
            f"screen of {title}",
            f"{screen['iters']} iterations ({screen['fraction']:g} of the schedule)",
            [screen["seed"]],
            command,
            stage1,
            skipped,
            load_before,
            {**facts, "stage": "screen"},
            metric=metric,
            recommendation=lines,
            extra=extra,
        )
        if result is None:
            return report
    return write_accuracy_report(
        out_dir,
        title,
        schedule,
        seeds,
        command,
        result,
        skipped,
        load_before,
        facts,
        metric=metric,
        recommendation=_recommend(result, metric, screened),
        extra=extra,
    )


def _recommend(result: ExperimentResult, metric: str, screened: List[str]) -> List[str]:
    agg = aggregate(result.results)
    return recommend(agg, metric, result.errors, result.failures, screened)
