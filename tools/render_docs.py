#!/usr/bin/env python
"""Render the tables of README.md, BENCHMARKS.md and docs/ from their data.

Every block between ``<!-- results:<spec> start -->`` and ``<!-- results:<spec> end -->`` is
rewritten from ``docs/results/<name>.json`` (benchmark results with their provenance) or from
the method registry (methods table, keys, BibTeX); see ``csgr.docs_render``.

    python tools/render_docs.py            # rewrite the blocks in place
    python tools/render_docs.py --check    # exit 1, listing the blocks that differ
    python tools/render_docs.py --charts   # also draw docs/images/results/<name>.png
"""

import argparse
import os
import sys

from csgr.docs_render import check_files, doc_files, render_file
from csgr.docs_render.charts import write_charts

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks")
    parser.add_argument("--charts", action="store_true", help="also draw the accuracy charts")
    parser.add_argument("files", nargs="*", help="markdown files (default: every doc file)")
    args = parser.parse_args(argv)
    files = [os.path.abspath(f) for f in args.files] or doc_files(ROOT)
    if args.check:
        stale = check_files(ROOT, files)
        for path, line, spec in stale:
            print(f"{path}:{line}: block 'results:{spec}' differs from its data")
        if stale:
            print("run `python tools/render_docs.py` to render them")
        return 1 if stale else 0
    for path in files:
        if render_file(ROOT, path):
            print(f"rendered {os.path.relpath(path, ROOT)}")
    if args.charts:
        for path in write_charts(ROOT):
            print(f"drew {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
