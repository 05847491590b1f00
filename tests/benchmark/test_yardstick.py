"""The loss-scale yardstick measurement: ratios of loss values and of feature gradients."""

import math

import pytest
import torch
from tiny_models import ROOT, distill_cfg, load_tool, random_batch

from csgr.benchmark.yardstick import YardstickRow, feature_grad_norm, measure_method
from csgr.data.datasets import generate_shapes_dataset
from csgr.modeling import build_detector
from csgr.config import load_config
from detectron2.modeling import build_model


def test_feature_grad_norm_matches_hand_gradient():
    a = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    loss = 3.0 * a.pow(2).sum() + b.sum()  # d/da = 6a, d/db = 1
    expected = math.sqrt((6 * a.detach()).pow(2).sum().item() + b.numel())
    assert feature_grad_norm(loss, [a, b]) == pytest.approx(expected, rel=1e-12)


def _ratios(model, batches):
    torch.manual_seed(0)  # same proposal sampling in every call
    row = measure_method(model, batches)
    return row.loss_ratios, row.grad_ratios


@pytest.mark.parametrize("method", ["MSE", "CSGR"])
def test_ratios_scale_with_the_method_weight(tmp_path, method):
    """Both ratios are the method's, relative to the detection loss: doubling every weight of
    the method doubles them exactly (a power of two), and the detection side is unchanged."""
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.METHODS = [method]
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batches = [random_batch(seed=s) for s in (1, 2)]
    loss_1, grad_1 = _ratios(model, batches)
    assert all(r > 0 and math.isfinite(r) for r in loss_1 + grad_1)
    module = model.distill_losses[method]
    for name in ("weight", "cat_weight", "rel_weight"):
        if hasattr(module, name):
            setattr(module, name, 2 * getattr(module, name))
    loss_2, grad_2 = _ratios(model, batches)
    assert loss_2 == pytest.approx([2 * r for r in loss_1], rel=1e-6)
    assert grad_2 == pytest.approx([2 * r for r in grad_1], rel=1e-6)


def test_summary_pull_after_loss_calibration():
    row = YardstickRow("X", loss_ratios=[10.0, 30.0], grad_ratios=[1.0, 1.0])
    s = row.summary()
    assert s["r_loss"] == 20.0 and s["r_grad"] == 1.0
    assert s["pull_after_loss_calibration"] == pytest.approx(0.05)
    assert s["cv_loss"] == pytest.approx(math.sqrt(200.0) / 20.0)
    assert s["cv_grad"] == 0.0


def test_tool_on_tiny_shapes(tmp_path, monkeypatch, capsys):
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=8, num_val=2, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    teacher_cfg = load_config(f"{ROOT}/configs/Shapes/faster_rcnn_R_34_FPN.yaml")
    torch.manual_seed(0)
    weights = tmp_path / "teacher.pth"
    torch.save({"model": build_detector(teacher_cfg).state_dict()}, weights)
    argv = ["--teacher-weights", str(weights), "--methods", "MSE", "CSGR", "PCD"]
    argv += ["--batches", "2", "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2"]
    argv += ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    rows = load_tool("benchmark_loss_yardstick").main(argv)
    printed = capsys.readouterr().out
    assert [row.method for row in rows] == ["MSE", "CSGR"]  # PCD: RetinaNet only
    assert all(len(row.loss_ratios) == 2 for row in rows)
    assert "| MSE" in printed and "| CSGR" in printed and "pull after loss calibration" in printed
