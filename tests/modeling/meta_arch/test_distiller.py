"""The Distiller meta-architecture: teacher policy, gradients, checkpoints, student init."""

import os
import pickle

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from tiny_models import distill_cfg, random_batch, save_teacher

import csgr  # noqa: F401
from csgr.config import load_config


def _step(model, batch):
    with EventStorage(0):
        losses = model(batch)
    return losses


@pytest.mark.parametrize("student_arch", ["GeneralizedRCNN", "RetinaNet"])
@pytest.mark.parametrize("teacher_arch", ["GeneralizedRCNN", "RetinaNet"])
def test_training_step_each_pair(tmp_path, student_arch, teacher_arch):
    cfg = distill_cfg(str(tmp_path), student_arch, teacher_arch)
    model = build_model(cfg)
    model.train()
    losses = _step(model, random_batch())
    assert {"loss_csgr_cat", "loss_csgr_rel"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # gradients reach the student and the distillation modules, never the teacher
    assert all(p.grad is not None for p in model.student.backbone.parameters() if p.requires_grad)
    grads = [p.grad for p in model.distill_losses.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not model.teacher.training


def test_teacher_outside_state_dict_and_optimizer(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    keys = model.state_dict().keys()
    assert keys and all(k.startswith(("student.", "distill_losses.")) for k in keys)
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in model.parameters()}
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("ckpt")
    saved = torch.load(os.path.join(tmp_path, "ckpt.pth"), weights_only=False)["model"]
    assert not [k for k in saved if k.startswith("teacher")]
    assert set(saved) == set(keys)


def test_teacher_loaded_exactly(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    saved = torch.load(cfg.MODEL.DISTILL.TEACHER.WEIGHTS, weights_only=False)["model"]
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_eval_runs_student_only(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    model.eval()
    calls = []
    model.teacher.backbone.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        out = model([{"image": b["image"], "height": 64, "width": 64} for b in random_batch()])
    assert len(out) == 2 and "instances" in out[0]
    assert not calls


def _expect_error(cfg, exc, *fragments):
    with pytest.raises(exc) as e:
        build_model(cfg)
    for fragment in fragments:
        assert fragment in str(e.value), (fragment, str(e.value))


def test_teacher_errors(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    weights = cfg.MODEL.DISTILL.TEACHER.WEIGHTS

    bad = cfg.clone()
    bad.MODEL.DISTILL.TEACHER.WEIGHTS = str(tmp_path / "nope.pth")
    _expect_error(bad, FileNotFoundError, "nope.pth", "MODEL.DISTILL.TEACHER.WEIGHTS")

    bad.MODEL.DISTILL.TEACHER.WEIGHTS = ""
    _expect_error(bad, ValueError, "MODEL.DISTILL.TEACHER.WEIGHTS is empty")

    bad = cfg.clone()
    bad.MODEL.DISTILL.TEACHER.CONFIG_FILE = str(tmp_path / "missing.yaml")
    _expect_error(bad, FileNotFoundError, "missing.yaml", "CONFIG_FILE")

    state = torch.load(weights, weights_only=False)["model"]
    dropped = "backbone.fpn_output2.weight"
    partial = {k: v for k, v in state.items() if k != dropped}
    partial["extra.head.weight"] = torch.zeros(1)
    torch.save({"model": partial}, tmp_path / "partial.pth")
    bad = cfg.clone()
    bad.MODEL.DISTILL.TEACHER.WEIGHTS = str(tmp_path / "partial.pth")
    _expect_error(bad, ValueError, "partial.pth", dropped, "extra.head.weight")

    reshaped = dict(state)
    reshaped["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(7, 64)
    torch.save({"model": reshaped}, tmp_path / "reshaped.pth")
    bad.MODEL.DISTILL.TEACHER.WEIGHTS = str(tmp_path / "reshaped.pth")
    _expect_error(bad, ValueError, "reshaped.pth", "cls_score.weight", "wrong shape")


def test_class_count_mismatch(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    config_path, weights_path, _ = save_teacher(str(tmp_path), num_classes=5)
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_path
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights_path
    _expect_error(cfg, ValueError, "5 classes", "the student has 3")


def test_no_common_level_lists_both_sides(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.CSGR.IN_FEATURES = ["p7"]
    _expect_error(cfg, ValueError, "p7", "student levels", "teacher levels", "'p2'")


def test_unknown_method(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.METHODS = ["NOPE"]
    _expect_error(cfg, KeyError, "NOPE", "CSGR")


def test_imagenet_pkl_initialises_student_only(tmp_path):
    """An ImageNet-style .pkl (Detectron2 R-xx.pkl naming) loads through the matching
    heuristics, although teacher and student share every key name."""
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    torch.manual_seed(7)
    bottom_up = {
        k: torch.randn_like(v).numpy()
        for k, v in model.student.backbone.bottom_up.state_dict().items()
        if v.dtype.is_floating_point
    }
    with open(tmp_path / "R-18.pkl", "wb") as f:
        pickle.dump(
            {"model": bottom_up, "__author__": "torchvision", "matching_heuristics": True}, f
        )
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    DetectionCheckpointer(model).load(str(tmp_path / "R-18.pkl"))
    for k, v in model.student.backbone.bottom_up.state_dict().items():
        if k in bottom_up:
            assert torch.equal(v, torch.from_numpy(bottom_up[k])), k
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


def test_plain_detector_checkpoint_initialises_student(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    _, weights, _ = save_teacher(str(tmp_path), depth=18, fpn_channels=32)
    plain = torch.load(weights, weights_only=False)["model"]
    DetectionCheckpointer(model).load(weights)
    for k, v in model.student.state_dict().items():
        assert torch.equal(v, plain[k]), k


def test_teacher_paths_relative_to_the_config_file(tmp_path, monkeypatch):
    """A relative teacher path in a config file is found next to that file (as _BASE_), from any
    working directory."""
    cfg = distill_cfg(str(tmp_path))
    for key in ("CONFIG_FILE", "WEIGHTS"):
        cfg.MODEL.DISTILL.TEACHER[key] = os.path.basename(cfg.MODEL.DISTILL.TEACHER[key])
    config_file = tmp_path / "distill.yaml"
    config_file.write_text(cfg.dump())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(str(config_file))
    assert loaded.MODEL.DISTILL.TEACHER.CONFIG_FILE == str(
        tmp_path / "teacher_GeneralizedRCNN_34.yaml"
    )
    assert build_model(loaded).teacher is not None
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config("missing.yaml")
