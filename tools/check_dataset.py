#!/usr/bin/env python
"""Check registered datasets end to end before training on them, and print a summary.

    python tools/check_dataset.py --register my_datasets.py mydata_train mydata_val
    python tools/check_dataset.py --register my_datasets.py \
        --config-file configs/MyData/csgr_frcnn_r50_r101.yaml   # its DATASETS.TRAIN and TEST
    python tools/check_dataset.py --config-file configs/MyData/csgr_frcnn_r50_r101.yaml \
        DATASETS.TEST "('mydata_test',)"                        # KEY VALUE overrides

For each dataset: the annotation files (COCO json syntax, category ids; VOC xml syntax, class
names, box corners), the loaded records (category ids against the classes and the model's
NUM_CLASSES, boxes that training clips or drops), every image (readable, size as annotated;
--no-images only checks that the files exist), and the evaluator (evaluator_type set, the VOC
evaluator's parser reads each file). Exits 1 when a dataset has an error.
"""

import argparse
import re
import sys

import csgr  # noqa: F401  registers the project's datasets
from csgr.config import load_config, num_classes
from csgr.data.checks import check_dataset
from csgr.engine.log_setup import setup_csgr_logger
from csgr.engine.user_modules import add_register_argument, import_user_modules
from csgr.errors import one_line_errors

# A config key such as DATASETS.TRAIN or MODEL.ROI_HEADS.NUM_CLASSES: where the opts start.
_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        usage="%(prog)s [options] [NAME ...] [KEY VALUE ...]",
    )
    parser.add_argument(
        "datasets",
        nargs="*",
        metavar="NAME ... KEY VALUE",
        help="registered dataset names, then (with --config-file) the config's KEY VALUE "
        "overrides, e.g. DATASETS.TEST \"('mydata_val',)\"",
    )
    parser.add_argument("--config-file", metavar="FILE", help="check its DATASETS.TRAIN and TEST")
    add_register_argument(parser)
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="only check that image files exist (and are not empty)",
    )
    args = parser.parse_args(argv)
    first_key = next((i for i, a in enumerate(args.datasets) if _CONFIG_KEY.match(a)), None)
    args.opts = [] if first_key is None else args.datasets[first_key:]
    args.datasets = args.datasets if first_key is None else args.datasets[:first_key]
    if args.opts and not args.config_file:
        parser.error(f"config overrides {args.opts[:2]} need --config-file")
    if len(args.opts) % 2:
        parser.error(f"config overrides must come in KEY VALUE pairs, got {args.opts}")
    if not args.datasets and not args.config_file:
        parser.error("name datasets or give --config-file")
    return args


def main(argv=None):
    """Returns the reports; exits with status 1 when one has an error (``argv`` as sys.argv)."""
    args = parse_args(argv)
    setup_csgr_logger()
    import_user_modules(args.register)
    names, classes, skip = list(args.datasets), None, False
    if args.config_file:
        cfg = load_config(args.config_file, args.opts)
        names = list(dict.fromkeys([*names, *cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]))
        classes, skip = num_classes(cfg), bool(cfg.DATALOADER.get("SKIP_BAD_IMAGES", False))
    reports = [check_dataset(n, not args.no_images, classes, skip) for n in names]
    for report in reports:
        print(report.summary())
    failed = [r.name for r in reports if not r.ok]
    print(
        f"{len(reports) - len(failed)} of {len(reports)} dataset(s) OK"
        + (f"; errors in {failed}" if failed else "")
    )
    if failed:
        sys.exit(1)
    return reports


if __name__ == "__main__":
    with one_line_errors():  # an error in the user's files: one line naming it
        main()
