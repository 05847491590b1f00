"""MODEL.DISTILL.CSGR.FORMULATION: "published" reads every key as set; "pkd-levels-headinit" is
the relation term averaged per level on PKD's levels and weights with the student's heads from
the teacher, the same training as those keys set one by one; "published-headinit" is the
published terms with that init; "headinit" is one of the two by student detector."""

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from loss_inputs import shapes
from tiny_models import distill_cfg, random_batch, tiny_cfg

from csgr.config import add_csgr_config
from csgr.modeling.losses import DISTILL_LOSS_REGISTRY

FORMULATION = "pkd-levels-headinit"


def build(arch="GeneralizedRCNN", levels=("p2", "p3", "p4", "p5", "p6"), **keys):
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    for k, v in keys.items():
        cfg.MODEL.DISTILL.CSGR[k] = v
    return DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(8, levels), shapes(8, levels))


def test_headinit_is_the_default_and_published_reads_the_keys():
    cfg = get_cfg()
    add_csgr_config(cfg)
    assert cfg.MODEL.DISTILL.CSGR.FORMULATION == "headinit"
    loss = build(FORMULATION="published")
    assert (loss.rel_level_mean, loss.rel_weight) == (False, 1e-5)
    assert loss.rel_features == loss.in_features == ["p2", "p3", "p4", "p5", "p6"]
    keys = dict(REL_LEVEL_MEAN=True, REL_WEIGHT=3.0, REL_IN_FEATURES=["p2", "p3"])
    loss = build(FORMULATION="published", **keys)
    assert (loss.rel_level_mean, loss.rel_weight, loss.rel_features) == (True, 3.0, ["p2", "p3"])


@pytest.mark.parametrize(
    "arch, levels, rel_levels, weight",
    [
        ("GeneralizedRCNN", ("p2", "p3", "p4", "p5", "p6"), ["p2", "p3", "p4", "p5"], 3.0),
        ("RetinaNet", ("p3", "p4", "p5", "p6", "p7"), ["p3", "p4", "p5", "p6"], 5.0),
        ("RetinaNet", ("p2", "p3", "p4", "p5", "p6"), ["p3", "p4", "p5", "p6"], 5.0),
        ("GeneralizedRCNN", ("p3", "p4", "p5"), ["p3", "p4", "p5"], 3.0),  # those both have
    ],
)
def test_pkd_levels_per_detector(arch, levels, rel_levels, weight):
    loss = build(arch, levels, FORMULATION=FORMULATION)
    assert loss.rel_level_mean is True
    assert loss.rel_weight == weight
    assert loss.rel_features == rel_levels
    assert loss.in_features == list(levels)  # the category term as published: every level
    assert loss.cat_weight == 5e-4


@pytest.mark.parametrize(
    "key, value", [("REL_LEVEL_MEAN", True), ("REL_WEIGHT", 3.0), ("REL_IN_FEATURES", ["p3"])]
)
def test_keys_it_fixes_are_an_error_when_set(key, value):
    with pytest.raises(ValueError, match=f"MODEL.DISTILL.CSGR.{key} is set too"):
        build(FORMULATION=FORMULATION, **{key: value})
    with pytest.raises(ValueError, match=f"'headinit' \\('{FORMULATION}' for a GeneralizedRCNN"):
        build(FORMULATION="headinit", **{key: value})


def test_rel_weight_minus_one_means_published_and_is_not_a_setting():
    loss = build(FORMULATION=FORMULATION, REL_WEIGHT=-1.0)
    assert loss.rel_weight == 3.0


def test_headinit_is_pkd_levels_for_faster_rcnn_and_published_for_retinanet():
    expected = build(FORMULATION=FORMULATION)
    loss = build(FORMULATION="headinit")
    assert (loss.rel_level_mean, loss.rel_weight, loss.rel_features) == (
        expected.rel_level_mean,
        expected.rel_weight,
        expected.rel_features,
    )
    levels = ("p3", "p4", "p5", "p6", "p7")
    for name in ("headinit", "published-headinit"):
        loss = build("RetinaNet", levels, FORMULATION=name)
        assert (loss.rel_level_mean, loss.rel_weight) == (False, 1e-5)
        assert loss.rel_features == loss.in_features == list(levels)
    # published-headinit reads the relation keys as published does
    loss = build("RetinaNet", levels, FORMULATION="published-headinit", REL_WEIGHT=2.0)
    assert loss.rel_weight == 2.0


@pytest.mark.parametrize(
    "name, arch, parts",
    [
        ("published", "GeneralizedRCNN", ()),
        ("published-headinit", "GeneralizedRCNN", ("head",)),
        ("pkd-levels-headinit", "RetinaNet", ("head",)),
        ("headinit", "GeneralizedRCNN", ("head",)),
        ("headinit", "RetinaNet", ("head",)),
    ],
)
def test_init_parts(name, arch, parts):
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    cfg.MODEL.DISTILL.CSGR.FORMULATION = name
    assert DISTILL_LOSS_REGISTRY.get("CSGR").student_init_parts(cfg) == parts


def test_headinit_names_a_student_it_does_not_define():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = "FCOS"
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "headinit"
    with pytest.raises(ValueError, match="'headinit' is defined for students.*not 'FCOS'"):
        DISTILL_LOSS_REGISTRY.get("CSGR").student_init_parts(cfg)


def test_unknown_formulation_and_no_common_pkd_level_are_named():
    with pytest.raises(ValueError, match="FORMULATION must be one of"):
        build(FORMULATION="paper")
    with pytest.raises(ValueError, match="none of PKD's levels"):
        build("RetinaNet", ("p2", "p7"), FORMULATION=FORMULATION)


def _distiller(tmp_path, formulation):
    cfg = distill_cfg(str(tmp_path), fpn_channels=64)  # the saved teacher's FPN width
    cfg.MODEL.DISTILL.CSGR.FORMULATION = formulation
    torch.manual_seed(0)
    return build_model(cfg)


def _assert_same_training(named, by_keys):
    mine, theirs = named.state_dict(), by_keys.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    batch = random_batch()
    with EventStorage(0):
        torch.manual_seed(1)
        losses = named(batch)
        torch.manual_seed(1)
        expected = by_keys(batch)
    assert losses.keys() == expected.keys()
    for k in losses:
        assert torch.equal(losses[k], expected[k]), k


@pytest.mark.parametrize("name", [FORMULATION, "headinit"])
def test_same_training_as_the_keys_set_one_by_one(tmp_path, name):
    named = _distiller(tmp_path, name)
    cfg = distill_cfg(str(tmp_path), fpn_channels=64)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"
    cfg.MODEL.DISTILL.CSGR.REL_LEVEL_MEAN = True
    cfg.MODEL.DISTILL.CSGR.REL_WEIGHT = 3.0
    cfg.MODEL.DISTILL.CSGR.REL_IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER = ["head"]
    torch.manual_seed(0)
    by_keys = build_model(cfg)
    # the heads are the teacher's, the backbone is not
    student, teacher = named.student.state_dict(), named.teacher.state_dict()
    for key in (
        "roi_heads.box_predictor.cls_score.weight",
        "proposal_generator.rpn_head.conv.weight",
    ):
        assert torch.equal(student[key], teacher[key]), key
    assert not torch.equal(
        student["backbone.fpn_output3.weight"], teacher["backbone.fpn_output3.weight"]
    )
    _assert_same_training(named, by_keys)


def test_published_headinit_is_published_with_the_heads_from_the_teacher(tmp_path):
    named = _distiller(tmp_path, "published-headinit")
    cfg = distill_cfg(str(tmp_path), fpn_channels=64)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"
    cfg.MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER = ["head"]
    torch.manual_seed(0)
    _assert_same_training(named, build_model(cfg))


def test_published_student_keeps_its_own_heads(tmp_path):
    model = _distiller(tmp_path, "published")
    key = "roi_heads.box_predictor.cls_score.weight"
    assert not torch.equal(model.student.state_dict()[key], model.teacher.state_dict()[key])


def test_heads_of_other_shapes_are_a_warning_not_an_error(monkeypatch):
    from csgr.modeling import build_detector, student_init

    warnings = []
    monkeypatch.setattr(student_init.logger, "warning", warnings.append)
    cfg = tiny_cfg("GeneralizedRCNN")
    cfg.MODEL.DISTILL.CSGR.FORMULATION = FORMULATION
    student = build_detector(cfg)
    teacher = build_detector(tiny_cfg("RetinaNet"))  # no head key in common
    before = {k: v.clone() for k, v in student.state_dict().items()}
    assert student_init.init_from_method_settings(cfg, student, teacher, []) == []
    assert len(warnings) == 1 and "CSGR: the student's ['head'] stay as they were" in warnings[0]
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())
    # named by the user, the same init is an error; a part the user named is not done twice
    with pytest.raises(ValueError, match="FPN width"):
        student_init.init_student_from_teacher(student, teacher, ["head"])
    assert student_init.init_from_method_settings(cfg, student, teacher, ["head"]) == []
    assert len(warnings) == 1


@pytest.mark.parametrize("name", ["published", "headinit"])
def test_every_parameter_is_reached_when_the_category_term_drops_levels(name):
    """DDP fails on a parameter no loss reached: a level the category term drops (fewer cells
    than CATEGORY_MIN_CELLS) and the relation term does not read (p6 under "headinit", whose
    relation term is on p2-p5) still keeps its adapter and classifier in the graph."""
    from csgr.modeling.losses import DistillBatch

    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = name
    cfg.MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS = 64
    levels = ("p2", "p3", "p4", "p5", "p6")
    loss = DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(8, levels), shapes(16, levels))
    sizes = {"p2": 16, "p3": 8, "p4": 4, "p5": 2, "p6": 1}  # p4-p6 below 64 cells
    g = torch.Generator().manual_seed(0)
    student = {k: torch.randn(2, 8, s, s, generator=g) for k, s in sizes.items()}
    teacher = {k: torch.randn(2, 16, s, s, generator=g) for k, s in sizes.items()}
    out = loss(DistillBatch(student, teacher))
    sum(out.values()).backward()
    unreached = [n for n, p in loss.named_parameters() if p.grad is None]
    assert unreached == []
    assert "adapters" in " ".join(n for n, _ in loss.named_parameters())
