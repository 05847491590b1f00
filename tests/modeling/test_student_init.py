"""Student neck and head initialised from the teacher (FGD's recipe), where shapes match."""

import pytest
import torch
from tiny_models import tiny_cfg

from csgr.modeling import build_detector
from csgr.modeling.student_init import init_student_from_teacher


def pair(arch, student_fpn=32, teacher_fpn=32):
    torch.manual_seed(0)
    student = build_detector(tiny_cfg(arch, depth=18, fpn_channels=student_fpn))
    teacher = build_detector(tiny_cfg(arch, depth=34, fpn_channels=teacher_fpn))
    return student, teacher


@pytest.mark.parametrize("arch", ["GeneralizedRCNN", "RetinaNet"])
def test_neck_and_head_copied_backbone_kept(arch):
    student, teacher = pair(arch)
    bottom_up = {k: v.clone() for k, v in student.state_dict().items() if ".bottom_up." in k}
    copied, skipped = init_student_from_teacher(student, teacher, ["neck", "head"])
    theirs, mine = teacher.state_dict(), student.state_dict()
    assert copied and all(torch.equal(mine[k], theirs[k]) for k in copied)
    heads = ("roi_heads.", "proposal_generator.") if arch == "GeneralizedRCNN" else ("head.",)
    assert any(k.startswith(heads) for k in copied)
    assert any(k.startswith("backbone.fpn_") for k in copied)
    # lateral convs read the backbone's stages: R18 and R34 have the same widths, so all match
    assert skipped == []
    for k, v in bottom_up.items():  # the ResNet itself is untouched
        assert torch.equal(mine[k], v), k


def test_only_matching_shapes_copied_and_nothing_is_an_error():
    student, teacher = pair("GeneralizedRCNN", student_fpn=32, teacher_fpn=64)
    with pytest.raises(ValueError, match="FPN width"):
        init_student_from_teacher(student, teacher, ["neck"])
    copied, skipped = init_student_from_teacher(student, teacher, ["head"])
    mine = student.state_dict()
    assert all(mine[k].shape == teacher.state_dict()[k].shape for k in copied)
    assert skipped and not set(copied) & set(skipped)


def test_unknown_part_is_named():
    student, teacher = pair("RetinaNet")
    with pytest.raises(ValueError, match="unknown parts \\['backbone'\\]"):
        init_student_from_teacher(student, teacher, ["backbone"])


def test_distiller_config_key(tmp_path):
    from detectron2.modeling import build_model
    from tiny_models import distill_cfg

    cfg = distill_cfg(str(tmp_path), fpn_channels=64)  # the saved teacher's FPN width
    cfg.MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER = ["neck", "head"]
    model = build_model(cfg)
    mine, theirs = model.student.state_dict(), model.teacher.state_dict()
    for key in ("backbone.fpn_output3.weight", "roi_heads.box_predictor.cls_score.weight"):
        assert torch.equal(mine[key], theirs[key]), key
    cfg.MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER = []
    cfg.MODEL.DISTILL.CSGR.FORMULATION = (
        "published"  # the default starts the heads from the teacher
    )
    model = build_model(cfg)
    key = "roi_heads.box_predictor.cls_score.weight"
    assert not torch.equal(model.student.state_dict()[key], model.teacher.state_dict()[key])
