#!/usr/bin/env python
"""Evaluate the teacher of a distillation config alone; fail if its AP is too low.

    python tools/check_teacher.py --config-file configs/Shapes/csgr_frcnn_r18_r34.yaml \
        MODEL.DISTILL.TEACHER.WEIGHTS output/shapes/frcnn/teacher/seed1/model_final.pth
    python tools/check_teacher.py --config-file ... --min-ap 20 --register my_datasets.py

The teacher is built as the Distiller builds it (MODEL.DISTILL.TEACHER.CONFIG_FILE + OPTS,
weights loaded strictly) and evaluated on DATASETS.TEST with the project's evaluator. Prints
box AP (AP50 on PASCAL VOC) per test set; exits with status 1 if any is below --min-ap (a sign
that the teacher weights did not load or do not fit the dataset).
"""

import argparse
import sys

from detectron2.utils.logger import setup_logger

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.engine import setup_cfg
from csgr.engine.user_modules import import_user_modules
from csgr.release.teacher_check import check_teacher


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="Distiller config")
    parser.add_argument(
        "--min-ap", type=float, default=1.0, help="fail below this AP, percent (< 0: never)"
    )
    parser.add_argument("--output", help="evaluator output folder (default: none written)")
    parser.add_argument(
        "--register", action="append", default=[], help="module registering datasets (.py/name)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logger(name="detectron2")
    setup_logger(name="csgr")
    import_user_modules(args.register)
    cfg = setup_cfg(args, freeze=False)
    cfg.freeze()
    ok, lines = check_teacher(cfg, args.min_ap, args.output)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
