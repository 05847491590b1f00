#!/usr/bin/env python
"""Generate the offline shapes dataset (COCO format) that ``csgr_shapes_{train,val}`` read.

The registered datasets generate it with the defaults below on first use; run this script to
generate it ahead of time or with other parameters, e.g.::

    python datasets/generate_shapes.py --num-train 4000 --size 192 --force

writes ``$DETECTRON2_DATASETS/csgr_shapes/`` (default ``datasets/csgr_shapes``): see
datasets/README.md for the layout.
"""

import argparse
import json
import os

from csgr.data.datasets import (
    DEFAULT_SHAPES_PARAMS,
    SHAPES_DIRNAME,
    datasets_root,
    generate_shapes_dataset,
)


def get_parser() -> argparse.ArgumentParser:
    d = DEFAULT_SHAPES_PARAMS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root",
        default=None,
        help="dataset root (default: $DETECTRON2_DATASETS or 'datasets'); the data goes to "
        f"ROOT/{SHAPES_DIRNAME}",
    )
    parser.add_argument("--seed", type=int, default=d["seed"], help="fixes every image")
    parser.add_argument("--num-train", type=int, default=d["num_train"], help="train images")
    parser.add_argument("--num-val", type=int, default=d["num_val"], help="val images")
    parser.add_argument("--size", type=int, default=d["image_size"], help="image side, pixels")
    parser.add_argument("--format", choices=["jpg", "png"], default="jpg", help="image format")
    parser.add_argument(
        "--min-extent", type=float, default=d["min_extent"], help="smallest object, px"
    )
    parser.add_argument(
        "--max-objects", type=int, default=d["max_objects"], help="objects per image, max"
    )
    parser.add_argument(
        "--max-clutter",
        type=int,
        default=d["max_clutter"],
        help="distractors per image, max (0: none)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing dataset")
    return parser


def main(argv=None) -> dict:
    args = get_parser().parse_args(argv)
    output_dir = os.path.join(args.root or datasets_root(), SHAPES_DIRNAME)
    if os.path.exists(output_dir) and not args.force:
        raise SystemExit(f"{output_dir} already exists: pass --force to replace it.")
    stats = generate_shapes_dataset(
        output_dir,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.size,
        overwrite=args.force,
        image_format=args.format,
        min_extent=args.min_extent,
        max_objects=args.max_objects,
        max_clutter=args.max_clutter,
    )
    print(f"Wrote {output_dir}: {json.dumps(stats)}")
    return stats


if __name__ == "__main__":
    main()
