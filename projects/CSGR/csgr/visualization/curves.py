"""Training curves of one or more runs from Detectron2's metrics.json, overlaid, as one PNG.

One panel per quantity: ``total_loss``, every ``loss_*`` term (the student's own and the
distillation terms, e.g. ``loss_csgr_cat``), and box AP (``bbox/AP``, or ``bbox/AP50`` for PASCAL
VOC) over iterations. Runs are overlaid and labelled, e.g. baseline vs distilled.
"""

import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..evaluation import read_metrics

__all__ = ["load_runs", "series", "curve_keys", "plot_curves", "figure_size"]

_AP_KEY = re.compile(r"(^|/)bbox/AP(50)?$")


def load_runs(specs: Sequence[str]) -> Dict[str, List[dict]]:
    """Metrics records by label.

    Args:
        specs: ``PATH`` or ``LABEL=PATH``; PATH is a metrics.json or a folder holding one. The
            default label is the folder's name.

    Raises:
        FileNotFoundError: naming the missing metrics.json.
    """
    runs = {}
    for spec in specs:
        label, _, path = spec.rpartition("=")
        if os.path.isdir(path):
            path = os.path.join(path, "metrics.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such metrics file {path!r} (from {spec!r})")
        label = label or os.path.basename(os.path.dirname(os.path.abspath(path)))
        while label in runs:
            label += "'"
        runs[label] = read_metrics(path)
    return runs


def series(records: Sequence[dict], key: str) -> Tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of the records that hold ``key`` (last value per iteration)."""
    points = {}
    for r in records:
        if key in r and "iteration" in r and r[key] is not None and math.isfinite(r[key]):
            points[int(r["iteration"])] = float(r[key])
    iters = sorted(points)
    return np.asarray(iters, dtype=np.int64), np.asarray([points[i] for i in iters])


def curve_keys(runs: Dict[str, List[dict]]) -> List[str]:
    """``total_loss``, the ``loss_*`` terms (sorted), then the box AP keys found in any run.

    AP50 keys are kept only where the matching AP key is absent (PASCAL VOC results have both).
    """
    present = {k for records in runs.values() for r in records for k in r}
    losses = sorted(k for k in present if k.startswith("loss_"))
    aps = sorted(k for k in present if _AP_KEY.search(k))
    aps = [k for k in aps if not (k.endswith("AP50") and k[:-2] in present)]
    return (["total_loss"] if "total_loss" in present else []) + losses + aps


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < 2:
        return values
    window = min(window, len(values))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def figure_size(num_panels: int, cols: int = 3, panel_px: Tuple[int, int] = (400, 300)) -> tuple:
    """(height, width) in pixels of the PNG :func:`plot_curves` writes for ``num_panels``."""
    cols = min(cols, num_panels)
    rows = math.ceil(num_panels / cols)
    return rows * panel_px[1], cols * panel_px[0]


def plot_curves(
    runs: Dict[str, List[dict]],
    output: str,
    keys: Optional[Sequence[str]] = None,
    cols: int = 3,
    smooth: int = 1,
    panel_px: Tuple[int, int] = (400, 300),
    dpi: int = 100,
) -> List[str]:
    """Plot the runs' curves into one PNG of :func:`figure_size` pixels.

    Args:
        runs: metrics records by label (see :func:`load_runs`).
        output: PNG path (its folder is created).
        keys: quantities to plot; default :func:`curve_keys`.
        cols: panels per row.
        smooth: moving-average window over logged points (losses only).
        panel_px: (width, height) of one panel in pixels.
        dpi: resolution of the figure.

    Returns:
        The plotted keys, in panel order.

    Raises:
        ValueError: no run holds any of the keys.
    """
    keys = list(keys) if keys else curve_keys(runs)
    if not keys:
        raise ValueError(f"the metrics of {sorted(runs)} hold no total_loss, loss_* or bbox/AP")
    height, width = figure_size(len(keys), cols, panel_px)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ncols = min(cols, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        is_ap = bool(_AP_KEY.search(key))
        for j, (label, records) in enumerate(runs.items()):
            iters, values = series(records, key)
            if len(iters) == 0:
                continue
            style = {"color": f"C{j % 10}", "label": label}  # one colour per run in every panel
            if is_ap or len(iters) < 30:
                style["marker"] = "o" if is_ap else "."
            ax.plot(iters, values if is_ap else _smooth(values, smooth), **style)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=dpi)
    return keys
