"""The measuring parts of the GPU check, each run in its own process by :mod:`.gpu_check`:

    python -m csgr.benchmark.gpu_check_parts PART PLAN_JSON OUTPUT_JSON LIMIT_S

``PLAN_JSON`` is the part's plan (:func:`.gpu_check.part_plans`); the part records each unit in
``OUTPUT_JSON`` as it finishes (:class:`.gpu_check_record.PartRecord`) and starts a unit only
while the time left is at least what the same kind of unit took before. Run from the repository
root (config paths are relative to it).
"""

import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
from typing import Dict, Optional

from .gpu_check_record import PartRecord, error_text, run_process_group

__all__ = ["run_speed", "run_criss_cross", "run_nccl", "PART_RUNNERS", "main"]


def _settings(cls, plan: dict, **fields):
    """A settings dataclass ``cls`` from the plan's keys that are its fields, then ``fields``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in plan.items() if k in names}, **fields})


def _amp_unavailable(config_file: str, precision: str, device: str) -> Optional[str]:
    """Why the trainer cannot run AMP in ``precision`` on ``device`` (None if it can)."""
    from ..engine.loop import amp_dtype
    from .steps import load_distill_cfg, with_amp

    cfg = load_distill_cfg(config_file, ["SOLVER.AMP.PRECISION", precision], device)
    try:
        amp_dtype(with_amp(cfg, True))
    except ValueError as e:
        return str(e)
    return None


def run_speed(plan: dict, record: PartRecord) -> None:
    """Per detector and precision, :func:`.distill_speed.run_speed_benchmark` (every case of
    one detector and precision interleaved in the same rounds)."""
    from ..modeling.losses import method_names
    from .distill_speed import SpeedSettings, csgr_goals, run_speed_benchmark

    device, methods = plan["device"], plan["methods"] or method_names()
    estimate = None
    for run in plan["runs"]:
        detector, config_file, precision = run["detector"], run["config"], run["precision"]
        amp = precision != "fp32"
        name = f"{detector} {'AMP ' + precision if amp else precision}"
        reason = _amp_unavailable(config_file, precision, device) if amp else None
        if reason:
            record.add(name, "skipped", note=reason)
            continue
        if not record.fits(name, estimate):
            continue
        with record.unit(name) as unit:
            settings = _settings(
                SpeedSettings,
                plan,
                config_file=config_file,
                opts=["SOLVER.AMP.PRECISION", precision] if amp else [],
                methods=methods,
                precisions=["amp" if amp else "fp32"],
            )
            result = run_speed_benchmark(settings)
            rows = result["results"]["amp" if amp else "fp32"]
            unit.update(run, rows=rows, meta=result["meta"])
            goals = csgr_goals(rows)
            if goals:
                unit["csgr_ratio"] = goals["(c)/((a)+(b)) for CSGR"][0]
        estimate = unit.get("wall_s")


def run_criss_cross(plan: dict, record: PartRecord) -> None:
    """Per dtype and level, :func:`.criss_cross.benchmark_level` (criss-cross, its previous
    version, a GEMM and, up to ``skip_dense_above`` positions, the dense attention)."""
    from .criss_cross import CrissCrossSettings, benchmark_level, level_size

    estimates: Dict[str, float] = {}
    for dtype in plan["dtypes"]:
        for level in plan["levels"]:
            name = f"{level} {dtype}"
            if not record.fits(name, estimates.get(level)):
                continue
            settings = _settings(CrissCrossSettings, plan, levels=[level], dtype=dtype)
            with record.unit(name) as unit:
                unit.update(level=level, dtype=dtype)
                h, w = level_size(level, plan["scale"])
                if h * w > plan["skip_dense_above"]:
                    unit["dense_note"] = (
                        f"dense not run: {h * w} positions, (HW)^2 = {(h * w) ** 2 / 1e9:.1f}e9 "
                        "entries per attention matrix"
                    )
                unit["row"] = benchmark_level(level, settings)
            estimates[level] = unit.get("wall_s", 0.0)


def _last_metrics(output_dir: str) -> dict:
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[-1] if lines else {}


def run_nccl(plan: dict, record: PartRecord) -> None:
    """``tools/train_net.py --num-gpus N --dist-url auto`` on a small generated shapes dataset
    with a random teacher: NCCL on CUDA (needs N GPUs), gloo on the CPU."""
    import torch

    from ..data.datasets import generate_shapes_dataset
    from .gpu_check import ROOT
    from .steps import load_distill_cfg, save_random_teacher

    device, procs = plan["device"], plan["processes"]
    env = dict(os.environ)
    if device == "cuda":
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found < procs:
            record.skip_part(f"needs {procs} CUDA devices, this machine has {found}")
            return
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""  # Detectron2's launch picks gloo only without CUDA
    backend = "NCCL" if device == "cuda" else "gloo"
    with tempfile.TemporaryDirectory(prefix="csgr_gpu_check_") as tmp:
        size, images = plan["image_size"], plan["images"]
        data = os.path.join(tmp, "csgr_shapes")
        generate_shapes_dataset(data, num_train=images, num_val=2, image_size=size)
        teacher = os.path.join(tmp, "teacher.pth")
        save_random_teacher(load_distill_cfg(plan["config"], [], device), teacher)
        out = os.path.join(tmp, "run")
        cmd = [sys.executable, "tools/train_net.py", "--config-file", plan["config"]]
        cmd += ["--num-gpus", str(procs), "--dist-url", "auto"]
        cmd += ["MODEL.DEVICE", device, "MODEL.DISTILL.TEACHER.WEIGHTS", teacher]
        cmd += ["OUTPUT_DIR", out, "SOLVER.MAX_ITER", str(plan["iters"]), "DATASETS.TEST", "()"]
        cmd += ["SOLVER.IMS_PER_BATCH", str(2 * procs), "DATALOADER.NUM_WORKERS", "0"]
        cmd += ["INPUT.MIN_SIZE_TRAIN", f"({size},)", "INPUT.MAX_SIZE_TRAIN", str(size)]
        env["DETECTRON2_DATASETS"] = tmp
        with record.unit(f"{procs} processes, {backend}") as unit:
            unit["command"] = shlex.join(cmd[1:])
            log = os.path.join(tmp, "launch.log")
            returncode = run_process_group(cmd, record.time_left(), log, cwd=ROOT, env=env)
            metrics = _last_metrics(out)
            losses = {k: v for k, v in metrics.items() if k.startswith("loss_")}
            unit.update(backend=backend, exit_status=returncode, losses=losses)
            unit["iterations"] = metrics.get("iteration", -1) + 1
            unit["total_loss"] = metrics.get("total_loss")
            unit["s_per_iter"] = metrics.get("time")
            finite = losses and all(math.isfinite(v) for v in losses.values())
            if returncode != 0 or not finite or unit["iterations"] != plan["iters"]:
                unit["status"] = "failed" if returncode is not None else "timeout"
                with open(log, errors="replace") as f:
                    unit["log_tail"] = "".join(f.readlines()[-15:])


def _run_tests(plan: dict, record: PartRecord) -> None:
    from .gpu_check_pytest import run_tests

    run_tests(plan, record)


PART_RUNNERS = {
    "tests": _run_tests,
    "speed": run_speed,
    "criss_cross": run_criss_cross,
    "nccl": run_nccl,
}


def main(argv=None) -> int:
    name, plan_json, output, limit = sys.argv[1:] if argv is None else argv
    record = PartRecord(output, float(limit))
    try:
        PART_RUNNERS[name](json.loads(plan_json), record)
    except Exception as e:
        record.set(status="error", error=error_text(e))
        return 1
    record.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
