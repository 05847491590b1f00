#!/usr/bin/env python
"""Print, iteration by iteration, the weight and gradient norms of chosen parameter groups and
the RMS of the student's FPN outputs, over a config's first iterations: where a divergence
starts (see csgr/benchmark/trace_norms.py).

    python tools/trace_norms.py --config-file configs/Coral/pcd_retinanet_mnv2_efflite2.yaml \\
        --iters 40 --params distill_losses,student.backbone,student.head SEED 2 \\
        MODEL.DISTILL.TEACHER.WEIGHTS output/coral/retinanet/teacher/seed1/model_final.pth

``--per-term N`` adds, every N iterations, the gradient norm of each loss term alone on each
group and on each student FPN level: which term pulls where.

Trains in this process (one process, the config's device), writes nothing but what the Trainer
writes to OUTPUT_DIR (its log and config), evaluates nothing; exits with status 3 if training
diverged, as tools/train_net.py does.
"""

import shlex
import sys

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.benchmark.trace_norms import trace_norms
from csgr.engine import Trainer, argument_parser, setup_cfg
from csgr.errors import DIVERGED_EXIT_STATUS, one_line_errors


def parse_args(argv=None):
    parser = argument_parser()  # train_net's arguments (--config-file, --register, opts)
    parser.add_argument("--iters", type=int, default=40, help="iterations to run")
    parser.add_argument(
        "--params",
        default="distill_losses,student.backbone,student",
        help="comma-separated parameter-name prefixes, each traced as one group",
    )
    parser.add_argument(
        "--per-term",
        type=int,
        default=0,
        metavar="N",
        help="every N iterations, also the gradient norm of each loss term alone on each group "
        "and each student FPN level (0: never)",
    )
    args = parser.parse_args(argv)
    if args.num_gpus != 1 or args.resume or args.eval_only:
        parser.error(
            "trace_norms runs one process from the config's weights: no --num-gpus, "
            "--resume or --eval-only"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    print("python tools/trace_norms.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    trainer = Trainer(setup_cfg(args))
    trainer.resume_or_load(resume=False)
    rows = trace_norms(trainer, args.iters, args.params.split(","), per_term_every=args.per_term)
    return rows


if __name__ == "__main__":
    with one_line_errors():
        if main()[-1].diverged:
            sys.exit(DIVERGED_EXIT_STATUS)
