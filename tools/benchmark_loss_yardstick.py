#!/usr/bin/env python
"""Loss values or gradient norms as the yardstick of loss-scale calibration, measured.

For every method that applies to the detector, on the same training batches of the offline
shapes dataset and the same student weights, prints the loss ratio (weighted distillation loss /
detection loss, what LOSS_SCALE.MODE calibrated equalises), the gradient ratio at the student's
FPN features, their per-batch variation, and the pull each method keeps after loss calibration
(see csgr/benchmark/yardstick.py).

    python tools/benchmark_loss_yardstick.py \\
        --teacher-weights output/shapes/frcnn/teacher/seed1/model_final.pth
    python tools/benchmark_loss_yardstick.py --teacher-weights T.pth \\
        --student-weights output/shapes/frcnn/baseline/seed1/model_final.pth   # trained student
"""

import argparse
import math
import os
import shlex
import sys

from tabulate import tabulate

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.benchmark.accuracy_runs import DETECTORS
from csgr.benchmark.measure import load_average
from csgr.benchmark.yardstick import measure_yardsticks
from csgr.modeling.losses import method_names

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="frcnn")
    parser.add_argument("--teacher-weights", required=True, help="a trained shapes teacher")
    parser.add_argument("--student-weights", default="", help="student checkpoint (default: init)")
    parser.add_argument("--methods", nargs="+", default=method_names(), choices=method_names())
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every method")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    spec = DETECTORS[args.detector]
    configs = {}
    for method in args.methods:
        path, why = spec.method_config(ROOT, method)
        if path is None:
            print(f"{method}: skipped ({why})")
        else:
            configs[method] = path
    opts = ["MODEL.DISTILL.TEACHER.WEIGHTS", args.teacher_weights, *args.opts]
    load_before = load_average()
    rows = measure_yardsticks(configs, opts, args.batches, args.seed, args.student_weights)
    table, pulls = [], []
    for row in rows:
        s = row.summary()
        pulls.append(s["pull_after_loss_calibration"])
        table.append(
            [row.method, f"{s['r_loss']:.3g}", f"{s['cv_loss']:.2f}", f"{s['r_grad']:.3g}"]
            + [f"{s['cv_grad']:.2f}", f"{s['pull_after_loss_calibration']:.3g}"]
        )
    headers = ["method", "r_loss", "cv r_loss", "r_grad", "cv r_grad", "r_grad / r_loss"]
    command = "python tools/benchmark_loss_yardstick.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    print(command)
    student = args.student_weights or "init (seed %d)" % args.seed
    print(f"- {args.detector}, {args.batches} batches, student: {student}; {load_before}")
    print(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))
    spread = max(pulls) / min(pulls) if min(pulls) > 0 else math.inf
    print(
        f"- pull after loss calibration spans {min(pulls):.3g} to {max(pulls):.3g} ({spread:.3g}x)"
    )
    return rows


if __name__ == "__main__":
    main()
