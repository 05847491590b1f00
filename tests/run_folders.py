"""Run folders as training leaves them, for the tests of what reads them (release, resume
checks): weights with the optimizer state, config.yaml and metrics.json."""

import json
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler, build_optimizer
from tiny_models import distill_cfg

METRICS = [
    {"iteration": 0, "total_loss": 3.0, "loss_cls": 1.0, "loss_csgr_cat": 0.5, "time": 0.25},
    {"iteration": 1, "total_loss": 2.0, "loss_cls": 0.8, "loss_csgr_cat": 0.4, "time": 0.35},
    {"iteration": 1, "bbox/AP": 12.5, "bbox/AP50": 30.0},
]


def write_metrics(run_dir, records):
    """Write ``records`` (dicts) as ``run_dir``'s metrics.json, one JSON line each."""
    with open(os.path.join(run_dir, "metrics.json"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def make_distill_run(tmp_path, student_arch="GeneralizedRCNN"):
    """A Distiller run folder as training leaves it: model_final.pth (with the optimizer, the
    scheduler and the iteration), config.yaml and metrics.json.

    Returns:
        (run folder, config, the Distiller holding the saved weights)
    """
    teacher_dir, run_dir = tmp_path / "teacher", tmp_path / "run"
    teacher_dir.mkdir()
    run_dir.mkdir()
    cfg = distill_cfg(str(teacher_dir), student_arch)
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # momentum buffers in the optimizer state
    torch.manual_seed(7)
    with torch.no_grad():  # weights that no fresh initialisation reproduces
        for p in model.student.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    checkpointer = DetectionCheckpointer(
        model, str(run_dir), optimizer=optimizer, scheduler=scheduler
    )
    checkpointer.save("model_final", iteration=3)
    (run_dir / "config.yaml").write_text(cfg.dump())
    write_metrics(run_dir, METRICS)
    return str(run_dir), cfg, model.eval()
