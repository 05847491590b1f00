"""Response-based methods and IKD: PCD, DKD, IKD (losses, Distiller, configs, train_net)."""

import math
import os

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.modeling.matcher import Matcher
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from torch import nn
from torch.nn import functional as F
from tiny_models import ROOT, config_from_file, load_tool, random_batch, save_teacher, tiny_cfg

import csgr  # noqa: F401
from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset
from csgr.modeling.losses import DistillBatch
from csgr.modeling.losses.attention import SpatialAttention
from csgr.modeling.losses.dkd import DKDLoss, decoupled_kd_terms
from csgr.modeling.losses.ikd import IKDLoss
from csgr.modeling.losses.pcd import PCD, PCDLoss
from csgr.modeling.recorders import check_head_requirements

RCNN, RETINA = "GeneralizedRCNN", "RetinaNet"


# ---------------------------------------------------------------- DKD
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


# ---------------------------------------------------------------- PCD
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


def _sig(x):
    return 1 / (1 + math.exp(-x))


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

    conf = [max(_sig(v) for v in zt[a]) for a in range(2)]
    q0 = 0.5 * _sig(zt[0][0])  # IoU * teacher probability of the GT class
    weights = [q0, conf[1]]
    kl = [sum(_bkl(_sig(zt[a][k] / 2), _sig(zs[a][k] / 2)) for k in range(2)) for a in range(2)]
    cls = sum(w * v for w, v in zip(weights, kl)) / max(sum(weights), 1.0) * 4
    loc = (conf[0] * 0.0 + conf[1] * 0.5) / max(sum(conf), 1.0)
    qs = _sig(-1.0)
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


# ---------------------------------------------------------------- IKD
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

    a = _sig(b)
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


# ---------------------------------------------------------------- Distiller
@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("teachers"))
    return {arch: save_teacher(d, arch)[:2] for arch in (RCNN, RETINA)}


def _distill_cfg(teachers, method, student_arch, teacher_arch, num_classes=3):
    cfg = tiny_cfg(student_arch, num_classes=num_classes)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = student_arch
    cfg.MODEL.DISTILL.METHODS = [method]
    config_file, weights = teachers[teacher_arch]
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_file
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights
    return cfg


STEP_CASES = [
    ("PCD", RETINA, {"loss_pcd_cls", "loss_pcd_loc", "loss_pcd_quality"}),
    ("DKD", RCNN, {"loss_dkd"}),
    ("IKD", RCNN, {"loss_ikd_feat", "loss_ikd_logit", "loss_ikd_align"}),
    ("IKD", RETINA, {"loss_ikd_feat", "loss_ikd_align"}),
]


@pytest.mark.parametrize("method,arch,terms", STEP_CASES)
def test_training_step_through_distiller(teachers, method, arch, terms):
    torch.manual_seed(0)
    model = build_model(_distill_cfg(teachers, method, arch, arch))
    model.train()
    batch = random_batch()
    batch[1]["instances"] = batch[1]["instances"][:0]  # an image without GT boxes
    with EventStorage(0):
        losses = model(batch)
    distill = {k: v for k, v in losses.items() if k.startswith(f"loss_{method.lower()}_")}
    distill.update({k: v for k, v in losses.items() if k == f"loss_{method.lower()}"})
    assert set(distill) == terms
    assert ("roi_head" in model.distill_losses[method].REQUIRES) == (arch == RCNN)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(distill.values()).backward()  # the distillation terms alone reach the student
    student_grads = [p.grad for p in model.student.parameters() if p.grad is not None]
    assert student_grads and all(torch.isfinite(g).all() for g in student_grads)
    assert any(g.abs().sum() > 0 for g in student_grads)
    assert all(p.grad is not None for p in model.distill_losses.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not model.teacher.training


@pytest.mark.parametrize(
    "method,student_arch,teacher_arch,fragments",
    [
        ("DKD", RETINA, RETINA, ["DKD", "RetinaNet", "no ROI box head"]),
        ("DKD", RCNN, RETINA, ["DKD", "teacher is a RetinaNet", "Faster R-CNN"]),
        ("PCD", RETINA, RCNN, ["PCD", "teacher is a GeneralizedRCNN", "dense"]),
        ("PCD", RCNN, RCNN, ["PCD", "student", "GeneralizedRCNN"]),
        ("IKD", RCNN, RETINA, ["IKD", "teacher is a RetinaNet", "LOGIT_WEIGHT 0"]),
    ],
)
def test_inapplicable_pair_fails_at_build(teachers, method, student_arch, teacher_arch, fragments):
    cfg = _distill_cfg(teachers, method, student_arch, teacher_arch)
    with pytest.raises(ValueError) as e:
        build_model(cfg)
    for fragment in fragments:
        assert fragment in str(e.value), (fragment, str(e.value))


def test_dense_anchor_mismatch_fails():
    cfgs = [tiny_cfg(RETINA), tiny_cfg(RETINA)]
    cfgs[1].MODEL.ANCHOR_GENERATOR.SIZES = [[s] for s in (16, 32, 64, 128, 256)]
    student, teacher = (build_model(c) for c in cfgs)
    with pytest.raises(ValueError, match="anchors differ"):
        check_head_requirements({"PCD": {"dense_head"}}, student, teacher)


# ---------------------------------------------------------------- configs and train_net
MY_CONFIGS = [
    "Shapes/pcd_retinanet_r18_r34.yaml",
    "Shapes/ikd_retinanet_r18_r34.yaml",
    "Shapes/dkd_frcnn_r18_r34.yaml",
    "Shapes/ikd_frcnn_r18_r34.yaml",
] + [
    f"{ds}/{m}_{arch}_r50_r101_{sched}.yaml"
    for ds, sched in (("SODA10M", "1x"), ("VOC", "18k"), ("MiniCOCO", "1x"))
    for m, arch in (("pcd", "retinanet"), ("dkd", "frcnn"), ("ikd", "frcnn"))
]


@pytest.mark.parametrize("name", MY_CONFIGS)
def test_method_configs_load(name):
    cfg = config_from_file(os.path.join(ROOT, "configs", name))
    method = os.path.basename(name).split("_")[0].upper()
    assert list(cfg.MODEL.DISTILL.METHODS) == [method]
    assert cfg.MODEL.META_ARCHITECTURE == "Distiller"
    assert os.path.splitext(name)[0] in cfg.OUTPUT_DIR


@pytest.fixture(scope="module")
def shapes_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d2datasets")
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=12, num_val=6, image_size=64)
    d = str(tmp_path_factory.mktemp("shapes_teachers"))
    k = len(SHAPES_CATEGORIES)
    return root, {arch: save_teacher(d, arch, num_classes=k)[:2] for arch in (RCNN, RETINA)}


@pytest.mark.parametrize("method,arch,terms", STEP_CASES[:3])
def test_train_net_two_iterations(
    tmp_path, shapes_setup, monkeypatch, restore_catalogs, method, arch, terms
):
    root, teachers = shapes_setup
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    cfg = _distill_cfg(teachers, method, arch, arch, num_classes=len(SHAPES_CATEGORIES))
    cfg.DATASETS.TRAIN = ("csgr_shapes_train",)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.WARMUP_ITERS = 1
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    config_file = str(tmp_path / f"{method}.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    train_net = load_tool("train_net")
    from detectron2.engine import default_argument_parser

    train_net.main(default_argument_parser().parse_args(["--config-file", config_file]))
    with open(os.path.join(cfg.OUTPUT_DIR, "metrics.json")) as f:
        text = f.read()
    assert all(f'"{term}"' in text for term in terms), text
    assert os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))


@pytest.mark.parametrize(
    "arch, method, key",
    [
        ("RetinaNet", "PCD", "CLS_WEIGHT"),
        ("RetinaNet", "PCD", "QUALITY_WEIGHT"),
        ("GeneralizedRCNN", "DKD", "BETA"),
        ("GeneralizedRCNN", "IKD", "LOGIT_WEIGHT"),
    ],
)
def test_negative_weights_are_errors_naming_the_key(arch, method, key):
    from detectron2.layers import ShapeSpec

    from csgr.modeling.losses import get_method

    cfg = tiny_cfg(arch)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    levels = ("p2", "p3", "p4", "p5", "p6", "p7")
    shapes = {k: ShapeSpec(channels=32, stride=2 ** int(k[1:])) for k in levels}
    for value, match in ((-0.5, "is -0.5"), (-1.0, "is -1")):  # no published value: -1 too
        cfg.MODEL.DISTILL[method][key] = value
        with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} {match}"):
            get_method(method).build(cfg, shapes, shapes)
