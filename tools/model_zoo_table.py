#!/usr/bin/env python
"""Write a model-zoo markdown table from run folders (config.yaml + metrics.json [+ release/]).

    python tools/model_zoo_table.py teacher=output/shapes/frcnn/teacher/seed1 \
        baseline=output/shapes/frcnn/baseline/seed1 output/shapes/frcnn/csgr/seed1 \
        --url-prefix https://example.org/csgr
    python tools/model_zoo_table.py csgr_frcnn_r18_r34=output/shapes/frcnn/csgr/seed1 ... --readme README.md

A run is PATH or NAME=PATH (NAME is the "config" column; default: the release name, else the
folder name). The gain of a distilled run is over the baseline among the runs: not distilled,
same student architecture, depth and datasets. Without --output or --readme, prints the table.
A test set whose registered evaluator_type is "pascal_voc" is reported in AP50, others in box AP:
--register my_datasets.py (or $CSGR_REGISTER) registers your datasets.
"""

import argparse
import sys

import csgr  # noqa: F401  registers the project's datasets (their evaluator_type)
from csgr.engine.user_modules import add_register_argument, import_user_modules
from csgr.release.model_zoo import model_zoo_table, read_run, replace_section


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="[NAME=]RUN", help="run folders")
    parser.add_argument("--url-prefix", default="", help="prefix of the download links")
    add_register_argument(parser)  # your datasets: their evaluator_type says AP or AP50
    parser.add_argument("--output", help="write the table to this markdown file")
    parser.add_argument(
        "--readme",
        help="replace the section between <!-- model-zoo:start --> and <!-- model-zoo:end --> "
        "in this file",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import_user_modules(args.register)
    runs = []
    for spec in args.runs:
        name, _, path = spec.rpartition("=")
        runs.append(read_run(path, name or None))
    table = model_zoo_table(runs, url_prefix=args.url_prefix)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")
    if args.readme:
        with open(args.readme) as f:
            text = f.read()
        with open(args.readme, "w") as f:
            f.write(replace_section(text, table, source=args.readme))
    if not (args.output or args.readme):
        sys.stdout.write(table + "\n")
    return table


if __name__ == "__main__":
    main()
