"""Bar charts of accuracy results files (``docs/images/results/<name>.png``), drawn with the
accuracy benchmark's own chart. PNG bytes differ across matplotlib versions, so charts are
written on request (``tools/render_docs.py --charts``) and not checked."""

import glob
import os
from typing import List

from ..benchmark.accuracy_report import bar_chart
from .results import METRICS, RESULTS_DIR, AccuracyResults, load_results

__all__ = ["CHARTS_DIR", "write_charts"]

CHARTS_DIR = os.path.join("docs", "images", "results")


def write_charts(root: str) -> List[str]:
    """A chart per accuracy results file with more than one student seed; returns the paths."""
    out_dir = os.path.join(root, CHARTS_DIR)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in sorted(glob.glob(os.path.join(root, RESULTS_DIR, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        data = load_results(root, name)
        seeds = data.get("provenance", {}).get("seeds", [])
        if "results" not in data or "meta" in data or len(seeds) < 2:
            continue
        res = AccuracyResults(data)
        agg = {
            label: {m: res.stat(label, m) for m in METRICS}
            for label in res.labels
            if res.seeds(label) and len(res.seeds(label)) > 1 or label == "teacher"
        }
        prov = data.get("provenance", {})
        title = f"{prov.get('suite', name)} {data.get('display', {}).get('name', '')}".strip()
        title += f"\nseeds {', '.join(str(s) for s in seeds)}; {prov.get('split', '')}"
        target = os.path.join(out_dir, name + ".png")
        bar_chart(agg, target, title)
        written.append(target)
    return written
