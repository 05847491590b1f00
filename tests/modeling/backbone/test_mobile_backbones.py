"""MobileNetV2-FPN and EfficientNet-Lite-FPN backbones: registry, levels, FREEZE_AT, NORM, and
distillation between them (heterogeneous teacher/student pairs) on tiny inputs."""

import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone, build_model
from detectron2.utils.events import EventStorage
from tiny_models import MOBILE_BACKBONES, mobile_cfg, random_batch

import csgr  # noqa: F401  registers the backbones
from csgr.modeling import build_detector
from csgr.modeling.backbone import efficientnet_lite_spec
from csgr.modeling.backbone.efficientnet_lite import TFSameConv2d


@pytest.mark.parametrize("backbone", sorted(MOBILE_BACKBONES))
@pytest.mark.parametrize("arch", ["GeneralizedRCNN", "RetinaNet"])
def test_levels_strides_and_shapes(arch, backbone):
    cfg = mobile_cfg(arch, backbone)
    assert cfg.MODEL.BACKBONE.NAME in BACKBONE_REGISTRY
    model = build_backbone(cfg, ShapeSpec(channels=3))
    levels = (
        ["p3", "p4", "p5", "p6", "p7"] if arch == "RetinaNet" else ["p2", "p3", "p4", "p5", "p6"]
    )
    shapes = model.output_shape()
    assert list(shapes) == levels
    assert all(s.channels == 32 for s in shapes.values())
    out = model(torch.zeros(2, 3, 64, 96))
    for name in levels:
        stride = shapes[name].stride
        assert out[name].shape == (2, 32, -(-64 // stride), -(-96 // stride))


def test_efficientnet_lite_variants_scale_width_and_depth():
    lite0, lite2 = efficientnet_lite_spec("lite0"), efficientnet_lite_spec("lite2")
    assert len(lite0) == 16 and len(lite2) == 21  # 1+2+2+3+3+4+1; ceil(1.2 r), ends fixed
    assert lite0[-1][-1] == 320 and lite2[-1][-1] == 352
    assert lite0[0] == lite2[0] == ("stem", 3, 1, 1, 32, 16)
    with pytest.raises(ValueError, match="MODEL.EFFICIENTNET_LITE.VARIANT"):
        efficientnet_lite_spec("lite9")


@pytest.mark.parametrize("backbone", sorted(MOBILE_BACKBONES))
def test_freeze_at_and_norm(backbone):
    node = MOBILE_BACKBONES[backbone][0]
    cfg = mobile_cfg(backbone=backbone)
    cfg.MODEL[node].NORM = "BN"
    bottom_up = build_backbone(cfg, ShapeSpec(channels=3)).bottom_up
    for name in ("stem", "res2"):  # FREEZE_AT 2: frozen, with FrozenBN
        part = getattr(bottom_up, name)
        assert not any(p.requires_grad for p in part.parameters())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in part.modules())
        assert any(isinstance(m, FrozenBatchNorm2d) for m in part.modules())
    for name in ("res3", "res4", "res5"):  # trainable BN, with the network's epsilon
        bns = [m for m in getattr(bottom_up, name).modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and all(p.requires_grad for p in getattr(bottom_up, name).parameters())
        assert {m.eps for m in bns} == {1e-3 if backbone == "efficientnet_lite" else 1e-5}
    cfg.MODEL[node].NORM = "FrozenBN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    bottom_up = build_backbone(cfg, ShapeSpec(channels=3)).bottom_up
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bottom_up.modules())
    assert all(p.requires_grad for p in bottom_up.parameters())  # convs train, BN frozen


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("MODEL.MOBILENET_V2.NORM", "LN", "MODEL.MOBILENET_V2.NORM"),
        ("MODEL.MOBILENET_V2.OUT_FEATURES", ["res6"], "OUT_FEATURES"),
        ("MODEL.FPN.IN_FEATURES", ["res2", "res3"], "MODEL.FPN.IN_FEATURES"),
        ("MODEL.BACKBONE.FREEZE_AT", 7, "FREEZE_AT"),
    ],
)
def test_bad_config_names_the_key(key, value, fragment):
    cfg = mobile_cfg()
    cfg.MODEL.MOBILENET_V2.OUT_FEATURES = ["res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res4", "res5"]
    cfg.merge_from_list([key, value])
    with pytest.raises(ValueError, match=fragment):
        build_backbone(cfg, ShapeSpec(channels=3))


def test_tf_same_padding_pads_bottom_right():
    conv = TFSameConv2d(2, 3, 3, stride=2, padding=0, bias=False)
    x = torch.randn(1, 2, 8, 10)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    conv5 = TFSameConv2d(2, 3, 5, stride=2, padding=0, bias=False)
    expected = F.conv2d(F.pad(x, [1, 2, 1, 2]), conv5.weight, stride=2)
    torch.testing.assert_close(conv5(x), expected)
    assert conv(torch.randn(1, 2, 7, 9)).shape[-2:] == (4, 5)


@pytest.mark.parametrize("arch", ["GeneralizedRCNN", "RetinaNet"])
def test_mobilenet_student_distilled_from_efficientnet_lite_teacher(tmp_path, arch):
    teacher_cfg = mobile_cfg(arch, "efficientnet_lite", fpn_channels=48)
    teacher_cfg.MODEL.META_ARCHITECTURE = arch
    teacher_cfg.MODEL.PIXEL_MEAN, teacher_cfg.MODEL.PIXEL_STD = [127.0] * 3, [128.0] * 3
    torch.manual_seed(0)
    teacher = build_detector(teacher_cfg)
    config_path, weights_path = tmp_path / "teacher.yaml", tmp_path / "teacher.pth"
    config_path.write_text(teacher_cfg.dump())
    torch.save({"model": teacher.state_dict()}, weights_path)

    cfg = mobile_cfg(arch, "mobilenet_v2", fpn_channels=32)  # adapters 32 -> 48 channels
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    cfg.MODEL.DISTILL.METHODS = ["CSGR"]
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = str(config_path)
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = str(weights_path)
    model = build_model(cfg)
    model.train()
    assert os.path.basename(str(weights_path)) == "teacher.pth"
    for k, v in teacher.state_dict().items():  # loaded strictly, exactly
        torch.testing.assert_close(model.teacher.state_dict()[k], v, rtol=0, atol=0)
    with EventStorage(0):
        losses = model(random_batch(num_images=2, size=64))
    assert {"loss_csgr_cat", "loss_csgr_rel"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = [p for p in model.student.backbone.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    adapters = [p for n, p in model.distill_losses.named_parameters() if "adapter" in n]
    assert adapters and all(p.grad is not None for p in adapters)
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
