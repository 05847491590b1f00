#!/usr/bin/env python
"""Accuracy of every distillation method side by side on the offline shapes dataset.

Trains, through tools/train_net.py subprocesses, the teacher once, then for each seed the
baseline student and one student per method, all on the same schedule, augmentation and seed
(only MODEL.DISTILL.METHODS differs), and reports AP, AP50, AP75, APs, APm, APl per method as
mean ± std over seeds with the AP range, against the goals (CSGR >= baseline + 2 AP, CSGR >= FGD).
Writes accuracy.md, accuracy.png (AP bar chart) and results.json under --output/<detector>.

    python tools/benchmark_accuracy.py --reuse                      # full schedule, seeds 1 2
    python tools/benchmark_accuracy.py --iters 100 --teacher-iters 300 --methods CSGR FGD --reuse
    python tools/benchmark_accuracy.py --detector retinanet --seeds 1 2 3

--reuse skips runs whose folder holds an evaluation and a stamp of the same merged config (and,
for distilled students, of the same teacher weights). Trailing KEY VALUE opts go to every run.
"""

import argparse
import json
import os
import platform
import shlex
import sys

from csgr.benchmark.accuracy_report import accuracy_goals, accuracy_table, aggregate, bar_chart
from csgr.benchmark.accuracy_runs import (
    ACCURACY_METHODS,
    DETECTORS,
    final_metrics,
    plan_runs,
    run_many,
    run_or_reuse,
)
from csgr.benchmark.measure import load_average

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="frcnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="students' SEED")
    parser.add_argument("--iters", type=int, help="student iterations (default: the configs')")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--teacher-seed", type=int, default=1)
    parser.add_argument("--teacher-weights", default="", help="use this trained teacher instead")
    parser.add_argument("--methods", nargs="+", default=ACCURACY_METHODS, metavar="METHOD")
    parser.add_argument("--output", default=os.path.join(ROOT, "output", "benchmark_accuracy"))
    parser.add_argument("--reuse", action="store_true", help="skip finished identical runs")
    parser.add_argument(
        "--jobs", type=int, default=1, help="student runs side by side (threads split evenly)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every run")
    return parser.parse_args(argv)


def write_outputs(args, argv, agg, results, skipped, failed, seconds, load_before) -> str:
    """Write accuracy.md, accuracy.png and results.json under --output/<detector>.

    Returns:
        the markdown report.
    """
    counts = {label: len(runs) for label, runs in results.items()}
    out_dir = os.path.join(os.path.abspath(args.output), args.detector)
    teacher_name, student_name, _ = DETECTORS[args.detector]
    title = f"shapes {args.detector}: students {student_name}, teacher {teacher_name}"
    schedule = f"iterations: students {args.iters or 'config'}, teacher " + (
        "given" if args.teacher_weights else str(args.teacher_iters or "config")
    )
    chart = os.path.join(out_dir, "accuracy.png")
    chart_title = f"shapes {args.detector}: students {student_name}\nteacher {teacher_name}"
    bar_chart(agg, chart, f"{chart_title}\n{schedule}; student seeds {args.seeds}")
    command = "python tools/benchmark_accuracy.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    lines = ["```", command, "```", "", f"{title}; {schedule}; student seeds {args.seeds}", ""]
    lines += [accuracy_table(agg, counts), "", *accuracy_goals(agg)]
    lines += [f"- {m}: skipped ({why})" for m, why in skipped.items()]
    lines += [f"- {run}: FAILED ({why})" for run, why in failed.items()]
    lines += [
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"before: {load_before}; after: {load_average()}",
        "- wall time of one run, train + eval (min, mean over seeds; a reused run's as recorded): "
        + ", ".join(f"{k} {sum(v) / len(v) / 60:.1f}" for k, v in seconds.items()),
        f"- chart: {chart}",
    ]
    report = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "accuracy.md"), "w") as f:
        f.write(report)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"results": results, "skipped": skipped, "failed": failed}, f, indent=1)
    return report


def main(argv=None):
    args = parse_args(argv)
    unknown = sorted(set(args.methods) - set(ACCURACY_METHODS))
    if unknown:
        sys.exit(f"unknown methods {unknown}; choose from {ACCURACY_METHODS}")
    teacher, students, skipped = plan_runs(
        args.detector,
        args.methods,
        args.seeds,
        args.output,
        iters=args.iters,
        teacher_iters=args.teacher_iters,
        teacher_seed=args.teacher_seed,
        teacher_weights=args.teacher_weights,
        extra_opts=tuple(args.opts),
    )
    load_before = load_average()
    results, seconds, failed = {}, {}, {}
    if teacher is not None:
        metrics, secs, _ = run_or_reuse(teacher, args.reuse)
        results["teacher"] = [metrics]
        seconds["teacher"] = [secs]
    else:
        metrics = final_metrics(os.path.dirname(os.path.abspath(args.teacher_weights)))
        if metrics is not None:  # the given teacher's own evaluation, when next to it
            results["teacher"] = [metrics]
    for run, outcome in zip(students, run_many(students, args.reuse, args.jobs)):
        if isinstance(outcome, RuntimeError):  # report it; the other runs went on
            msg = [line for line in str(outcome).splitlines() if line.strip()]
            failed[f"{run.label} seed {run.seed}"] = f"{msg[0]} ... {msg[-1][:300]}"
            print(outcome, file=sys.stderr)
            continue
        metrics, secs, _ = outcome
        results.setdefault(run.label, []).append(metrics)
        seconds.setdefault(run.label, []).append(secs)

    agg = aggregate(results)
    report = write_outputs(args, argv, agg, results, skipped, failed, seconds, load_before)
    print("\n" + report)
    if failed:
        sys.exit(f"{len(failed)} run(s) failed: {sorted(failed)}")
    return agg


if __name__ == "__main__":
    main()
