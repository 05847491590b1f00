#!/usr/bin/env python
"""The main job: baseline student vs CSGR student on the offline shapes dataset.

1. trains the teacher, or reuses it when its folder holds a finished run of the same merged
   config (``--retrain-teacher`` trains it again),
2. trains the baseline student and the CSGR student on an identical schedule and seed (side by
   side, each on half the cores, with ``--jobs 2``, the default),
3. evaluates both and prints AP, AP50, AP75, APs, APm, APl with the difference.

Every run goes through tools/train_net.py, as a user would run it; outputs go to
``--output`` (default output/main/<detector>).

    python tools/run_main.py                     # Faster R-CNN (default)
    python tools/run_main.py --detector retinanet
    python tools/run_main.py --iters 300 --teacher-iters 600   # other schedules

Trailing ``KEY VALUE`` opts go to every run (e.g. ``SOLVER.IMS_PER_BATCH 4``).
"""

import argparse
import os
import sys
import time

from tabulate import tabulate

from csgr.benchmark.accuracy_runs import (
    DETECTORS,
    METRICS,
    Run,
    run_many,
    run_or_reuse,
    schedule_opts,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def fmt(value: float, signed: bool = False) -> str:
    """A metric for the table; COCO reports -1/NaN where a size range has no objects."""
    if value != value or value < 0 and not signed:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def cfg(name: str) -> str:
    return os.path.join("configs", "Shapes", name + ".yaml")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="frcnn")
    parser.add_argument("--output", default=os.path.join(ROOT, "output", "main"))
    parser.add_argument("--iters", type=int, help="student iterations (default: the config's)")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--seed", type=int, default=1, help="SEED of both students")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore a cached teacher")
    parser.add_argument(
        "--reuse-students", action="store_true", help="reuse finished identical student runs too"
    )
    parser.add_argument("--jobs", type=int, default=2, help="students trained side by side")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every run")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    teacher_name, student_name, method_name = DETECTORS[args.detector]
    out = os.path.join(os.path.abspath(args.output), args.detector)
    start = time.perf_counter()
    times = {}

    teacher = Run(
        "teacher", 1, cfg(teacher_name), os.path.join(out, "teacher"),
        schedule_opts(args.teacher_iters) + args.opts,
    )  # fmt: skip
    results = {}
    results["teacher"], times["teacher"], reused = run_or_reuse(
        teacher, reuse=not args.retrain_teacher
    )
    if reused:
        print(f"Reused the teacher in {teacher.output_dir} (--retrain-teacher trains it again)")
        del times["teacher"]  # the recorded time of an earlier run, not part of this one
    teacher_weights = os.path.join(teacher.output_dir, "model_final.pth")

    opts = schedule_opts(args.iters) + ["SEED", str(args.seed)] + args.opts
    students = [
        Run("baseline", args.seed, cfg(student_name), os.path.join(out, "baseline"), opts),
        Run(
            "CSGR", args.seed, cfg(method_name.format(method="csgr")), os.path.join(out, "csgr"),
            opts + ["MODEL.DISTILL.TEACHER.WEIGHTS", teacher_weights], depends_on=teacher_weights,
        ),
    ]  # fmt: skip
    for run, outcome in zip(students, run_many(students, args.reuse_students, args.jobs)):
        if isinstance(outcome, RuntimeError):
            sys.exit(str(outcome))
        results[run.label], times[run.label], _ = outcome

    rows = [[label, *(fmt(results[label][m]) for m in METRICS)] for label in results]
    diff = [results["CSGR"][m] - results["baseline"][m] for m in METRICS]
    rows.append(["CSGR - baseline", *(fmt(d, signed=True) for d in diff)])
    print(f"\nOffline shapes, {args.detector}: teacher {teacher_name}, student {student_name}")
    print(tabulate(rows, headers=["model", *METRICS], tablefmt="github", disable_numparse=True))
    print(
        "Wall time: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items())
        + f" (students side by side: {args.jobs} at a time); "
        f"main job {(time.perf_counter() - start) / 60:.1f} min"
    )
    return results


if __name__ == "__main__":
    main()
