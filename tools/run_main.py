#!/usr/bin/env python
"""The main job: baseline student vs CSGR student on an offline dataset (default: the shapes with
ImageNet-initialised MobileNetV2-FPN student and EfficientNet-Lite2-FPN teacher).

A preset of the experiment runner of tools/benchmark_accuracy.py (same run layout, so each reuses
the other's finished runs):

1. trains the teacher, or reuses it when its folder holds a finished run of the same merged
   config (``--retrain-teacher`` trains it again),
2. trains the baseline student and the CSGR student on an identical schedule and seed (side by
   side, each on half the cores, with ``--jobs 2``, the default),
3. evaluates both and prints AP, AP50, AP75, APs, APm, APl with the difference,
4. writes the training curves of the three runs overlaid and CSGR's category-attention and
   relation maps of the first validation image (teacher vs student), and prints where.

While the runs train, each shows a live progress line (iteration, s/it, ETA, loss, then AP).

Every run goes through tools/train_net.py, as a user would run it; outputs go to
``--output/<detector>/<teacher|baseline|csgr>/seed<k>`` (default output/<suite>).

    python tools/run_main.py                     # Faster R-CNN, pretrained shapes (default)
    python tools/run_main.py --detector retinanet
    python tools/run_main.py --suite coral       # real photographs, ImageNet-initialised
    python tools/run_main.py --suite shapes      # ResNet-FPN trained from scratch
    python tools/run_main.py --iters 300 --teacher-iters 600   # other schedules

Trailing ``KEY VALUE`` opts go to every run (e.g. ``SOLVER.IMS_PER_BATCH 4``).
"""

import argparse
import os
import sys
import time

from csgr.benchmark.accuracy_report import comparison_table
from csgr.benchmark.accuracy_runs import SUITES, plan_runs
from csgr.benchmark.experiment import run_experiment
from csgr.benchmark.runner import plan_progress
from csgr.visualization.job_pictures import write_job_pictures

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
METHOD = "CSGR"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--suite",
        choices=sorted(SUITES),
        default="shapes-pretrained",
        help="data and models (see SUITES)",
    )
    parser.add_argument("--detector", choices=sorted(SUITES["shapes"]), default="frcnn")
    parser.add_argument("--output", help="runs go to <output>/<detector> (default output/<suite>)")
    parser.add_argument("--iters", type=int, help="student iterations (default: the config's)")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--seed", type=int, default=1, help="SEED of both students")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore a cached teacher")
    parser.add_argument(
        "--reuse-students", action="store_true", help="reuse finished identical student runs too"
    )
    parser.add_argument("--jobs", type=int, default=2, help="students trained side by side")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every run")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = os.path.join(ROOT, "output", args.suite)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    teacher, students, _ = plan_runs(
        args.detector,
        [METHOD],
        [args.seed],
        args.output,
        ROOT,
        iters=args.iters,
        teacher_iters=args.teacher_iters,
        extra_opts=tuple(args.opts),
        suite=args.suite,
    )
    board = plan_progress(teacher, students, args.jobs)
    experiment = run_experiment(
        teacher,
        students,
        not args.retrain_teacher,
        args.reuse_students,
        args.jobs,
        log=board.write,
        progress=board,
    )
    if experiment.failed:
        sys.exit("\n".join(f"{run}: {why}" for run, why in experiment.failed.items()))
    if experiment.reused["teacher"][0]:
        print(f"Reused the teacher in {teacher.output_dir} (--retrain-teacher trains it again)")
    results = {label: runs[0] for label, runs in experiment.results.items()}
    # a reused run's recorded time belongs to an earlier job, not to this one
    times = {
        label: secs[0]
        for label, secs in experiment.seconds.items()
        if not experiment.reused[label][0]
    }
    spec = SUITES[args.suite][args.detector]
    print(
        f"\nOffline {args.suite}, {args.detector}: teacher {spec.teacher}, student {spec.baseline}"
    )
    print(comparison_table(results, METHOD))
    runs = {run.label: run.output_dir for run in [teacher, *students]}
    pictures_dir = os.path.join(os.path.abspath(args.output), args.detector, "pictures")
    pictures = write_job_pictures(pictures_dir, runs, distill_run=runs[METHOD])
    print(f"Pictures: curves {pictures[0]}; attention maps in {os.path.dirname(pictures[1])}")
    trained = ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items())
    if trained:
        trained += f" (students side by side: {args.jobs} at a time)"
    else:
        trained = "every run reused"
    print(f"Wall time: {trained}; main job {(time.perf_counter() - start) / 60:.1f} min")
    return results


if __name__ == "__main__":
    main()
