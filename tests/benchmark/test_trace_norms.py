"""tools/trace_norms.py: per-iteration weight / gradient norms and feature RMS of real steps."""

import math

import pytest
import torch
from tiny_models import ROOT, load_tool

from csgr.config import load_config
from csgr.data.datasets import generate_shapes_dataset
from csgr.modeling import build_detector

SMALL = ["DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN"]
SMALL += ["(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64"]


@pytest.fixture
def shapes(tmp_path, monkeypatch):
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=8, num_val=2, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    return tmp_path


def test_trace_of_a_distillation(shapes, capsys):
    teacher_cfg = load_config(f"{ROOT}/configs/Shapes/faster_rcnn_R_34_FPN.yaml")
    torch.manual_seed(0)
    weights = shapes / "teacher.pth"
    torch.save({"model": build_detector(teacher_cfg).state_dict()}, weights)
    argv = ["--config-file", f"{ROOT}/configs/Shapes/pkd_frcnn_r18_r34.yaml", "--iters", "3"]
    argv += ["--params", "student.backbone,student.roi_heads", "OUTPUT_DIR", str(shapes / "out")]
    argv += ["MODEL.DISTILL.TEACHER.WEIGHTS", str(weights), *SMALL]
    rows = load_tool("trace_norms").main(argv)
    printed = capsys.readouterr().out
    assert [r.iteration for r in rows] == [0, 1, 2] and not any(r.diverged for r in rows)
    for row in rows:
        assert {"loss_cls", "loss_pkd"} <= set(row.losses)
        assert (
            set(row.weight_norm) == set(row.grad_norm) == {"student.backbone", "student.roi_heads"}
        )
        assert all(v > 0 and math.isfinite(v) for v in row.grad_norm.values())
        assert list(row.feature_rms) == ["p2", "p3", "p4", "p5", "p6"]
    # the weights move: the first step changes the backbone's norm
    assert rows[1].weight_norm["student.backbone"] != rows[0].weight_norm["student.backbone"]
    assert rows[1].lr > rows[0].lr  # the warm-up of the config's schedule runs
    assert "it 2  lr" in printed and "| student.roi_heads |w|" in printed


def test_trace_stops_at_a_divergence_and_names_missing_prefixes(shapes):
    tool = load_tool("trace_norms")
    base = ["--config-file", f"{ROOT}/configs/Shapes/faster_rcnn_R_18_FPN.yaml", "--iters", "6"]
    opts = ["OUTPUT_DIR", str(shapes / "out"), "SOLVER.BASE_LR", "1e6", "SOLVER.WARMUP_ITERS"]
    opts += ["0", "SOLVER.CLIP_GRADIENTS.ENABLED", "False", *SMALL]
    rows = tool.main([*base, "--params", "backbone", *opts])
    assert rows[-1].diverged.startswith("Training diverged at iteration")
    assert len(rows) < 6 and not any(r.diverged for r in rows[:-1])
    with pytest.raises(ValueError, match=r"no trainable parameter name starts with \['head'\]"):
        tool.main([*base, "--params", "backbone,head", *opts])


def test_per_term_gradient_norms(shapes):
    teacher_cfg = load_config(f"{ROOT}/configs/Shapes/faster_rcnn_R_34_FPN.yaml")
    torch.manual_seed(0)
    weights = shapes / "teacher.pth"
    torch.save({"model": build_detector(teacher_cfg).state_dict()}, weights)
    classifiers = "distill_losses.CSGR.classifiers"
    argv = ["--config-file", f"{ROOT}/configs/Shapes/csgr_frcnn_r18_r34.yaml", "--iters", "3"]
    argv += ["--params", f"{classifiers},student.roi_heads.box_head", "--per-term", "2"]
    argv += ["OUTPUT_DIR", str(shapes / "out"), "MODEL.DISTILL.TEACHER.WEIGHTS", str(weights)]
    argv += ["MODEL.DISTILL.CSGR.FORMULATION", "published"]  # both terms on p2-p6
    rows = load_tool("trace_norms").main(argv + SMALL)
    assert [bool(r.term_grad_norm) for r in rows] == [True, False, True]  # iterations 0 and 2
    terms = rows[0].term_grad_norm
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_csgr_cat", "loss_csgr_rel"} <= set(
        terms
    )
    levels = [f"fpn.{k}" for k in ("p2", "p3", "p4", "p5", "p6")]
    assert list(terms["loss_csgr_rel"]) == [classifiers, "student.roi_heads.box_head", *levels]
    for row in (rows[0], rows[2]):
        by_term = row.term_grad_norm
        # the classifiers learn from the category term alone; the box head from the detection
        assert by_term["loss_csgr_cat"][classifiers] == pytest.approx(
            row.grad_norm[classifiers], rel=1e-5
        )
        assert by_term["loss_cls"][classifiers] == 0 and by_term["loss_csgr_rel"][classifiers] == 0
        assert by_term["loss_csgr_cat"]["student.roi_heads.box_head"] == 0
        assert by_term["loss_cls"]["student.roi_heads.box_head"] > 0
        assert all(by_term["loss_csgr_rel"][k] > 0 for k in levels)
    # the step is the same with and without the per-term measurement
    argv[argv.index("--per-term") + 1] = "0"
    plain = load_tool("trace_norms").main(argv + SMALL)
    assert [r.losses for r in plain] == [r.losses for r in rows]
