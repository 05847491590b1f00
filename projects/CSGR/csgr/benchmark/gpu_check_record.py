"""What one part of the GPU check has finished, kept on disk as it goes.

A part (tests, speed, criss-cross, NCCL launch) runs in its own process under a time limit. It
records each unit of work (one test, one model and precision, one level) in a
:class:`PartRecord`, which rewrites the part's JSON file atomically after every unit: when the
process is killed at its limit, the file still holds every unit it finished.

Statuses of a unit: ``done``, ``passed``, ``failed``, ``error``, ``skipped`` (with a reason),
``not run`` (out of time). Statuses of a part (:func:`part_status`): ``done``, ``failed`` (a unit
failed or raised), ``partial`` (units left out of time), ``timeout`` (killed at its limit),
``error`` (the part itself raised or exited non-zero), ``skipped`` (the part does not apply).
:func:`run_process_group` runs a part (or a launch inside one) and kills it with its children.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import traceback
from typing import List, Optional

__all__ = [
    "PART_STATUSES",
    "PartRecord",
    "part_status",
    "write_json_atomic",
    "error_text",
    "run_process_group",
]

PART_STATUSES = ("done", "failed", "partial", "timeout", "error", "skipped")
_FAILING = ("failed", "error")


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half a file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def error_text(exc: BaseException, lines: int = 6) -> str:
    """The exception's type and message, then the last ``lines`` lines of its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    return f"{type(exc).__name__}: {exc}\n" + "\n".join(tb[-lines - 1 : -1])


def part_status(part: dict) -> str:
    """The status of a part from its own ``status`` (set when it stopped early) and its units."""
    if part.get("status") in ("timeout", "error", "skipped"):
        return part["status"]
    units = part.get("units", [])
    if any(u["status"] in _FAILING for u in units):
        return "failed"
    if any(u["status"] == "not run" for u in units):
        return "partial"
    return "done"


class PartRecord:
    """The units of one part, saved to ``path`` after each.

    Args:
        path: the part's JSON file.
        limit_s: the part's time limit; units are started only while they fit in it.
        margin_s: time kept free before the limit (process exit, last write).
    """

    def __init__(self, path: str, limit_s: float, margin_s: float = 5.0):
        self.path = path
        self.start = time.time()
        self.deadline = self.start + limit_s - margin_s
        self.data = {"status": "running", "units": []}
        self.save()

    def time_left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        self.data["wall_s"] = time.time() - self.start
        write_json_atomic(self.path, self.data)

    def set(self, **fields) -> None:
        """Set part-level fields (e.g. ``settings``, ``reason``) and save."""
        self.data.update(fields)
        self.save()

    def skip_part(self, reason: str) -> None:
        self.set(status="skipped", reason=reason)

    def add(self, name: str, status: str, **fields) -> dict:
        """Record a finished unit."""
        unit = {"name": name, "status": status, **fields}
        self.data["units"].append(unit)
        self.save()
        return unit

    def fits(self, name: str, estimate_s: Optional[float]) -> bool:
        """Whether a unit expected to take ``estimate_s`` fits in the time left; if not, it is
        recorded as ``not run`` with the reason."""
        left = self.time_left()
        if estimate_s is None or estimate_s <= left:
            return left > 0
        reason = f"out of time: {left:.0f} s left, about {estimate_s:.0f} s needed"
        self.add(name, "not run", note=reason)
        return False

    @contextlib.contextmanager
    def unit(self, name: str):
        """Run one unit: yields its dict to fill; its status is ``done`` unless set, ``error``
        (with the traceback's end) if the body raises. The part goes on either way."""
        unit = {"name": name, "status": "running"}
        self.data["units"].append(unit)
        self.save()
        start = time.time()
        try:
            yield unit
            if unit["status"] == "running":
                unit["status"] = "done"
        except Exception as e:  # recorded; the next unit still runs
            unit["status"], unit["error"] = "error", error_text(e)
        unit["wall_s"] = time.time() - start
        _release_memory()
        self.save()

    def finish(self) -> None:
        self.data["status"] = part_status(self.data)
        self.save()


def _release_memory() -> None:
    """Free what a finished unit left (its models), so the next unit's peak memory is its own."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def run_process_group(
    cmd: List[str], timeout_s: float, log_path: str, **popen_kwargs
) -> Optional[int]:
    """Run ``cmd`` in a new process group, its output appended to ``log_path``; on timeout kill
    the whole group (its own children too, e.g. launched training processes).

    Returns:
        The exit status, or None when it was killed at ``timeout_s``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen_kwargs
        )
        try:
            return proc.wait(timeout=max(timeout_s, 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
