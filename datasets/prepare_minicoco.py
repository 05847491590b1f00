#!/usr/bin/env python
"""Sample MiniCOCO: a class- and size-balanced subset of COCO train2017.

Reads ``COCO_ROOT/annotations/instances_train2017.json`` and writes
``COCO_ROOT/annotations/instances_train2017_minicoco.json`` (what ``minicoco_train`` reads),
keeping the per-class instance proportions, the small/medium/large proportions and the
instances per image of the full set (see ``csgr.data.datasets.minicoco_sampling``)::

    python datasets/prepare_minicoco.py --coco-root datasets/coco --num-images 25000 --seed 0
"""

import argparse
import json
import os

import numpy as np

from csgr.data.datasets import datasets_root, sample_balanced_subset
from csgr.data.datasets.minicoco_sampling import subset_statistics


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--coco-root",
        default=None,
        help="folder holding annotations/instances_train2017.json "
        "(default: $DETECTRON2_DATASETS/coco)",
    )
    parser.add_argument("--num-images", type=int, default=25000, help="images in the subset")
    parser.add_argument("--seed", type=int, default=0, help="fixes the subset")
    parser.add_argument(
        "--output",
        default=None,
        help="output json (default: COCO_ROOT/annotations/instances_train2017_minicoco.json)",
    )
    return parser


def main(argv=None) -> str:
    args = get_parser().parse_args(argv)
    coco_root = args.coco_root or os.path.join(datasets_root(), "coco")
    source = os.path.join(coco_root, "annotations", "instances_train2017.json")
    if not os.path.isfile(source):
        raise SystemExit(
            f"COCO train2017 annotations not found: {os.path.abspath(source)} "
            "(see datasets/README.md)."
        )
    output = args.output or os.path.join(
        coco_root, "annotations", "instances_train2017_minicoco.json"
    )
    with open(source) as f:
        coco = json.load(f)
    subset = sample_balanced_subset(coco, args.num_images, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(subset, f)
    os.replace(tmp, output)

    full, sub = subset_statistics(coco), subset_statistics(subset)
    gap = {k: float(np.abs(full[k] - sub[k]).max()) for k in ("class_fraction", "size_fraction")}
    print(
        f"Wrote {output}: {len(subset['images'])} images, {len(subset['annotations'])} "
        f"annotations; instances/image {float(sub['instances_per_image']):.2f} "
        f"(full {float(full['instances_per_image']):.2f}); largest proportion gap {gap}"
    )
    return output


if __name__ == "__main__":
    main()
