"""Tests over every registered method: each describes itself, the feature losses are zero at
equality and send gradients to the student and their own parameters only, a Distiller step
trains each method (and all of a student type's methods at once), and a pair a method does not
apply to fails at build.

The method lists come from the registry; a method left out of a test is in an exclusion dict
with the reason, checked against the registry.
"""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from loss_inputs import batch, cfg_for, distill_cfg_with, feature_methods, features, make_loss
from method_lists import ARCHS, LOSS_TERMS, RCNN, RETINA, ROI_TERMS, applicable_pairs, loss_terms
from tiny_models import distill_cfg, random_batch

from csgr.modeling.losses import DISTILL_LOSS_REGISTRY, DistillMethod, get_method, method_names

FEATURE_METHODS = feature_methods()
NOT_ZERO_AT_EQUALITY = {
    "MGD": "the student's masked features go through a learned generator before the comparison",
    "IKD": "the student's features go through learned generators and a spatial attention",
}
ZERO_AT_EQUALITY = [m for m in FEATURE_METHODS if m not in NOT_ZERO_AT_EQUALITY]
# Student / teacher pairs a method does not apply to, and what the build error says; every method
# restricted to some students (APPLIES_TO) has cases here.
INAPPLICABLE_PAIRS = {
    "PCD": [
        (RETINA, RCNN, ["PCD", "teacher is a GeneralizedRCNN", "dense"]),
        (RCNN, RCNN, ["PCD", "student", "GeneralizedRCNN"]),
    ],
    "DKD": [
        (RETINA, RETINA, ["DKD", "RetinaNet", "no ROI box head"]),
        (RCNN, RETINA, ["DKD", "teacher is a RetinaNet", "Faster R-CNN"]),
    ],
    "IKD": [(RCNN, RETINA, ["IKD", "teacher is a RetinaNet", "LOGIT_WEIGHT 0"])],
}
NO_PARAMETERS = {"DKD": "it compares the two ROI classifiers' logits, with nothing to learn"}
# Terms that need not be zero at equality although the method's others are.
ZERO_EXEMPT_TERMS = {"loss_fgd_global": "FGD's two GcBlocks (student, teacher) need not agree"}


def test_exclusions_name_registered_feature_methods():
    assert set(NOT_ZERO_AT_EQUALITY) <= set(FEATURE_METHODS), "stale exclusion"
    assert set(NO_PARAMETERS) <= set(method_names()), "stale exclusion"
    restricted = {m for m in method_names() if get_method(m).APPLIES_TO is not None}
    assert restricted <= set(INAPPLICABLE_PAIRS) <= set(method_names())
    terms = set().union(*LOSS_TERMS.values())
    assert set(ZERO_EXEMPT_TERMS) <= terms and ROI_TERMS <= terms, "stale term"


def test_every_registered_method_describes_itself():
    """Config node, builder and applicability come from each method's registry entry."""
    cfg = cfg_for("RetinaNet")
    names = method_names()
    assert names[0] == "CSGR" and set(LOSS_TERMS) == set(names)
    for name in names:
        method = DISTILL_LOSS_REGISTRY.get(name)
        assert issubclass(method, DistillMethod) and name in cfg.MODEL.DISTILL
        for arch, values in method.PUBLISHED.items():
            assert arch in ("GeneralizedRCNN", "RetinaNet")
            assert set(values) <= set(cfg.MODEL.DISTILL[name]), (name, sorted(values))
    assert not get_method("PCD").applies_to("GeneralizedRCNN")
    assert not get_method("DKD").applies_to("RetinaNet")
    assert get_method("CSGR").applies_to("RetinaNet")
    with pytest.raises(KeyError, match="unknown method 'NOPE'"):
        get_method("NOPE")


@pytest.mark.parametrize("method", ZERO_AT_EQUALITY)
def test_zero_when_student_equals_teacher(method):
    teacher = features(8, seed=2)
    out = make_loss(method)(batch({k: v.clone() for k, v in teacher.items()}, teacher))
    keys = LOSS_TERMS[method] - set(ZERO_EXEMPT_TERMS)
    for key in keys:
        assert out[key].item() == pytest.approx(0.0, abs=1e-6), key
    differ = make_loss(method)(batch(features(8, seed=1), teacher))
    assert all(differ[key].item() > 0 for key in keys)


@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_gradients_reach_student_and_loss_parameters_only(method):
    loss = make_loss(method, cs=4, ct=8)
    student = features(4, seed=1, requires_grad=True)
    teacher = features(8, seed=2, requires_grad=True)
    out = loss(batch(student, teacher))
    assert set(out) == loss_terms(method, RETINA)
    sum(out.values()).backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in student.values())
    assert all(v.grad is None for v in teacher.values())
    params = dict(loss.named_parameters())
    assert any(name.startswith("adapters.") for name in params)
    missing = [name for name, p in params.items() if p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("student_arch", ARCHS)
def test_distiller_training_step_all_methods(tmp_path, student_arch):
    methods = [m for m in method_names() if get_method(m).applies_to(student_arch)]
    cfg = distill_cfg(str(tmp_path), student_arch, student_arch)
    cfg.MODEL.DISTILL.METHODS = methods
    model = build_model(cfg)
    model.train()
    with EventStorage(0):
        losses = model(random_batch())
    assert set().union(*(loss_terms(m, student_arch) for m in methods)) <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in methods:
        params = list(model.distill_losses[name].named_parameters())
        assert (name in NO_PARAMETERS) != bool(params), name
        assert all(p.grad is not None for _, p in params), name
    trainable = [p for p in model.student.backbone.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())


@pytest.mark.parametrize("method,arch", applicable_pairs())
def test_training_step_through_distiller(teachers, method, arch):
    torch.manual_seed(0)
    model = build_model(distill_cfg_with(teachers, method, arch, arch))
    model.train()
    batch = random_batch()
    batch[1]["instances"] = batch[1]["instances"][:0]  # an image without GT boxes
    with EventStorage(0):
        losses = model(batch)
    distill = {k: v for k, v in losses.items() if k.startswith(f"loss_{method.lower()}_")}
    distill.update({k: v for k, v in losses.items() if k == f"loss_{method.lower()}"})
    terms = loss_terms(method, arch)
    assert set(distill) == terms
    assert ("roi_head" in model.distill_losses[method].REQUIRES) == bool(terms & ROI_TERMS)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(distill.values()).backward()  # the distillation terms alone reach the student
    student_grads = [p.grad for p in model.student.parameters() if p.grad is not None]
    assert student_grads and all(torch.isfinite(g).all() for g in student_grads)
    assert any(g.abs().sum() > 0 for g in student_grads)
    assert all(p.grad is not None for p in model.distill_losses.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not model.teacher.training


@pytest.mark.parametrize(
    "method, student_arch, teacher_arch, fragments",
    [(m, *case) for m, cases in INAPPLICABLE_PAIRS.items() for case in cases],
)
def test_inapplicable_pair_fails_at_build(teachers, method, student_arch, teacher_arch, fragments):
    cfg = distill_cfg_with(teachers, method, student_arch, teacher_arch)
    with pytest.raises(ValueError) as e:
        build_model(cfg)
    for fragment in fragments:
        assert fragment in str(e.value), (fragment, str(e.value))
