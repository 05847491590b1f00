"""Live progress of training runs, read from the ``metrics.json`` each run writes.

A :class:`ProgressBoard` holds one row per planned run (teacher, students, ...). While runs
train, the experiment runner calls :meth:`ProgressBoard.refresh` now and then; each row reads the
new lines of its run's ``metrics.json`` (Detectron2's ``JSONWriter``, every 20 iterations by
default) and shows iteration / total, seconds per iteration, the run's ETA, the latest
``total_loss``, the whole job's ETA and, once evaluated, the run's AP.

In a terminal every run has its own tqdm bar (runs side by side each get a line). When the
output is not a terminal (CI logs, ``| tee``), the board prints one plain line per run at most
every ``interval`` seconds, and a line when a run starts, first reports its speed, ends or
fails.
"""

import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, TextIO, Tuple

from tqdm import tqdm

__all__ = [
    "LineTail",
    "MetricsTail",
    "RunRow",
    "ProgressBoard",
    "format_seconds",
    "inference_progress",
]


def format_seconds(seconds: Optional[float]) -> str:
    """``1h02m``, ``4m05s``, ``12s``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class LineTail:
    """Reads the complete lines a run appends to a file (a line being written is read on the
    next call); a file that shrinks (the run was restarted) is read again from its start."""

    def __init__(self, path: str):
        self.path = path
        self._offset = 0
        self._partial = ""

    def read_lines(self) -> List[str]:
        """The lines appended since the last call (possibly none), without their newline."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size < self._offset:
            self._offset, self._partial = 0, ""
        with open(self.path, errors="replace") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()  # "" when the chunk ended with a newline
        return lines


class MetricsTail(LineTail):
    """Reads the records a Detectron2 run appends to ``<output_dir>/metrics.json``."""

    def read_new(self) -> List[dict]:
        """The records appended since the last call (possibly none)."""
        records = []
        for line in self.read_lines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # not a metrics record; Detectron2 writes one JSON object a line
        return records


# Detectron2's inference_on_dataset logs "Inference done 107/200. ... ETA=0:02:18" every 5 s.
_INFERENCE = re.compile(r"Inference done (\d+)/(\d+)\..*ETA=(?:(\d+) days?, )?(\d+):(\d+):(\d+)")


def inference_progress(line: str) -> Optional[Tuple[int, int, float]]:
    """(images done, images in all, seconds left) of an evaluation's progress line of
    Detectron2's log, or None for another line."""
    found = _INFERENCE.search(line)
    if not found:
        return None
    done, total, days, h, m, sec = found.groups()
    eta = int(days or 0) * 86400 + int(h) * 3600 + int(m) * 60 + int(sec)
    return int(done), int(total), float(eta)


@dataclass
class RunRow:
    """What the board knows of one run.

    Attributes:
        name: label shown to the user, e.g. "CSGR seed 1".
        total: the run's SOLVER.MAX_ITER.
        stage: runs of one stage train side by side, stages one after the other (job ETA).
        state: "pending", "running", "done", "reused", "failed" or "diverged".
        iteration: iterations done (the last ``iteration`` in metrics.json, plus one).
        sec_per_it: Detectron2's smoothed ``time`` of the last record.
        total_loss: the last ``total_loss``.
        ap: ``bbox/AP`` once the run is evaluated.
        evaluation: (images done, images in all, seconds left) of the evaluation running now,
            from the run's ``log.txt``.
    """

    name: str
    total: int
    stage: int = 0
    output_dir: str = ""
    state: str = "pending"
    iteration: int = 0
    sec_per_it: Optional[float] = None
    total_loss: Optional[float] = None
    ap: Optional[float] = None
    started: Optional[float] = None
    evaluation: Optional[Tuple[int, int, float]] = None
    tail: Optional[MetricsTail] = field(default=None, repr=False)
    log_tail: Optional[LineTail] = field(default=None, repr=False)

    def update(self, records: List[dict]) -> None:
        for r in records:
            if "iteration" in r and "total_loss" in r:
                self.iteration = min(self.total, int(r["iteration"]) + 1)
                self.total_loss = float(r["total_loss"])
                if "time" in r:
                    self.sec_per_it = float(r["time"])
            if "bbox/AP" in r:
                self.ap = float(r["bbox/AP"])
                self.evaluation = None

    def update_log(self, lines: List[str]) -> None:
        """Evaluation progress from new lines of the run's log."""
        for line in lines:
            progress = inference_progress(line)
            if progress is not None:
                self.evaluation = progress

    def eta(self, fallback_sec_per_it: Optional[float] = None) -> Optional[float]:
        """Seconds left in training, plus those of the evaluation running now (evaluations to
        come not counted); None if unknown."""
        if self.state in ("done", "reused", "failed", "diverged"):
            return 0.0
        evaluating = self.evaluation[2] if self.evaluation is not None else 0.0
        if self.iteration >= self.total:
            return evaluating
        rate = self.sec_per_it if self.sec_per_it is not None else fallback_sec_per_it
        if rate is None:
            return None
        return (self.total - self.iteration) * rate + evaluating

    def describe(self) -> str:
        """Everything but the bar: ``0.94 s/it  loss 1.234  eta 4m23s`` or the result."""
        if self.state == "reused":
            return "reused" + (f"  AP {self.ap:.2f}" if self.ap is not None else "")
        if self.state in ("failed", "diverged"):
            return self.state.upper()
        parts = []
        if self.sec_per_it is not None:
            parts.append(f"{self.sec_per_it:.2f} s/it")
        if self.total_loss is not None:
            parts.append(f"loss {self.total_loss:.3f}")
        if self.state == "done":
            parts.append(f"AP {self.ap:.2f}" if self.ap is not None else "done")
        elif self.state == "running":
            if self.evaluation is not None:
                done, total, left = self.evaluation
                parts.append(f"evaluating {done}/{total} images, eta {format_seconds(left)}")
            elif self.iteration >= self.total:
                parts.append("evaluating")
            else:
                parts.append(f"eta {format_seconds(self.eta())}")
        else:
            parts.append("waiting")
        return "  ".join(parts)


class ProgressBoard:
    """One progress row per run; thread-safe (runs side by side refresh the same board).

    Args:
        stream: where to draw (default: stdout, where the tools print their results too).
        interactive: tqdm bars (True) or periodic plain lines (False); default: whether
            ``stream`` is a terminal.
        interval: seconds between two plain lines of the same run when not interactive.
        clock: time source (tests pass a fake one).
    """

    def __init__(
        self,
        stream: Optional[TextIO] = None,
        interactive: Optional[bool] = None,
        interval: float = 60.0,
        clock=time.monotonic,
    ):
        self.stream = stream if stream is not None else sys.stdout
        if interactive is None:
            interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interactive = interactive
        self.interval = interval
        self.clock = clock
        self.rows: Dict[str, RunRow] = {}
        self._bars: Dict[str, tqdm] = {}
        self._last_line: Dict[str, float] = {}
        self._measured = set()  # runs whose first measured line was printed
        self._unshown = set()  # runs with news not printed yet (plain lines)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ planning and events
    def add(self, key: str, name: str, total: int, stage: int = 0, output_dir: str = "") -> None:
        """Plan a run (shown as waiting until :meth:`start`)."""
        with self._lock:
            self.rows[key] = RunRow(name=name, total=int(total), stage=stage, output_dir=output_dir)

    def start(self, key: str) -> None:
        """The run's training process has started; its metrics.json is read from now on."""
        with self._lock:
            row = self.rows[key]
            row.state, row.started = "running", self.clock()
            row.tail = MetricsTail(os.path.join(row.output_dir, "metrics.json"))
            row.log_tail = LineTail(os.path.join(row.output_dir, "log.txt"))
            if self.interactive:
                self._bars[key] = tqdm(
                    total=row.total,
                    desc=row.name,
                    position=list(self.rows).index(key),
                    file=self.stream,
                    leave=True,
                    dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total}{postfix}",
                )
            self._draw(key, force=True)

    def finish(self, key: str, ap: Optional[float] = None, state: str = "done") -> None:
        """The run ended: ``state`` "done" (with its AP), "reused", "failed" or "diverged"."""
        with self._lock:
            row = self.rows[key]
            if row.tail is not None:
                row.update(row.tail.read_new())
            row.state = state
            if ap is not None:
                row.ap = ap
            if state == "done":
                row.iteration = row.total
            self._draw(key, force=True)
            bar = self._bars.pop(key, None)
            if bar is not None:
                bar.close()

    def refresh(self) -> None:
        """Read new metrics of every running run and redraw (call every second or so)."""
        with self._lock:
            for key, row in self.rows.items():
                if row.state == "running" and row.tail is not None:
                    records = row.tail.read_new()
                    row.update(records)
                    evaluation = row.evaluation
                    row.update_log(row.log_tail.read_lines())
                    changed = bool(records) or row.evaluation != evaluation
                    self._draw(key, force=False, changed=changed)

    def write(self, message: str) -> None:
        """Print a message without breaking the bars (use as the runner's ``log``)."""
        with self._lock:
            if self.interactive:
                tqdm.write(message, file=self.stream)
            else:
                self.stream.write(message + "\n")
                self.stream.flush()

    # ------------------------------------------------------------------ estimates and drawing
    def job_eta(self) -> Optional[float]:
        """Seconds left in the whole job: per stage the slowest run, stages added up. Runs not
        started yet are estimated with the slowest measured s/it (None if none is known)."""
        measured = [r.sec_per_it for r in self.rows.values() if r.sec_per_it is not None]
        fallback = max(measured) if measured else None
        total = 0.0
        for stage in sorted({r.stage for r in self.rows.values()}):
            etas = [r.eta(fallback) for r in self.rows.values() if r.stage == stage]
            if any(e is None for e in etas):
                return None
            total += max(etas, default=0.0)
        return total

    def line(self, key: str) -> str:
        """The plain-text line of a run: ``[name] it 120/400 (30%)  0.94 s/it ... | job eta``, or
        ``[name] reused  AP 12.34`` / ``[name] DIVERGED (recorded)`` for a run that did not train.
        """
        row = self.rows[key]
        if row.started is None and row.state != "pending":  # reused: no iteration to show
            recorded = " (recorded)" if row.state == "diverged" else ""
            return f"[{row.name}] {row.describe()}{recorded}"
        pct = 100.0 * row.iteration / max(row.total, 1)
        job = format_seconds(self.job_eta())
        return f"[{row.name}] it {row.iteration}/{row.total} ({pct:.0f}%)  {row.describe()}" + (
            f"  | job eta {job}" if row.state == "running" else ""
        )

    def _draw(self, key: str, force: bool, changed: bool = True) -> None:
        row = self.rows[key]
        if self.interactive:
            bar = self._bars.get(key)
            if bar is not None:
                bar.n = row.iteration
                job = format_seconds(self.job_eta())
                postfix = row.describe() + (f"  | job eta {job}" if row.state == "running" else "")
                bar.set_postfix_str(postfix, refresh=False)
                bar.refresh()
            elif force:  # reused or failed before a bar existed
                tqdm.write(self.line(key), file=self.stream)
            return
        if changed:
            self._unshown.add(key)
        now = self.clock()
        last = self._last_line.get(key)
        first_measure = row.sec_per_it is not None and key not in self._measured
        due = last is None or first_measure or now - last >= self.interval
        if force or (key in self._unshown and due):
            self._last_line[key] = now
            self._unshown.discard(key)
            if row.sec_per_it is not None:
                self._measured.add(key)
            self.stream.write(self.line(key) + "\n")
            self.stream.flush()
