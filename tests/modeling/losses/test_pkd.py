"""PKD: the loss's known value (one minus Pearson's r), its affine invariance, and its builder's
published defaults."""

import math

import pytest
import torch
from loss_inputs import (
    F64,
    SIZES,
    batch,
    build_published,
    cfg_for,
    check_only_minus_one_means_published,
    features,
    make_loss,
    shapes,
)

from csgr.modeling.losses import get_method


def test_pkd_known_value_is_one_minus_pearson():
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    expected = 0.0
    for k in SIZES:
        for c in range(8):
            a = student[k][:, c].flatten().tolist()
            b = teacher[k][:, c].flatten().tolist()
            ma, mb = sum(a) / len(a), sum(b) / len(b)
            cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
            r = cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
            expected += (1 - r) / 8
    out = make_loss("PKD", weight=6.0).double()(batch(student, teacher))
    # PKD's std has eps=1e-6 added, so 1 - r holds to ~1e-6 relative, not to float64 precision.
    assert out["loss_pkd"].item() == pytest.approx(6.0 * expected, rel=1e-5)
    # invariant to a positive affine map of the student, per channel
    scale = torch.rand(1, 8, 1, 1, dtype=F64) + 0.5
    affine = {k: v * scale - 2.0 for k, v in teacher.items()}
    assert make_loss("PKD").double()(batch(affine, teacher))["loss_pkd"].item() == pytest.approx(
        0.0, abs=1e-10
    )


@pytest.mark.parametrize(
    "arch, levels, weight",
    [("RetinaNet", ["p3", "p4", "p5", "p6"], 10), ("GeneralizedRCNN", ["p2", "p3", "p4", "p5"], 6)],
)
def test_pkd_builder_takes_published_defaults_per_student_type(arch, levels, weight):
    cfg = cfg_for(arch, ["PKD"])
    pkd = build_published("PKD", arch, cfg)
    assert pkd.weight == weight and pkd.in_features == levels
    cfg.MODEL.DISTILL.PKD.WEIGHT = 0.0
    assert build_published("PKD", arch, cfg).weight == 0.0


def test_pkd_auto_value_needs_a_known_student_type():
    cfg = cfg_for("SomeDetector")
    s = shapes(16, ["p3", "p4"])
    with pytest.raises(ValueError, match="MODEL.DISTILL.PKD.WEIGHT"):
        get_method("PKD").build(cfg, s, s)
    cfg.MODEL.DISTILL.PKD.WEIGHT = 1.0
    assert get_method("PKD").build(cfg, s, s).weight == 1.0


def test_pkd_only_minus_one_means_published():
    check_only_minus_one_means_published("PKD", "WEIGHT")
