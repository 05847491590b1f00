#!/usr/bin/env python
"""Which head of a trained Faster R-CNN is weak: RPN recall and the box classifier on the
ground truth, and the box classifier's background plateau over training.

    python tools/probe_heads.py output/shapes-pretrained-s121314/frcnn/pkd/seed12 \\
        output/shapes-pretrained-s121314/frcnn/baseline/seed12 --dataset csgr_shapes_val

Per run folder (its config.yaml and model_final.pth; a Distiller's student is probed, its teacher
is not built): the share of ground-truth boxes some top-K proposal overlaps (IoU 0.5, 0.7), the
box classifier's accuracy on the ground-truth boxes pooled as ROIs, the share it calls
background, the mean probability of the true class; then, from its metrics.json, the
``fast_rcnn/false_negative`` (foreground ROIs called background) and ``fast_rcnn/fg_cls_accuracy``
of training every --every iterations (see csgr/benchmark/head_probe.py). --output writes both
as the docs' results file (docs/results/<name>.json, rendered by tools/render_docs.py).
"""

import argparse
import json
import os
import shlex
import sys

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.benchmark.head_probe import (
    load_trained_detector,
    plateau_trace,
    probe_heads,
    probe_tables,
)
from csgr.benchmark.provenance import provenance
from csgr.engine.user_modules import import_user_modules
from csgr.errors import one_line_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="trained run folders")
    parser.add_argument("--dataset", required=True, help="registered test set with annotations")
    parser.add_argument("--images", type=int, default=200, help="images probed (default 200)")
    parser.add_argument("--top-k", type=int, default=100, help="proposals counted per image")
    parser.add_argument("--every", type=int, default=100, help="training metrics every N its")
    parser.add_argument("--output", metavar="JSON", help="also write the tables to this file")
    parser.add_argument(
        "--register", action="append", default=[], help="module registering datasets (.py/name)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    command = "python tools/probe_heads.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(command)
    import_user_modules(args.register)
    results, traces = {}, {}
    for run in args.runs:
        detector, cfg = load_trained_detector(run)
        probe = probe_heads(detector, cfg, args.dataset, args.images, args.top_k)
        results[run] = probe.summary()
        shares = "  ".join(f"{k} {v:.3f}" for k, v in results[run].items())
        print(
            f"{run}: {probe.objects} objects in {probe.images} images of {args.dataset}: {shares}"
        )
        traces[run] = plateau_trace(run, args.every)
        for row in traces[run]:
            metrics = "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "iteration")
            print(f"    it {row['iteration']}  {metrics}")
    if args.output:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        data = {
            "provenance": provenance(root, command, dataset=args.dataset, images=args.images),
            "tables": probe_tables(results, traces),
        }
        with open(args.output, "w") as f:
            json.dump(data, f, indent=1)
        print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    with one_line_errors():
        main()
