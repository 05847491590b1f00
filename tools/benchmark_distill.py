#!/usr/bin/env python
"""Speed and memory of a distillation training step against the student's step and the teacher.

For one Distiller config and one synthetic batch, in one process, measures the median step time,
images/s and peak memory of (a) the student's own training step, (b) the teacher's backbone+FPN
forward under no_grad, (c) the Distiller's step with each method alone, and the methods' loss
modules alone (forward + backward of the distillation terms). Reports (c)/((a)+(b)) and the
losses' share of the student's step, against the CSGR goals (<= 1.05 and <= 5%).
``csgr.benchmark.speed_report.EXPLANATION`` (printed with the table) says how each is measured.

Without --teacher-weights the teacher gets random weights, saved to a temporary file.

    python tools/benchmark_distill.py --height 320 --width 533 --batch 2
    python tools/benchmark_distill.py --config-file configs/SODA10M/csgr_frcnn_r50_r101_1x.yaml \\
        --height 400 --width 667 --methods CSGR FGD
    python tools/benchmark_distill.py --device cuda --precisions fp32 amp   # 800x1333, batch 2
"""

import argparse
import json
import shlex
import sys

import torch

from csgr.benchmark.distill_speed import SpeedSettings, run_speed_benchmark
from csgr.benchmark.speed_report import speed_report
from csgr.modeling.losses import method_names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default="configs/Shapes/csgr_frcnn_r18_r34.yaml")
    parser.add_argument("--teacher-config", help="override MODEL.DISTILL.TEACHER.CONFIG_FILE")
    parser.add_argument("--teacher-weights", default="", help="default: random, in a tmp file")
    parser.add_argument("--methods", nargs="+", default=method_names())
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1333)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["fp32", "amp"],
        help="default: fp32 and amp on CUDA, fp32 on the CPU; amp is the trainer's autocast in "
        "SOLVER.AMP.PRECISION (float16 needs CUDA: add SOLVER.AMP.PRECISION bfloat16 on the CPU)",
    )
    parser.add_argument("--lr", type=float, default=0.0, help="SGD learning rate of the steps")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory runs")
    parser.add_argument("--output", help="write the markdown report here")
    parser.add_argument("--json", help="write all measurements (every round) here")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    opts = list(args.opts)
    if args.teacher_config:
        opts += ["MODEL.DISTILL.TEACHER.CONFIG_FILE", args.teacher_config]
    precisions = args.precisions or (
        ["fp32", "amp"] if args.device.startswith("cuda") else ["fp32"]
    )
    settings = SpeedSettings(
        config_file=args.config_file,
        opts=opts,
        methods=args.methods,
        height=args.height,
        width=args.width,
        batch=args.batch,
        repeats=args.repeats,
        warmup=args.warmup,
        device=args.device,
        precisions=precisions,
        teacher_weights=args.teacher_weights,
        lr=args.lr,
        memory=not args.no_memory,
    )
    result = run_speed_benchmark(settings)
    command = "python tools/benchmark_distill.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    report = speed_report(result, command)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
