#!/usr/bin/env python
"""Run a released student on images and write them with boxes, labels and scores drawn.

    python tools/demo.py --config-file release/csgr_frcnn_r18_1a2b3c4d.yaml \
        --input datasets/csgr_shapes/val --output output/demo [--confidence-threshold 0.5]
    python tools/demo.py --config-file ... --input "photos/*.jpg" img.png --output out/

--input takes folders, glob patterns and files; one output image per input. MODEL.WEIGHTS of the
YAML is found next to the YAML when relative; --weights overrides it. Class names come from the
metadata of the YAML's test dataset if registered (csgr's datasets, or --register my_module.py),
else class ids are drawn.
"""

import argparse

from detectron2.utils.logger import setup_logger

import csgr  # noqa: F401  registers the project's datasets (class names for the drawing)
from csgr.engine.log_setup import setup_csgr_logger
from csgr.engine.user_modules import add_register_argument, import_user_modules
from csgr.errors import one_line_errors
from csgr.visualization.demo import released_cfg, run_demo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="released YAML")
    parser.add_argument("--weights", help="overrides MODEL.WEIGHTS")
    parser.add_argument("--input", nargs="+", required=True, help="folders, globs or images")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    add_register_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="detectron2")
    setup_csgr_logger()  # the skipped unreadable images
    import_user_modules(args.register)
    cfg = released_cfg(args.config_file, args.weights, args.confidence_threshold, args.opts)
    written = run_demo(cfg, args.input, args.output, args.confidence_threshold)
    print(f"Wrote {len(written)} images to {args.output}")
    return written


if __name__ == "__main__":
    with one_line_errors():  # an error in the user's files: one line naming it
        main()
