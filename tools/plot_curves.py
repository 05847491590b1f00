#!/usr/bin/env python
"""Plot training curves of one or more runs (metrics.json) into one PNG, runs overlaid.

    python tools/plot_curves.py baseline=output/shapes/frcnn/baseline/seed1 csgr=output/shapes/frcnn/csgr/seed1 \
        --output output/shapes/frcnn/curves.png [--smooth 5] [--keys total_loss loss_csgr_cat]

A run is [LABEL=]PATH, PATH a metrics.json or its folder. Panels: total_loss, every loss_* term
(student and distillation terms), and bbox/AP (bbox/AP50 on PASCAL VOC) over iterations.
"""

import argparse

from csgr.visualization.curves import load_runs, plot_curves


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="[LABEL=]PATH", help="metrics.json or folder")
    parser.add_argument("--output", required=True, help="PNG file")
    parser.add_argument("--keys", nargs="+", help="quantities (default: losses and box AP)")
    parser.add_argument("--smooth", type=int, default=1, help="moving-average window of losses")
    parser.add_argument("--cols", type=int, default=3, help="panels per row")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    keys = plot_curves(
        load_runs(args.runs), args.output, keys=args.keys, cols=args.cols, smooth=args.smooth
    )
    print(f"Wrote {args.output}: {', '.join(keys)}")
    return keys


if __name__ == "__main__":
    main()
