"""PCD: the loss's known values, zero at equality, no ground truth, gradients, and its checks."""

import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.modeling.matcher import Matcher
from detectron2.structures import Boxes, Instances
from loss_inputs import check_negative_weight_is_error, sigmoid
from method_lists import RETINA
from tiny_models import tiny_cfg
from torch import nn

from csgr.modeling.losses import DistillBatch
from csgr.modeling.losses.pcd import PCD, PCDLoss


def _pcd_batch(s_logits, t_logits, s_boxes, t_boxes, gt_boxes, gt_classes, features):
    anchors = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]))
    gt = Instances((32, 32))
    gt.gt_boxes = Boxes(torch.tensor(gt_boxes, dtype=torch.float32).view(-1, 4))
    gt.gt_classes = torch.tensor(gt_classes, dtype=torch.int64)
    deltas = torch.zeros(1, 2, 4)
    return DistillBatch(
        student_features={"p3": features},
        teacher_features={},
        gt_instances=[gt],
        image_shape=(32, 32),
        student_outputs={
            "dense_logits": s_logits,
            "dense_boxes": s_boxes,
            "dense_deltas": deltas,
            "anchors": anchors,
            "dense_in_features": ["p3"],
        },
        teacher_outputs={"dense_logits": t_logits, "dense_boxes": t_boxes, "dense_deltas": deltas},
    )


def _pcd(quality_bias=-1.0, **kw):
    loss = PCDLoss(4, 1, Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True), **kw)
    nn.init.zeros_(loss.quality_branch.weight)
    nn.init.constant_(loss.quality_branch.bias, quality_bias)
    return loss


def _bkl(p, q):
    return sum(a * math.log(a / b) for a, b in ((p, q), (1 - p, 1 - q)) if a > 0)


@pytest.mark.parametrize("quality_anchors", ["positive", "all"])
def test_pcd_known_values(quality_anchors):
    """Two anchors, one GT box on anchor 0 (positive), anchor 1 negative, K = 2, T = 2; the
    quality term covers anchor 0 only ("positive", the default) or both anchors ("all")."""
    zs, zt = [[0.5, -1.0], [-2.0, 0.0]], [[1.0, -2.0], [-1.0, -3.0]]
    t_boxes = [[0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]]  # IoU 0.5 with the GT box
    s_boxes = [[0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 25.0]]  # GIoU 1, then 0.5
    # float64 (the loss is dtype-generic): the hand computation below is then exact to ~1e-15.
    f64 = dict(dtype=torch.float64)
    features = torch.randn(1, 4, 1, 2, **f64)
    batch = _pcd_batch(
        torch.tensor([zs], **f64),
        torch.tensor([zt], **f64),
        torch.tensor([s_boxes], **f64),
        torch.tensor([t_boxes], **f64),
        [0.0, 0.0, 10.0, 10.0],
        [0],
        features,
    )
    loss_fn = _pcd(
        cls_weight=2.0,
        loc_weight=3.0,
        quality_weight=5.0,
        temperature=2.0,
        quality_anchors=quality_anchors,
    ).double()
    losses = loss_fn(batch)

    conf = [max(sigmoid(v) for v in zt[a]) for a in range(2)]
    q0 = 0.5 * sigmoid(zt[0][0])  # IoU * teacher probability of the GT class
    weights = [q0, conf[1]]
    kl = [
        sum(_bkl(sigmoid(zt[a][k] / 2), sigmoid(zs[a][k] / 2)) for k in range(2)) for a in range(2)
    ]
    cls = sum(w * v for w, v in zip(weights, kl)) / max(sum(weights), 1.0) * 4
    loc = (conf[0] * 0.0 + conf[1] * 0.5) / max(sum(conf), 1.0)
    qs = sigmoid(-1.0)
    quality = abs(qs - q0) ** 2 * _bkl(q0, qs)  # divided by one positive
    if quality_anchors == "all":
        quality += qs**2 * _bkl(0.0, qs)  # the negative anchor's target quality is 0
    assert losses["loss_pcd_cls"].item() == pytest.approx(2.0 * cls, rel=1e-10)
    # Detectron2's giou_loss adds eps = 1e-7 to the union and the enclosing area: ~1e-8 off.
    assert losses["loss_pcd_loc"].item() == pytest.approx(3.0 * loc, rel=1e-6)
    assert losses["loss_pcd_quality"].item() == pytest.approx(5.0 * quality, rel=1e-10)


def test_pcd_zero_at_equality_no_gt_and_gradients():
    torch.manual_seed(0)
    s_logits = torch.randn(1, 2, 3, requires_grad=True)
    t_logits = torch.randn(1, 2, 3, requires_grad=True)
    boxes = torch.tensor([[[1.0, 1.0, 9.0, 9.0], [21.0, 19.0, 31.0, 28.0]]])
    s_boxes = (boxes + 0.5).requires_grad_(True)
    t_boxes = boxes.clone().requires_grad_(True)
    features = torch.randn(1, 4, 1, 2, requires_grad=True)
    loss_fn = _pcd(quality_bias=-4.0)
    batch = _pcd_batch(s_logits, t_logits, s_boxes, t_boxes, [[0, 0, 10, 10]], [2], features)
    losses = loss_fn(batch)
    sum(losses.values()).backward()
    for x in (s_logits, s_boxes, features, loss_fn.quality_branch.weight):
        assert x.grad is not None and torch.isfinite(x.grad).all()
    assert t_logits.grad is None and t_boxes.grad is None

    same = _pcd_batch(t_logits, t_logits, t_boxes, t_boxes, [[0, 0, 10, 10]], [2], features)
    same = loss_fn(same)
    assert same["loss_pcd_cls"].item() == 0.0
    assert same["loss_pcd_loc"].item() == pytest.approx(0.0, abs=1e-5)

    no_gt = loss_fn(_pcd_batch(s_logits, t_logits, s_boxes, t_boxes, [], [], features))
    assert all(torch.isfinite(v) for v in no_gt.values())
    l1 = _pcd(loc_loss_type="l1")(batch)["loss_pcd_loc"]
    assert l1.item() == 0.0  # both sides' deltas are zeros in _pcd_batch


def test_pcd_quality_anchors_is_checked():
    with pytest.raises(ValueError, match="quality_anchors must be one of"):
        _pcd(quality_anchors="negative")
    cfg = tiny_cfg("RetinaNet")
    cfg.MODEL.DISTILL.PCD.QUALITY_ANCHORS = "negative"
    with pytest.raises(ValueError, match=r"MODEL\.DISTILL\.PCD\.QUALITY_ANCHORS must be one of"):
        PCD.build(cfg, build_model(cfg).backbone.output_shape(), {})


def test_pcd_non_finite_student_boxes_are_a_divergence():
    """Non-finite student boxes (weights a step made non-finite) raise Detectron2's divergence
    error, which the training loop reports as NonFiniteLossError, not giou_loss's "bad box"."""
    boxes = torch.tensor([[[1.0, 1.0, 9.0, 9.0], [21.0, 19.0, 31.0, 28.0]]])
    s_boxes = boxes.clone()
    s_boxes[0, 1, 0] = float("nan")
    logits, features = torch.zeros(1, 2, 3), torch.zeros(1, 4, 1, 2)
    batch = _pcd_batch(logits, logits, s_boxes, boxes, [[0, 0, 10, 10]], [2], features)
    with pytest.raises(FloatingPointError, match="Training has diverged.*student's decoded"):
        _pcd()(batch)


@pytest.mark.parametrize("key", ["CLS_WEIGHT", "QUALITY_WEIGHT"])
def test_pcd_negative_weights_are_errors_naming_the_key(key):
    check_negative_weight_is_error(RETINA, "PCD", key)
