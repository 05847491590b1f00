"""IKD: its spatial attention, the loss's known values and gradients, its defaults, masking and
learned alignment weights, and a negative weight as an error naming its key."""

import pytest
import torch
from loss_inputs import check_negative_weight_is_error, sigmoid
from method_lists import RCNN
from torch import nn
from torch.nn import functional as F

from csgr.modeling.losses import DistillBatch
from csgr.modeling.losses.attention import SpatialAttention
from csgr.modeling.losses.dkd import decoupled_kd_terms
from csgr.modeling.losses.ikd import IKDLoss


def test_spatial_attention_known_value():
    sam = SpatialAttention(3)
    nn.init.zeros_(sam.conv.weight)
    with torch.no_grad():
        sam.conv.weight[0, 0, 1, 1] = 1.0  # channel mean
        sam.conv.weight[0, 1, 1, 1] = 2.0  # channel max
        sam.conv.bias.fill_(0.5)
    x = torch.randn(2, 5, 4, 3)
    expected = torch.sigmoid(x.mean(1, keepdim=True) + 2 * x.amax(1, keepdim=True) + 0.5)
    torch.testing.assert_close(sam(x), expected)


def _identity_conv_(conv):
    nn.init.zeros_(conv.bias)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(conv.weight.shape[0]).view_as(conv.weight))


def test_ikd_known_values_and_gradients():
    torch.manual_seed(0)
    levels, channels = ["p3", "p4"], {"p3": 4, "p4": 4}
    loss_fn = IKDLoss(levels, channels, channels, 2.0, 3.0, 5.0, mask_ratio=0.0, align_span=1)
    # float64 (the loss is dtype-generic): the hand computation below is then exact to ~1e-15.
    loss_fn.double()
    b = 0.3
    for k in levels:
        loss_fn.generators[k] = nn.Identity()
        nn.init.zeros_(loss_fn.attention[k].conv.weight)
        nn.init.constant_(loss_fn.attention[k].conv.bias, b)
    for conv in loss_fn.alignment.aligners.values():
        _identity_conv_(conv)
    f64 = dict(dtype=torch.float64)
    s = {"p3": torch.randn(2, 4, 4, 4, **f64), "p4": torch.randn(2, 4, 2, 2, **f64)}
    t = {k: torch.randn_like(v) for k, v in s.items()}
    s = {k: v.requires_grad_(True) for k, v in s.items()}
    t = {k: v.requires_grad_(True) for k, v in t.items()}
    zs, zt = torch.randn(5, 4, **f64), torch.randn(5, 4, **f64)
    target = torch.tensor([0, 3, 3, 1, 2])
    batch = DistillBatch(
        student_features=s,
        teacher_features=t,
        student_outputs={"roi_logits": zs, "roi_gt_classes": target},
        teacher_outputs={"roi_logits": zt},
    )
    losses = loss_fn(batch)

    def sq(a, b):
        return (a - b).pow(2).sum().item() / 2

    a = sigmoid(b)
    feat = sum(sq(a * s[k], t[k]) for k in levels)
    down = F.interpolate(s["p3"], size=(2, 2), mode="bilinear", align_corners=False)
    up = F.interpolate(s["p4"], size=(4, 4), mode="bilinear", align_corners=False)
    align = (sq(s["p3"], t["p3"]) + 0.5 * sq(down, t["p4"])) / 1.5
    align += (sq(s["p4"], t["p4"]) + 0.5 * sq(up, t["p3"])) / 1.5
    tckd, nckd = decoupled_kd_terms(zs, zt, target, 1.0)
    assert losses["loss_ikd_feat"].item() == pytest.approx(2.0 * feat, rel=1e-10)
    assert losses["loss_ikd_align"].item() == pytest.approx(5.0 * align, rel=1e-10)
    logit = 3.0 * (tckd + 0.25 * nckd).item()
    assert losses["loss_ikd_logit"].item() == pytest.approx(logit, rel=1e-10)

    sum(losses.values()).backward()
    assert all(v.grad is not None for v in s.values())
    assert all(v.grad is None for v in t.values())
    assert all(p.grad is not None for p in loss_fn.alignment.aligners.parameters())
    assert all(p.grad is not None for p in loss_fn.attention.parameters())


def test_ikd_defaults_masking_and_learned_alignment_weights():
    torch.manual_seed(0)
    channels = {"p3": 4, "p4": 4}
    loss_fn = IKDLoss(["p3", "p4"], channels, {"p3": 6, "p4": 6}, logit_weight=0.0)
    loss_fn.alignment = type(loss_fn.alignment)(
        {"p3": ["p3", "p4"], "p4": ["p3", "p4"]}, channels, {"p3": 6, "p4": 6}, 0.5, True
    )
    assert loss_fn.REQUIRES == {"features"}
    s = {"p3": torch.randn(2, 4, 8, 8), "p4": torch.randn(2, 4, 4, 4)}
    t = {"p3": torch.randn(2, 6, 8, 8), "p4": torch.randn(2, 6, 4, 4)}
    losses = loss_fn(DistillBatch(student_features=s, teacher_features=t))
    assert set(losses) == {"loss_ikd_feat", "loss_ikd_align"}
    sum(losses.values()).backward()
    params = dict(loss_fn.named_parameters())
    assert {"alignment.theta_p3", "adapters.adapters.p3.weight"} <= set(params)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params.values())


def test_ikd_negative_weights_are_errors_naming_the_key():
    check_negative_weight_is_error(RCNN, "IKD", "LOGIT_WEIGHT")
