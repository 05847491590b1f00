"""MGD: masks drawn from the seeded default generator, the mask ratio, and its builder's
published defaults."""

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
)

from csgr.modeling.losses.mgd import random_position_mask


def test_mgd_masks_from_the_seeded_default_generator():
    loss = make_loss("MGD", mask_ratio=0.5).double()
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    torch.manual_seed(7)  # the default generator, as seeded by Detectron2's SEED
    first = loss(batch(student, teacher))["loss_mgd"]
    torch.manual_seed(7)
    assert loss(batch(student, teacher))["loss_mgd"].item() == first.item()
    torch.manual_seed(1)
    a = loss(batch(student, teacher))["loss_mgd"].item()
    torch.manual_seed(1)
    assert loss(batch(student, teacher))["loss_mgd"].item() == a
    # known value: the same draws, masked by hand
    g = torch.Generator().manual_seed(7)
    expected = 0.0
    for k, (h, w) in SIZES.items():
        keep = (torch.rand((2, 1, h, w), generator=g) <= 0.5).to(F64)
        generated = loss.generation[k](student[k] * keep)
        expected += ((generated - teacher[k]) ** 2).sum().item() / 2
    assert first.item() == pytest.approx(expected, rel=1e-10)


def test_mgd_mask_ratio():
    mask = random_position_mask(4, 64, 64, 0.65, torch.device("cpu"), torch.Generator())
    assert mask.shape == (4, 1, 64, 64)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (1 - mask.mean().item()) == pytest.approx(0.65, abs=0.02)


@pytest.mark.parametrize(
    "arch, levels, alpha, mask_ratio",
    [
        ("RetinaNet", ["p3", "p4", "p5", "p6", "p7"], 2e-5, 0.65),
        ("GeneralizedRCNN", ["p2", "p3", "p4", "p5"], 5e-7, 0.45),
    ],
)
def test_mgd_builder_takes_published_defaults_per_student_type(arch, levels, alpha, mask_ratio):
    cfg = cfg_for(arch, ["MGD"])
    mgd = build_published("MGD", arch, cfg)
    assert (mgd.weight, mgd.mask_ratio) == (alpha, mask_ratio)
    assert mgd.in_features == levels  # FGD's
    cfg.MODEL.DISTILL.MGD.IN_FEATURES = ["p5", "p3"]
    assert build_published("MGD", arch, cfg).in_features == ["p3", "p5"]


def test_mgd_only_minus_one_means_published():
    check_only_minus_one_means_published("MGD", "ALPHA")
