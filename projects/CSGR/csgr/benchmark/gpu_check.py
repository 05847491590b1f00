"""The GPU check: everything worth knowing about the CUDA paths, in one run of a few minutes.

Four parts run in this order, each in its own process under its own time limit (a share of the
budget; time a part leaves unused goes to the parts after it, so the speed part, whose runs are
the longest, comes last):

* ``tests``: the suite's tests marked ``cuda`` (``pytest -m cuda``), pass/fail per test;
* ``criss_cross``: the criss-cross layer at P2-P6 of 800x1333 against dense attention
  (:mod:`.criss_cross`), float32 and float16 autocast;
* ``nccl``: ``tools/train_net.py --num-gpus 2`` for a few iterations (with two GPUs; skipped and
  said otherwise);
* ``speed``: the distillation step of every method against the student's step and the teacher's
  forward (:mod:`.distill_speed`), R50-FPN student / R101-FPN teacher, 800x1333, batch 2, random
  weights, Faster R-CNN and RetinaNet, fp32 and AMP (float16 with the GradScaler).

A part records each unit as it finishes (:mod:`.gpu_check_record`), so a part stopped at its limit
still reports what it did. The results (with the machine's provenance) are written as JSON after
every part, and :func:`render_gpu_section` renders them as markdown.

The dry run (``device="cpu"``, ``quick=True``) runs the same code on tiny sizes: tiny levels and
images, Shapes configs, two gloo processes; float16 with a GradScaler is reported as skipped.
"""

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from .gpu_check_record import run_process_group, write_json_atomic
from .gpu_check_report import render_gpu_section

__all__ = [
    "ROOT",
    "PARTS",
    "RESULTS_FILE",
    "GpuCheckSettings",
    "part_plans",
    "run_part",
    "run_gpu_check",
    "load_results",
    "render_gpu_section",
]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
RESULTS_FILE = os.path.join("docs", "results", "gpu_check.json")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Part:
    """One part of the check: its title, its share of the time budget, what it checks."""

    title: str
    share: float
    checks: str


PARTS: Dict[str, Part] = {
    "tests": Part(
        "CUDA tests",
        0.25,
        "the suite's tests marked cuda (pytest -m cuda): criss-cross against the dense "
        "reference, every method under fp16/bf16 autocast, the GradScaler step, the NaN guard, "
        "the loss scale, the NaN guard under NCCL (2 GPUs)",
    ),
    "criss_cross": Part(
        "Criss-cross attention",
        0.15,
        "the criss-cross layer at P2-P6 of 800x1333 against dense attention (ms, peak MiB, "
        "max difference), float32 and float16",
    ),
    "nccl": Part(
        "Two-process launch",
        0.15,
        "tools/train_net.py --num-gpus 2 for a few iterations (NCCL; needs 2 GPUs)",
    ),
    "speed": Part(
        "Training step speed",
        0.45,
        "student step, teacher forward and each method's step, R50-FPN student / R101-FPN "
        "teacher, 800x1333, batch 2, Faster R-CNN and RetinaNet, fp32 and AMP float16, with "
        "peak memory",
    ),
}

_SHAPES = "configs/Shapes/csgr_{}_r18_r34.yaml"
_SODA = "configs/SODA10M/csgr_{}_r50_r101_1x.yaml"


@dataclass
class GpuCheckSettings:
    """What ``tools/gpu_check.py`` runs.

    Attributes:
        device: "cuda", or "cpu" for the dry run.
        quick: tiny sizes (the dry run; also a quick smoke test on a GPU).
        budget_s: the wall-clock budget of all parts together.
        parts: the parts to run, in order (default: all).
        output: the results JSON (default: :data:`RESULTS_FILE` for a full CUDA run, else
            ``<work_dir>/gpu_check.json``).
        work_dir: part files and logs.
        command: the command line, for the provenance.
        setup_s: seconds the setup took before (``tools/gpu_check.sh``), for the report.
    """

    device: str = "cuda"
    quick: bool = False
    budget_s: float = 480.0
    parts: List[str] = field(default_factory=lambda: list(PARTS))
    output: str = ""
    work_dir: str = os.path.join("output", "gpu_check")
    command: str = ""
    setup_s: Optional[float] = None

    def output_path(self) -> str:
        if self.output:
            return self.output
        if self.device == "cuda" and not self.quick:
            return os.path.join(ROOT, RESULTS_FILE)
        return os.path.join(self.work_dir, "gpu_check.json")


def part_plans(settings: GpuCheckSettings) -> Dict[str, dict]:
    """What each part measures (sizes, configs, precisions), as JSON-ready dicts."""
    quick, device = settings.quick, settings.device
    pick = _SHAPES if quick else _SODA
    frcnn = ("Faster R-CNN", pick.format("frcnn"))
    retinanet = ("RetinaNet", pick.format("retinanet"))
    # AMP "float16" is the trainer's default (with its GradScaler); the dry run runs bfloat16
    # and reports float16 as skipped on the CPU.
    runs = [(*frcnn, "fp32"), (*frcnn, "float16"), (*retinanet, "fp32"), (*retinanet, "float16")]
    if quick:
        runs = [(*frcnn, "fp32"), (*frcnn, "float16"), (*retinanet, "bfloat16")]
    speed = {
        "runs": [dict(zip(("detector", "config", "precision"), run)) for run in runs],
        "height": 64 if quick else 800,
        "width": 96 if quick else 1333,
        "batch": 2,
        "repeats": 1 if quick else 5,
        "warmup": 0 if quick else 1,
        "methods": ["CSGR"] if quick else None,  # None: every registered method
    }
    criss_cross = {
        "levels": ["p2", "p3", "p4", "p5", "p6"],
        "dtypes": ["float32", "float16"],
        "scale": 0.05 if quick else 1.0,
        "channels": 16 if quick else 256,
        "repeats": 1 if quick else 5,
        "gemm_size": 64 if quick else 2048,
        "skip_dense_above": 20000,  # P2 (66800 positions) dense: > 50 GB of HW x HW tensors
    }
    nccl = {
        "config": _SHAPES.format("frcnn"),
        "processes": 2,
        "iters": 2 if quick else 10,
        "image_size": 64 if quick else 128,
        "images": 8 if quick else 32,
    }
    plans = {"tests": {"marker": "cuda", "paths": _cuda_test_files() if quick else ["tests"]}}
    plans.update(speed=speed, criss_cross=criss_cross, nccl=nccl)
    for plan in plans.values():
        plan["device"] = device
    return plans


def _cuda_test_files() -> List[str]:
    """The test files that mark tests ``cuda``, in every folder of tests/ (the dry run collects
    only these)."""
    marked = []
    for folder, _, names in os.walk(os.path.join(ROOT, "tests")):
        for name in names:
            if not (name.startswith("test_") and name.endswith(".py")):
                continue
            with open(os.path.join(folder, name)) as f:
                if "pytest.mark.cuda" in f.read():
                    marked.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return sorted(marked)


def run_part(name: str, plan: dict, limit_s: float, work_dir: str) -> dict:
    """Run one part (:mod:`.gpu_check_parts`) in its own process group, killed at ``limit_s``.

    Returns:
        dict: the part's record (:class:`.gpu_check_record.PartRecord`), with its status
        completed (``timeout`` when killed, ``error`` when the process failed; the unit it was
        in is marked the same), its title, limit, wall time, plan and log file.
    """
    path = os.path.join(work_dir, f"{name}.json")
    log = os.path.join(work_dir, "logs", f"{name}.log")
    for previous in (path, log):  # a previous run's
        if os.path.exists(previous):
            os.remove(previous)
    cmd = [sys.executable, "-m", "csgr.benchmark.gpu_check_parts", name, json.dumps(plan)]
    cmd += [path, f"{limit_s:.1f}"]
    start = time.time()
    returncode = run_process_group(cmd, limit_s, log, cwd=ROOT)
    wall = time.time() - start
    record = {"status": "error", "units": []}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
    if returncode is None:
        record["status"] = "timeout"
        record["error"] = f"stopped at its limit of {limit_s:.3g} s"
    elif returncode != 0 and record.get("status") not in ("error", "skipped"):
        record["status"] = "error"
        record.setdefault("error", f"exit status {returncode}")
    for unit in record["units"]:
        if unit["status"] == "running":  # the unit the kill interrupted
            unit["status"] = "timeout" if returncode is None else "error"
    if record["status"] in ("error", "timeout"):
        record["log_tail"] = _tail(log)
    record.update(title=PARTS[name].title, limit_s=limit_s, wall_s=wall, plan=plan, log=log)
    return record


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_gpu_check(
    settings: GpuCheckSettings, progress: Callable[[str], None] = lambda line: None
) -> dict:
    """Run the parts of ``settings`` in order, each within its share of the remaining budget.

    Args:
        settings: what to run.
        progress: called with a line when each part starts and ends.

    Returns:
        dict: ``format``, ``provenance`` (:func:`.gpu_check_env.gpu_check_provenance`),
        ``settings``, ``parts`` (name -> record: ``status``, ``title``, ``units``, ``limit_s``,
        ``wall_s``, ``plan``, ``log``, and ``reason`` / ``error`` / ``log_tail`` where they
        apply), ``wall_s``. Also written to ``settings.output_path()`` after every part.
    """
    from .gpu_check_env import gpu_check_provenance

    unknown = [p for p in settings.parts if p not in PARTS]
    if unknown:
        raise KeyError(f"unknown parts {unknown}; the parts are {list(PARTS)}")
    start = time.time()
    work_dir = os.path.abspath(settings.work_dir)
    output = os.path.abspath(settings.output_path())
    for folder in (os.path.join(work_dir, "logs"), os.path.dirname(output)):
        os.makedirs(folder, exist_ok=True)
    plans = part_plans(settings)
    results = {
        "format": FORMAT_VERSION,
        "provenance": gpu_check_provenance(ROOT, settings.device, settings.command),
        "settings": dataclasses.asdict(settings),
        "parts": {},
    }
    for i, name in enumerate(settings.parts):
        left = settings.budget_s - (time.time() - start)
        shares = [PARTS[p].share for p in settings.parts[i:]]
        limit = max(1.0, left * shares[0] / sum(shares))
        progress(f"[gpu_check] {name}: {PARTS[name].title}, up to {limit:.0f} s")
        part = run_part(name, plans[name], limit, work_dir)
        progress(f"[gpu_check] {name}: {part['status']} in {part['wall_s']:.0f} s")
        results["parts"][name] = part
        results["wall_s"] = time.time() - start
        write_json_atomic(output, results)
    return results


def load_results(path: str) -> Optional[dict]:
    """The results file at ``path``, or None if there is none (nothing measured yet)."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
