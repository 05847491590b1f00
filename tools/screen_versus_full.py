#!/usr/bin/env python
"""Compare a screen (tools/benchmark_accuracy.py --screen F --screen-only) with the full study of
the same methods: which methods it keeps against the full study's best, and the training it costs.

    python tools/screen_versus_full.py output/coral/frcnn/screen/results.json \
        docs/results/coral_frcnn.json --output docs/results/coral_frcnn_screen.json

Writes a results file of tables that tools/render_docs.py renders, and prints them.
"""

import argparse
import json
import shlex
import sys

from csgr.benchmark.screen_check import screen_versus_full
from csgr.docs_render.tables import generic_tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("screen", help="the screen's results.json (<study>/screen/results.json)")
    parser.add_argument("full", help="the full study's results file")
    parser.add_argument("--output", required=True, help="the comparison's results file")
    args = parser.parse_args(argv)
    with open(args.screen) as f:
        screen = json.load(f)
    with open(args.full) as f:
        full = json.load(f)
    block = screen["screen"]
    max_iter = round(block["iters"] / block["fraction"])
    words = sys.argv[1:] if argv is None else argv
    command = screen["provenance"]["command"] + "\npython tools/screen_versus_full.py "
    data = screen_versus_full(screen, full, max_iter, command + shlex.join(words))
    with open(args.output, "w") as f:
        json.dump(data, f, indent=1)
    print(generic_tables(data))
    return data


if __name__ == "__main__":
    main()
