"""What produced a benchmark's results: the command, the code's commit, the machine, the date.

Written into each ``results.json`` (``provenance``) so that a results file copied to
``docs/results/`` says where its figures come from.
"""

import datetime
import os
import platform
import subprocess
from typing import Optional

__all__ = ["cpu_model", "git_commit", "machine", "provenance"]


def git_commit(root: str) -> Optional[str]:
    """``git rev-parse HEAD`` of ``root`` (with "+dirty" when tracked files differ), or None
    outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """CPU model and count, and the GPU when CUDA is available, e.g. "Intel(R) Xeon(R) ...,
    2 CPUs; torch 2.4.1"."""
    import torch

    text = f"{cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__}"
    if torch.cuda.is_available():
        text += f"; {torch.cuda.get_device_name(0)}"
    return text


def provenance(root: str, command: str, **facts) -> dict:
    """``{"command", "commit", "machine", "date", **facts}`` (date: UTC, ISO 8601)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "command": command,
        "commit": git_commit(root),
        "machine": machine(),
        "date": now.isoformat(),
        **facts,
    }
