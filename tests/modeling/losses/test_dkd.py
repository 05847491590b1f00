"""DKD: the decoupled terms against a hand computation, the loss's weights, zero at equality and
gradients, and a negative weight as an error naming its key."""

import math

import pytest
import torch
from loss_inputs import check_negative_weight_is_error
from method_lists import RCNN
from torch.nn import functional as F

from csgr.modeling.losses import DistillBatch
from csgr.modeling.losses.dkd import DKDLoss, decoupled_kd_terms


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _dkd_by_hand(zs, zt, target, t):
    ps, pt = _softmax([v / t for v in zs]), _softmax([v / t for v in zt])
    tckd = _kl([pt[target], 1 - pt[target]], [ps[target], 1 - ps[target]])
    rest = [i for i in range(len(zs)) if i != target]
    nckd = _kl(_softmax([zt[i] / t for i in rest]), _softmax([zs[i] / t for i in rest]))
    return tckd * t * t, nckd * t * t


def test_dkd_known_values_three_classes():
    zs = [[1.0, 2.0, 0.5], [0.3, -1.0, 2.5]]
    zt = [[2.0, 0.0, 1.0], [1.5, 0.5, -0.5]]
    target = [0, 2]
    # float64 (the terms are dtype-generic): the hand computation is then exact to ~1e-15, and
    # the comparison does not hinge on float32 rounding, which differs between CPU kernels.
    f64 = dict(dtype=torch.float64)
    tckd, nckd = decoupled_kd_terms(
        torch.tensor(zs, **f64), torch.tensor(zt, **f64), torch.tensor(target), 2.0
    )
    rows = [_dkd_by_hand(zs[i], zt[i], target[i], 2.0) for i in range(2)]
    assert tckd.item() == pytest.approx(sum(r[0] for r in rows) / 2, rel=1e-10)
    assert nckd.item() == pytest.approx(sum(r[1] for r in rows) / 2, rel=1e-10)
    # DKD's identity: KD = TCKD + (1 - p_target^teacher) * NCKD (one row, T = 1)
    s, t = torch.tensor([zs[0]], **f64), torch.tensor([zt[0]], **f64)
    tckd, nckd = decoupled_kd_terms(s, t, torch.tensor([0]))
    kd = F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="sum")
    assert kd.item() == pytest.approx((tckd + (1 - F.softmax(t, 1)[0, 0]) * nckd).item(), rel=1e-10)


def _roi_batch(s_logits, t_logits, target):
    return DistillBatch(
        student_features={},
        teacher_features={},
        student_outputs={"roi_logits": s_logits, "roi_gt_classes": target},
        teacher_outputs={"roi_logits": t_logits},
    )


def test_dkd_loss_weights_zero_at_equality_and_grads():
    torch.manual_seed(0)
    s = torch.randn(6, 4, requires_grad=True)
    t = torch.randn(6, 4, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 3, 3])
    loss = DKDLoss(alpha=2.0, beta=0.5, temperature=3.0)(_roi_batch(s, t, target))["loss_dkd"]
    tckd, nckd = decoupled_kd_terms(s, t, target, 3.0)
    assert loss.item() == pytest.approx((2.0 * tckd + 0.5 * nckd).item(), rel=1e-6)
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and t.grad is None
    same = DKDLoss()(_roi_batch(t.detach(), t.detach(), target))["loss_dkd"]
    assert same.item() == 0.0
    empty = DKDLoss()(_roi_batch(torch.zeros(0, 4), torch.zeros(0, 4), target[:0]))["loss_dkd"]
    assert empty.item() == 0.0
    confident = torch.tensor([[80.0, -80.0, 0.0]])  # finite in log space
    big = decoupled_kd_terms(confident, -confident, torch.tensor([1]), 1.0)
    assert all(torch.isfinite(v) for v in big)


def test_dkd_negative_weights_are_errors_naming_the_key():
    check_negative_weight_is_error(RCNN, "DKD", "BETA")
