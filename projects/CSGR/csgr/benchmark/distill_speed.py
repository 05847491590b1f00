"""Speed and memory of distillation against the student's own step and the teacher's forward.

For one config and one input batch, in one process:

* (a) the student's training step alone (plain detector: forward, backward, optimizer step);
* (b) the teacher's backbone+FPN forward under no_grad (the Distiller's own code path);
* (c) the Distiller's training step with each method alone;
* the method's loss modules alone: forward + backward of the distillation terms down to leaf
  copies of the student tensors (see :func:`.steps.make_loss_step`).

All cases are timed round-robin (:func:`.measure.interleaved_times_ms`); peak memory is measured
in a separate, untimed run of each case. Every model stays in memory for the interleaved rounds,
so memory grows with the number of methods.
"""

import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from detectron2.utils.events import EventStorage

from ..modeling.losses import method_names
from ..config import num_classes
from . import steps
from .inputs import synthetic_batch
from .measure import MIB, interleaved_times_ms, load_average, median, peak_bytes

__all__ = ["SpeedSettings", "run_speed_benchmark", "csgr_goals"]


@dataclass
class SpeedSettings:
    """What the speed benchmark runs (the options of ``tools/benchmark_distill.py``)."""

    config_file: str
    opts: List[str] = field(default_factory=list)
    methods: List[str] = field(default_factory=method_names)
    height: int = 800
    width: int = 1333
    batch: int = 2
    repeats: int = 5
    warmup: int = 1
    device: str = "cpu"
    precisions: List[str] = field(default_factory=lambda: ["fp32"])
    teacher_weights: str = ""  # empty: random teacher weights written to a temporary file
    lr: float = 0.0
    seed: int = 0
    memory: bool = True


def _first_sentence(message: str) -> str:
    return message.split("; ")[0].strip()


def _build_cases(cfg, settings: SpeedSettings, batch):
    """Callables of every case, their models for the memory accounting, and skipped methods."""
    student = steps.build_student(cfg, settings.seed)
    cases = {"student": steps.make_train_step(student, cfg, batch)}
    models = {"student": (student, None)}
    plain = steps.build_teacher_holder(cfg, settings.seed)
    cases["teacher"] = steps.make_teacher_forward(plain, cfg, batch)
    models["teacher"] = (None, plain.teacher)
    skipped = {}
    for method in settings.methods:
        try:
            distiller = steps.build_distiller(cfg, [method], settings.seed)
        except ValueError as e:  # the method does not apply to this student or teacher
            skipped[method] = _first_sentence(str(e))
            continue
        cases[f"distill:{method}"] = steps.make_train_step(distiller, cfg, batch)
        models[f"distill:{method}"] = (distiller, distiller.teacher)
        cases[f"loss:{method}"] = steps.make_loss_step(distiller, cfg, batch)
    return cases, models, skipped


def _measure(cases, models, settings: SpeedSettings, device: torch.device) -> Dict[str, dict]:
    times = interleaved_times_ms(cases, device, settings.repeats, settings.warmup)
    out = {}
    for name, fn in cases.items():
        ms = times[name]
        out[name] = {"ms": median(ms), "min_ms": min(ms), "max_ms": max(ms), "times_ms": ms}
        if settings.memory:
            out[name]["peak_mib"] = peak_bytes(fn, device) / MIB
        model, teacher = models.get(name, (None, None))
        optimizer = getattr(fn, "optimizer", None)
        if model is not None or teacher is not None:
            own = steps.state_bytes(model, optimizer) if model is not None else 0
            frozen = steps.state_bytes(teacher) if teacher is not None else 0
            out[name]["state_mib"] = (own + frozen) / MIB
    return out


def _rows(measured: Dict[str, dict], settings: SpeedSettings, skipped: Dict[str, str]):
    a, b = measured["student"], measured["teacher"]
    ab = a["ms"] + b["ms"]
    images = settings.batch
    rows = [dict(case="(a) student step", **a), dict(case="(b) teacher backbone+FPN", **b)]
    rows.append({"case": "(a)+(b)", "ms": ab})
    for method in settings.methods:
        if method in skipped:
            rows.append({"case": f"(c) {method}", "method": method, "note": skipped[method]})
            continue
        c = measured[f"distill:{method}"]
        row = dict(case=f"(c) {method}", method=method, **c)
        row["ratio"] = c["ms"] / ab
        row["residual_share"] = (c["ms"] - ab) / a["ms"]
        loss = measured.get(f"loss:{method}")
        if loss is not None:
            row["loss_ms"] = loss["ms"]
            row["loss_share"] = loss["ms"] / a["ms"]
            row["loss_peak_mib"] = loss.get("peak_mib", float("nan"))
        rows.append(row)
    for row in rows:
        if "ms" in row and row["case"] != "(a)+(b)":
            row["images_per_s"] = images * 1e3 / row["ms"]
    return rows


def run_speed_benchmark(settings: SpeedSettings) -> dict:
    """Run the benchmark.

    Returns:
        dict: ``meta`` (settings, device, threads, load averages) and ``results``: for each
        precision ("fp32", "amp"), a list of row dicts (keys: case, ms, min_ms, max_ms,
        images_per_s, peak_mib, state_mib; for methods also ratio = (c)/((a)+(b)), loss_ms,
        loss_share = loss_ms/(a), residual_share = ((c)-(a)-(b))/(a), or a note when skipped).
    """
    unknown = [m for m in settings.methods if m not in method_names()]
    if unknown:
        raise KeyError(f"unknown methods {unknown}; registered: {method_names()}")
    device = torch.device(settings.device)
    meta = {"load_before": load_average(), "threads": torch.get_num_threads()}
    meta["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = {}
    # detectors log to an EventStorage during training forwards
    with tempfile.TemporaryDirectory(prefix="csgr_bench_") as tmp, EventStorage(0):
        cfg = steps.load_distill_cfg(settings.config_file, settings.opts, settings.device)
        cfg.SOLVER.BASE_LR = settings.lr
        if settings.teacher_weights:
            cfg.MODEL.DISTILL.TEACHER.WEIGHTS = settings.teacher_weights
            meta["teacher_weights"] = settings.teacher_weights
        else:
            path = os.path.join(tmp, "random_teacher.pth")
            steps.save_random_teacher(cfg, path, settings.seed)
            cfg.MODEL.DISTILL.TEACHER.WEIGHTS = path
            meta["teacher_weights"] = "random (saved to a temporary file)"
        meta["student"] = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
        meta["amp_precision"] = cfg.SOLVER.AMP.PRECISION
        meta["teacher_config"] = cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE
        batch = synthetic_batch(
            settings.batch, settings.height, settings.width, num_classes(cfg), seed=settings.seed
        )
        for precision in settings.precisions:
            run_cfg = steps.with_amp(cfg, precision == "amp")
            cases, models, skipped = _build_cases(run_cfg, settings, batch)
            measured = _measure(cases, models, settings, device)
            results[precision] = _rows(measured, settings, skipped)
            del cases, models
    meta["load_after"] = load_average()
    return {"meta": meta, "settings": vars(settings), "results": results}


def csgr_goals(rows: List[dict]) -> Optional[Dict[str, tuple]]:
    """The CSGR goals against the rows of one precision: ``{goal: (value, target, met)}``."""
    row = next((r for r in rows if r.get("method") == "CSGR" and "ratio" in r), None)
    if row is None:
        return None
    goals = {"(c)/((a)+(b)) for CSGR": (row["ratio"], 1.05, row["ratio"] <= 1.05)}
    if "loss_share" in row:
        share = row["loss_share"]
        goals["CSGR losses fwd+bwd / (a)"] = (share, 0.05, share <= 0.05)
    return goals
