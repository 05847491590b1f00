#!/usr/bin/env python
"""Draw CSGR's category attention maps and criss-cross relations of one image, teacher vs student.

    python tools/visualize_attention.py --config-file output/shapes/frcnn/csgr/seed1/config.yaml \
        --weights output/shapes/frcnn/csgr/seed1/model_final.pth --input image.jpg \
        --output output/shapes/frcnn/csgr/seed1/attention [--levels p2 p3 | --levels all] [--pixel X Y]

Writes category_<level>_<k>_<class>.png (image | teacher | student attention of class k) and
relation_<level>.png (the criss-cross attention weights of --pixel over its row and column).
"""

import argparse

import cv2
from detectron2.utils.logger import setup_logger

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.engine import setup_cfg
from csgr.engine.user_modules import add_register_argument
from csgr.visualization.attention import load_distiller, write_attention_pictures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="Distiller config")
    parser.add_argument("--weights", required=True, help="checkpoint of the distillation run")
    parser.add_argument("--input", required=True, help="an image file")
    parser.add_argument("--output", required=True, help="folder for the PNGs")
    parser.add_argument("--levels", nargs="+", help="FPN levels, or 'all' (default: the finest)")
    parser.add_argument("--pixel", nargs=2, type=int, metavar=("X", "Y"), help="default: centre")
    parser.add_argument("--step", type=int, default=0, help="recurrence pass of the relation map")
    add_register_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="csgr")
    cfg = setup_cfg(args, freeze=False)  # imports the --register modules
    cfg.freeze()
    image = cv2.imread(args.input, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"--input: cannot read the image {args.input!r}")
    model = load_distiller(cfg, args.weights)
    levels = model.distill_losses["CSGR"].in_features if args.levels == ["all"] else args.levels
    written = write_attention_pictures(
        model, cfg, image, args.output, levels=levels, pixel=args.pixel, step=args.step
    )
    print("\n".join(written))
    return written


if __name__ == "__main__":
    main()
