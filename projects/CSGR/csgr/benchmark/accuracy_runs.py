"""Planning, running (or reusing) and reading the training runs of the accuracy benchmark.

Every run is ``tools/train_net.py`` in a fresh process, as a user would run it, on the offline
shapes configs: the teacher once, then per seed the baseline student and one student per method,
all students on the same schedule (``SOLVER.MAX_ITER``/``STEPS``), augmentation (the shared
``Base-Shapes.yaml``) and ``SEED``. Only ``MODEL.DISTILL.METHODS`` differs between students.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..config import load_config

__all__ = [
    "METRICS",
    "DETECTORS",
    "ACCURACY_METHODS",
    "Run",
    "plan_runs",
    "final_metrics",
    "run_or_reuse",
    "run_many",
]

METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
ACCURACY_METHODS = ["CSGR", "FGD", "PCD", "IKD", "DKD", "PKD", "CWD", "MGD", "MSE"]
# configs/Shapes/ names: teacher, baseline student, distilled student (by method).
DETECTORS = {
    "frcnn": ("faster_rcnn_R_34_FPN", "faster_rcnn_R_18_FPN", "{method}_frcnn_r18_r34"),
    "retinanet": ("retinanet_R_34_FPN", "retinanet_R_18_FPN", "{method}_retinanet_r18_r34"),
}
# Why a method has no config for a detector type.
NOT_APPLICABLE = {
    ("frcnn", "PCD"): "PCD distils RetinaNet dense-head outputs: RetinaNet only",
    ("retinanet", "DKD"): "DKD distils ROI classification logits: Faster R-CNN only",
}
STAMP = "csgr_benchmark_stamp.json"


@dataclass
class Run:
    """One training run: ``label`` (teacher, baseline or a method), ``seed`` and its command.

    ``depends_on`` names a file (the teacher's weights) whose content is part of the run's
    identity for ``--reuse``: a retrained teacher invalidates its students.
    """

    label: str
    seed: int
    config_file: str
    output_dir: str
    opts: List[str] = field(default_factory=list)
    depends_on: str = ""

    def command(self) -> List[str]:
        root = _repo_root()
        cmd = [sys.executable, os.path.join(root, "tools", "train_net.py")]
        return cmd + ["--config-file", self.config_file, "OUTPUT_DIR", self.output_dir, *self.opts]


def _repo_root() -> str:
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _config_path(name: str) -> str:
    return os.path.join("configs", "Shapes", name + ".yaml")


def schedule_opts(iters: Optional[int]) -> List[str]:
    """Opts for ``iters`` iterations with LR steps at 2/3 and 8/9 (none: the config's); steps
    that would fall outside (0, iters) or coincide, as in a tiny test schedule, are dropped."""
    if iters is None:
        return []
    steps = sorted({s for s in (iters * 2 // 3, iters * 8 // 9) if 0 < s < iters})
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", repr(tuple(steps))]


def plan_runs(
    detector: str,
    methods: List[str],
    seeds: List[int],
    output: str,
    iters: Optional[int] = None,
    teacher_iters: Optional[int] = None,
    teacher_seed: int = 1,
    teacher_weights: str = "",
    extra_opts: Tuple[str, ...] = (),
) -> Tuple[Optional[Run], List[Run], Dict[str, str]]:
    """The runs of a benchmark.

    Args:
        detector: "frcnn" or "retinanet".
        methods: method names (see :data:`ACCURACY_METHODS`).
        seeds: ``SEED`` of the students; each seed trains the baseline and every method.
        output: root folder; runs go to ``output/<detector>/<label>/seed<k>``.
        iters / teacher_iters: schedule lengths (None: the configs').
        teacher_seed: the teacher's ``SEED``.
        teacher_weights: an already trained teacher to use (then no teacher run is planned).
        extra_opts: ``KEY VALUE`` opts given to every run (teacher included).

    Returns:
        (teacher run or None, student runs, {skipped method: why}).
    """
    teacher_name, baseline_name, method_name = DETECTORS[detector]
    out = os.path.join(os.path.abspath(output), detector)
    extra = list(extra_opts)
    teacher = None
    if not teacher_weights:
        teacher_dir = os.path.join(out, "teacher", f"seed{teacher_seed}")
        teacher_opts = schedule_opts(teacher_iters) + ["SEED", str(teacher_seed)] + extra
        teacher = Run(
            "teacher", teacher_seed, _config_path(teacher_name), teacher_dir, teacher_opts
        )
        teacher_weights = os.path.join(teacher_dir, "model_final.pth")
    students, skipped = [], {}
    labels = [("baseline", baseline_name)]
    for method in methods:
        config = _config_path(method_name.format(method=method.lower()))
        if (detector, method) in NOT_APPLICABLE:
            skipped[method] = NOT_APPLICABLE[(detector, method)]
        elif not os.path.isfile(os.path.join(_repo_root(), config)):
            skipped[method] = f"no config {config}"
        else:
            labels.append((method, method_name.format(method=method.lower())))
    for seed in seeds:
        for label, name in labels:
            opts = schedule_opts(iters) + ["SEED", str(seed)]
            if label != "baseline":
                opts += ["MODEL.DISTILL.TEACHER.WEIGHTS", teacher_weights]
            run_dir = os.path.join(out, label.lower(), f"seed{seed}")
            depends = teacher_weights if label != "baseline" else ""
            students.append(Run(label, seed, _config_path(name), run_dir, opts + extra, depends))
    return teacher, students, skipped


def final_metrics(output_dir: str) -> Optional[Dict[str, float]]:
    """The last ``bbox/*`` evaluation of ``output_dir/metrics.json``; None if there is none."""
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    found = None
    with open(path) as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                if "bbox/AP" in record:
                    found = record
    if found is None:
        return None
    return {m: float(found.get(f"bbox/{m}", float("nan"))) for m in METRICS}


def config_digest(run: Run) -> str:
    """SHA-256 of the run's full merged config (``_BASE_`` files and opts resolved) and of the
    content of ``run.depends_on``."""
    cfg = load_config(run.config_file, ["OUTPUT_DIR", run.output_dir, *run.opts])
    digest = hashlib.sha256(cfg.dump().encode())
    if run.depends_on:
        with open(run.depends_on, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def run_or_reuse(
    run: Run, reuse: bool, log=print, threads: Optional[int] = None
) -> Tuple[Dict[str, float], float, bool]:
    """Train and evaluate ``run`` through tools/train_net.py, or reuse its finished results.

    A run is reused (with ``reuse``) when its folder has a bbox evaluation in metrics.json and a
    stamp of the same merged config; anything else trains again from scratch.

    Args:
        threads: ``OMP_NUM_THREADS`` of the training process (None: inherited).

    Returns:
        (metrics, wall seconds of the training, whether it was reused).

    Raises:
        RuntimeError: the training failed (the message ends with the log's last lines) or wrote
            no evaluation.
    """
    digest = config_digest(run)
    stamp_path = os.path.join(run.output_dir, STAMP)
    name = f"{run.label} seed {run.seed}"
    if reuse and os.path.isfile(stamp_path):
        with open(stamp_path) as f:
            stamp = json.load(f)
        metrics = final_metrics(run.output_dir)
        if stamp.get("config_sha256") == digest and metrics is not None:
            log(f"[{name}] reusing {run.output_dir}")
            return metrics, float(stamp.get("seconds", float("nan"))), True
    os.makedirs(run.output_dir, exist_ok=True)
    for stale in (STAMP, "metrics.json", "last_checkpoint"):
        if os.path.exists(os.path.join(run.output_dir, stale)):
            os.remove(os.path.join(run.output_dir, stale))
    log_path = os.path.join(run.output_dir, "stdout.log")
    log(f"[{name}] {' '.join(run.command()[1:])}  (log: {log_path})")
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    with open(log_path, "w") as f:
        proc = subprocess.run(
            run.command(), cwd=_repo_root(), stdout=f, stderr=subprocess.STDOUT, env=env
        )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-30:])
        raise RuntimeError(f"[{name}] failed (exit {proc.returncode}); end of {log_path}:\n{tail}")
    metrics = final_metrics(run.output_dir)
    if metrics is None:
        raise RuntimeError(f"[{name}] wrote no bbox evaluation to {run.output_dir}/metrics.json")
    with open(stamp_path, "w") as f:
        json.dump({"config_sha256": digest, "command": run.command(), "seconds": seconds}, f)
    log(f"[{name}] done in {seconds / 60:.1f} min: AP {metrics['AP']:.2f}")
    return metrics, seconds, False


def run_many(runs: List[Run], reuse: bool, jobs: int = 1, log=print) -> list:
    """:func:`run_or_reuse` for several runs, ``jobs`` of them at a time.

    With ``jobs > 1`` each process gets ``max(1, cpu_count // jobs)`` threads: on a small CPU two
    small trainings side by side use the cores better than one after the other. The runs are
    independent (different output folders); their results do not depend on ``jobs`` beyond the
    floating-point effects of the thread count.

    Returns:
        per run, in order: ``(metrics, seconds, reused)``, or the ``RuntimeError`` it raised.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def one(run):
        try:
            return run_or_reuse(run, reuse, log=log, threads=threads)
        except RuntimeError as e:
            return e

    if jobs == 1:
        return [one(run) for run in runs]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, runs))
