"""FGD, MSE, PKD, CWD and MGD: known values, zeros, gradients, builders, a Distiller step, and
two iterations of tools/train_net.py on the generated shapes dataset."""

import json
import math
import os

import pytest
import torch
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from tiny_models import (
    ROOT,
    config_from_file,
    distill_cfg,
    load_tool,
    random_batch,
    save_teacher,
)

from csgr.config import add_csgr_config
from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset
from csgr.modeling.losses import (
    DISTILL_LOSS_REGISTRY,
    DistillBatch,
    DistillMethod,
    get_method,
    method_names,
)
from csgr.modeling.losses.cwd import CWDLoss
from csgr.modeling.losses.fgd import FGDLoss, fgd_attention, fgd_masks
from csgr.modeling.losses.gcblock import GcBlock
from csgr.modeling.losses.mgd import MGDLoss, random_position_mask
from csgr.modeling.losses.mse import MSELoss
from csgr.modeling.losses.pkd import PKDLoss

METHODS = ("FGD", "MSE", "PKD", "CWD", "MGD")
LOSS_KEYS = {
    "FGD": {"loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask", "loss_fgd_global"},
    "MSE": {"loss_mse"},
    "PKD": {"loss_pkd"},
    "CWD": {"loss_cwd"},
    "MGD": {"loss_mgd"},
}
SIZES = {"p3": (4, 6), "p4": (2, 3)}  # a 32 x 48 padded batch
IMAGE_SHAPE = (32, 48)


def features(channels, n=2, seed=0, requires_grad=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(n, channels, h, w, generator=g).to(dtype).requires_grad_(requires_grad)
        for k, (h, w) in SIZES.items()
    }


# Known-value tests run the losses in float64 (they are dtype-generic): the hand computations
# are then exact to ~1e-15 and the comparison does not depend on float32 rounding, which differs
# between machines (AVX2 vs AVX-512 kernels).
F64 = torch.float64


def instances(boxes):
    inst = Instances(IMAGE_SHAPE)
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.zeros(len(inst.gt_boxes), dtype=torch.int64)
    return inst


GT = [instances([[4, 3, 20, 14], [12, 8, 30, 30]]), instances([])]


def make_loss(method, cs=8, ct=8, **kwargs):
    torch.manual_seed(0)
    args = (list(SIZES), {k: cs for k in SIZES}, {k: ct for k in SIZES})
    if method == "FGD":
        weights = dict(alpha=1.0, beta=1.0, gamma=1.0, lambda_global=1.0)
        return FGDLoss(*args, **{**weights, **kwargs})
    if method == "CWD":
        return CWDLoss(*args, **{"weight": 1.0, "tau": 2.0, **kwargs})
    if method == "MGD":
        return MGDLoss(*args, **{"alpha": 1.0, "mask_ratio": 0.5, **kwargs})
    return {"MSE": MSELoss, "PKD": PKDLoss}[method](*args, **{"weight": 1.0, **kwargs})


def batch(student, teacher, gt=GT):
    return DistillBatch(student, teacher, gt_instances=gt, image_shape=IMAGE_SHAPE)


# ---------------------------------------------------------------- independent references


def loop_masks(boxes, image_shape, h, w):
    """FGD masks of one image, cell by cell."""
    sy, sx = h / image_shape[0], w / image_shape[1]
    fg = [[0.0] * w for _ in range(h)]
    for x0, y0, x1, y1 in boxes:
        c0, c1 = math.floor(x0 * sx), math.ceil(x1 * sx)
        r0, r1 = math.floor(y0 * sy), math.ceil(y1 * sy)
        value = 1.0 / ((r1 - r0 + 1) * (c1 - c0 + 1))
        for r in range(h):
            for c in range(w):
                if r0 <= r <= r1 and c0 <= c <= c1:
                    fg[r][c] = max(fg[r][c], value)
    n_bg = sum(v == 0 for row in fg for v in row)
    bg = [[(1.0 / n_bg if v == 0 else 0.0) for v in row] for row in fg]
    return torch.tensor(fg), torch.tensor(bg)


def loop_attention(x, temperature):
    """FGD attentions of one (C, H, W) map, with explicit sums."""
    c, h, w = x.shape
    spatial = [
        [sum(abs(x[k, i, j].item()) for k in range(c)) / c for j in range(w)] for i in range(h)
    ]
    channel = [sum(abs(v) for v in x[k].flatten().tolist()) / (h * w) for k in range(c)]
    zs = sum(math.exp(v / temperature) for row in spatial for v in row)
    zc = sum(math.exp(v / temperature) for v in channel)
    s = [[h * w * math.exp(v / temperature) / zs for v in row] for row in spatial]
    channel = [c * math.exp(v / temperature) / zc for v in channel]
    return torch.tensor(s, dtype=x.dtype), torch.tensor(channel, dtype=x.dtype)


def loop_gcblock(block, x):
    """GcBlock of one (C, H, W) map, position by position."""
    c, h, w = x.shape
    wk, bk = block.context_conv.weight.view(c), block.context_conv.bias.item()
    logits = [(wk * x[:, i, j]).sum().item() + bk for i in range(h) for j in range(w)]
    z = sum(math.exp(v) for v in logits)
    positions = [x[:, i, j] for i in range(h) for j in range(w)]
    context = sum(math.exp(v) / z * p for v, p in zip(logits, positions))
    conv1, norm, _, conv2 = block.transform
    hidden = conv1.weight.view(-1, c) @ context + conv1.bias
    hidden = (hidden - hidden.mean()) / torch.sqrt(hidden.var(unbiased=False) + norm.eps)
    hidden = torch.relu(hidden * norm.weight.view(-1) + norm.bias.view(-1))
    add = conv2.weight.view(c, -1) @ hidden + conv2.bias
    return x + add.view(c, 1, 1)


# ---------------------------------------------------------------- FGD


def test_fgd_masks_known_values():
    # padded 32 x 48 batch, level 4 x 6 (stride 8). Box A (4,3)-(20,14) -> cells x 0..3,
    # y 0..2 (1/12); box B (12,8)-(30,30) -> x 1..4, y 1..4 (1/16, clipped to y 1..3).
    fg, bg = fgd_masks([g.gt_boxes.tensor for g in GT], IMAGE_SHAPE, (4, 6))
    assert fg.shape == bg.shape == (2, 4, 6)
    assert fg[0, 0, 0].item() == pytest.approx(1 / 12)
    assert fg[0, 3, 4].item() == pytest.approx(1 / 16)
    assert fg[0, 2, 2].item() == pytest.approx(1 / 12)  # overlap: the max
    assert fg[0, 0, 5].item() == 0 and fg[0, 3, 0].item() == 0
    for i, g in enumerate(GT):
        ref_fg, ref_bg = loop_masks(g.gt_boxes.tensor.tolist(), IMAGE_SHAPE, 4, 6)
        torch.testing.assert_close(fg[i], ref_fg)
        torch.testing.assert_close(bg[i], ref_bg)
        assert bg[i].sum().item() == pytest.approx(1.0)
    assert torch.all(fg[1] == 0) and torch.allclose(bg[1], torch.full((4, 6), 1 / 24))


def test_fgd_masks_scale_by_padded_frame():
    # an image 40 px wide padded to 64, level 2 x 8 (8 px per cell of the padded frame): the box
    # x 31..40 covers cells floor(3.875)=3 .. ceil(5)=5, rows 0..1, so 1/6. Scaling by the
    # un-padded width (FGD's code: x / 40 * 8) would give cells 6..8 instead.
    fg, bg = fgd_masks([torch.tensor([[31.0, 0.0, 40.0, 8.0]])], (16, 64), (2, 8))
    torch.testing.assert_close(fg[0], loop_masks([[31, 0, 40, 8]], (16, 64), 2, 8)[0])
    assert fg[0, 0].nonzero().flatten().tolist() == [3, 4, 5]
    assert fg[0, 1].nonzero().flatten().tolist() == [3, 4, 5]
    assert fg[0, 0, 3].item() == pytest.approx(1 / 6)
    assert bg[0, 0, 0].item() == pytest.approx(1 / 10) and bg[0, 0, 4].item() == 0


def test_fgd_attention_known_values():
    x = torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(3))
    spatial, channel = fgd_attention(x, 0.5)
    for i in range(2):
        ref_s, ref_c = loop_attention(x[i], 0.5)
        torch.testing.assert_close(spatial[i], ref_s)
        torch.testing.assert_close(channel[i], ref_c)
    assert spatial.sum(dim=(1, 2)).tolist() == pytest.approx([8.0, 8.0])


def test_gcblock_known_value():
    torch.manual_seed(0)
    block = GcBlock(6)
    with torch.no_grad():  # leave the identity initialisation, to test every part
        for p in block.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(2, 6, 3, 4)
    out = block(x)
    for i in range(2):
        torch.testing.assert_close(out[i], loop_gcblock(block, x[i]), rtol=1e-4, atol=1e-5)
    assert torch.equal(GcBlock(6)(x), x)  # the published initialisation is the identity


def test_fgd_loss_known_value():
    loss = make_loss("FGD", temperature=0.5).double()
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    out = loss(batch(student, teacher))
    assert set(out) == LOSS_KEYS["FGD"]
    expected = dict.fromkeys(("fg", "bg", "mask", "global"), 0.0)
    for k, (h, w) in SIZES.items():
        for i in range(2):
            s, t = student[k][i], teacher[k][i]
            fg, bg = loop_masks(GT[i].gt_boxes.tensor.tolist(), IMAGE_SHAPE, h, w)
            s_t, c_t = loop_attention(t, 0.5)
            s_s, c_s = loop_attention(s, 0.5)
            for c in range(8):
                for r in range(h):
                    for q in range(w):
                        d2 = (s[c, r, q] - t[c, r, q]).item() ** 2 * s_t[r, q] * c_t[c]
                        expected["fg"] += d2 * fg[r, q].item() / 2
                        expected["bg"] += d2 * bg[r, q].item() / 2
            expected["mask"] += ((c_s - c_t).abs().sum() + (s_s - s_t).abs().sum()).item() / 2
            relation = loop_gcblock(loss.student_gc[k], s) - loop_gcblock(loss.teacher_gc[k], t)
            expected["global"] += relation.pow(2).sum().item() / 2
    for term, value in expected.items():
        assert out[f"loss_fgd_{term}"].item() == pytest.approx(float(value), rel=1e-10), term
    weighted = make_loss("FGD", alpha=2.0, beta=3.0, gamma=4.0, lambda_global=5.0).double()(
        batch(student, teacher)
    )
    for term, w in (("fg", 2.0), ("bg", 3.0), ("mask", 4.0), ("global", 5.0)):
        key = f"loss_fgd_{term}"
        assert weighted[key].item() == pytest.approx(w * out[key].item(), rel=1e-12)


def test_fgd_without_gt_boxes_is_finite():
    loss = make_loss("FGD", cs=4, ct=8)
    student = features(4, seed=1, requires_grad=True)
    out = loss(batch(student, features(8, seed=2), gt=[instances([]), instances([])]))
    assert out["loss_fgd_fg"].item() == 0.0
    assert all(torch.isfinite(v) for v in out.values()) and out["loss_fgd_bg"].item() > 0
    sum(out.values()).backward()
    assert all(torch.isfinite(v.grad).all() for v in student.values())


def test_fgd_needs_gt_per_image():
    with pytest.raises(ValueError, match="ground truth"):
        make_loss("FGD")(batch(features(8), features(8), gt=[]))


# ---------------------------------------------------------------- baselines


def test_mse_known_value():
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    expected = 0.0
    for k in SIZES:
        diffs = (student[k] - teacher[k]).flatten().tolist()
        expected += sum(d * d for d in diffs) / len(diffs)
    out = make_loss("MSE", weight=3.0).double()(batch(student, teacher))
    assert out["loss_mse"].item() == pytest.approx(3.0 * expected, rel=1e-10)


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


def test_cwd_known_value():
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    tau, expected = 2.0, 0.0
    for k in SIZES:
        for n in range(2):
            for c in range(8):
                s = [v / tau for v in student[k][n, c].flatten().tolist()]
                t = [v / tau for v in teacher[k][n, c].flatten().tolist()]
                zs, zt = sum(math.exp(v) for v in s), sum(math.exp(v) for v in t)
                for vs, vt in zip(s, t):
                    p, q = math.exp(vt) / zt, math.exp(vs) / zs
                    expected += p * math.log(p / q) * tau**2 / (2 * 8)
    out = make_loss("CWD", weight=5.0, tau=tau).double()(batch(student, teacher))
    assert out["loss_cwd"].item() == pytest.approx(5.0 * expected, rel=1e-10)


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


@pytest.mark.parametrize("method", ["FGD", "MSE", "PKD", "CWD"])
def test_zero_when_student_equals_teacher(method):
    teacher = features(8, seed=2)
    out = make_loss(method)(batch({k: v.clone() for k, v in teacher.items()}, teacher))
    keys = LOSS_KEYS[method] - {"loss_fgd_global"}  # separate GcBlocks need not agree
    for key in keys:
        assert out[key].item() == pytest.approx(0.0, abs=1e-6), key
    differ = make_loss(method)(batch(features(8, seed=1), teacher))
    assert all(differ[key].item() > 0 for key in keys)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_student_and_loss_parameters_only(method):
    loss = make_loss(method, cs=4, ct=8)
    student = features(4, seed=1, requires_grad=True)
    teacher = features(8, seed=2, requires_grad=True)
    out = loss(batch(student, teacher))
    assert set(out) == LOSS_KEYS[method]
    sum(out.values()).backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in student.values())
    assert all(v.grad is None for v in teacher.values())
    params = dict(loss.named_parameters())
    assert any(name.startswith("adapters.") for name in params)
    missing = [name for name, p in params.items() if p.grad is None]
    assert not missing, missing
    if method == "FGD":  # the zero-initialised last convs of both GcBlocks learn
        assert loss.student_gc["p3"].transform[-1].weight.grad.abs().sum() > 0
        assert loss.teacher_gc["p3"].transform[-1].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- builders and the Distiller


def cfg_for(arch, methods=METHODS):
    cfg = get_cfg()
    add_csgr_config(cfg)
    add_csgr_config(cfg)  # idempotent
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    cfg.MODEL.DISTILL.METHODS = list(methods)
    return cfg


def shapes(channels, levels):
    return {k: ShapeSpec(channels=channels, stride=2 ** int(k[1:])) for k in levels}


@pytest.mark.parametrize(
    "arch, levels, published",
    [
        ("RetinaNet", ["p3", "p4", "p5", "p6", "p7"], (1e-3, 5e-4, 5e-4, 5e-6, 10, 10, 2e-5, 0.65)),
        (
            "GeneralizedRCNN",
            ["p2", "p3", "p4", "p5"],
            (5e-5, 2.5e-5, 5e-5, 5e-7, 6, 10, 5e-7, 0.45),
        ),
    ],
)
def test_builders_take_published_defaults_per_student_type(arch, levels, published):
    # published levels (the reference configs): PKD four, MGD and FGD as FGD, CWD every level
    pub_levels = {
        "RetinaNet": {"PKD": ["p3", "p4", "p5", "p6"], "CWD": ["p3", "p4", "p5", "p6", "p7"]},
        "GeneralizedRCNN": {"PKD": ["p2", "p3", "p4", "p5"], "CWD": ["p2", "p3", "p4", "p5", "p6"]},
    }[arch]
    pub_levels["MGD"] = levels
    cfg = cfg_for(arch)
    all_levels = ["p2", "p3", "p4", "p5", "p6", "p7"]
    s, t = shapes(16, all_levels), shapes(32, all_levels)
    built = {m: DISTILL_LOSS_REGISTRY.get(m).build(cfg, s, t) for m in METHODS}
    fgd = built["FGD"]
    assert fgd.in_features == levels and fgd.temperature == 0.5
    alpha, beta, gamma, lam, pkd, cwd, mgd_alpha, mgd_ratio = published
    assert (fgd.alpha, fgd.beta, fgd.gamma, fgd.lambda_global) == (alpha, beta, gamma, lam)
    assert built["PKD"].weight == pkd and built["CWD"].weight == cwd and built["CWD"].tau == 1.0
    assert (built["MGD"].weight, built["MGD"].mask_ratio) == (mgd_alpha, mgd_ratio)
    assert built["MSE"].weight == 1.0
    assert built["MSE"].in_features == all_levels  # [] = every common level (no publication)
    for m in ("PKD", "CWD", "MGD"):
        assert built[m].in_features == pub_levels[m], m
    assert set(fgd.adapters.adapters) == set(levels)  # 16 -> 32 channels

    cfg.MODEL.DISTILL.FGD.ALPHA_FG = 0.25
    cfg.MODEL.DISTILL.FGD.IN_FEATURES = ["p4"]
    cfg.MODEL.DISTILL.PKD.WEIGHT = 0.0
    cfg.MODEL.DISTILL.MGD.IN_FEATURES = ["p5", "p3"]
    fgd = DISTILL_LOSS_REGISTRY.get("FGD").build(cfg, s, t)
    assert fgd.alpha == 0.25 and fgd.beta == beta and fgd.in_features == ["p4"]
    assert DISTILL_LOSS_REGISTRY.get("PKD").build(cfg, s, t).weight == 0.0
    assert DISTILL_LOSS_REGISTRY.get("MGD").build(cfg, s, t).in_features == ["p3", "p5"]


def test_auto_value_needs_a_known_student_type():
    cfg = cfg_for("SomeDetector")
    s = shapes(16, ["p3", "p4"])
    with pytest.raises(ValueError, match="MODEL.DISTILL.PKD.WEIGHT"):
        DISTILL_LOSS_REGISTRY.get("PKD").build(cfg, s, s)
    cfg.MODEL.DISTILL.PKD.WEIGHT = 1.0
    assert DISTILL_LOSS_REGISTRY.get("PKD").build(cfg, s, s).weight == 1.0


@pytest.mark.parametrize("method, key", [("PKD", "WEIGHT"), ("MSE", "WEIGHT"), ("MGD", "ALPHA")])
def test_only_minus_one_means_published(method, key):
    cfg = cfg_for("RetinaNet")
    s = shapes(16, ["p3", "p4"])
    cfg.MODEL.DISTILL[method][key] = -0.5
    with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} is -0\.5"):
        DISTILL_LOSS_REGISTRY.get(method).build(cfg, s, s)
    cfg.MODEL.DISTILL[method][key] = -1.0
    method_cls = DISTILL_LOSS_REGISTRY.get(method)
    if "RetinaNet" in method_cls.PUBLISHED:
        assert method_cls.published(cfg, key) == method_cls.PUBLISHED["RetinaNet"][key]
    else:  # no published value (MSE): -1 is an error naming the key
        with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} is -1"):
            method_cls.published(cfg, key)


@pytest.mark.parametrize("student_arch", ["GeneralizedRCNN", "RetinaNet"])
def test_distiller_training_step_all_methods(tmp_path, student_arch):
    cfg = distill_cfg(str(tmp_path), student_arch, student_arch)
    cfg.MODEL.DISTILL.METHODS = list(METHODS)
    model = build_model(cfg)
    model.train()
    with EventStorage(0):
        losses = model(random_batch())
    assert set().union(*LOSS_KEYS.values()) <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in METHODS:
        params = list(model.distill_losses[name].named_parameters())
        assert params and all(p.grad is not None for _, p in params), name
    trainable = [p for p in model.student.backbone.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())


CONFIGS = [
    (ds, f"{m.lower()}_{arch}_{suffix}.yaml", m)
    for ds, suffix in (
        ("Shapes", "r18_r34"),
        ("SODA10M", "r50_r101_1x"),
        ("VOC", "r50_r101_18k"),
        ("MiniCOCO", "r50_r101_1x"),
    )
    for arch in ("frcnn", "retinanet")
    for m in METHODS
]


@pytest.mark.parametrize("dataset, name, method", CONFIGS)
def test_configs_switch_only_the_method(dataset, name, method):
    folder = os.path.join(ROOT, "configs", dataset)
    cfg = config_from_file(os.path.join(folder, name))
    csgr_cfg = config_from_file(os.path.join(folder, "csgr_" + name.split("_", 1)[1]))
    assert list(cfg.MODEL.DISTILL.METHODS) == [method]
    assert cfg.OUTPUT_DIR == f"output/{dataset}/{name[:-5]}"
    cfg.MODEL.DISTILL.METHODS, cfg.OUTPUT_DIR = csgr_cfg.MODEL.DISTILL.METHODS, csgr_cfg.OUTPUT_DIR
    # a config may also set its own method's keys (e.g. FGD's levels), nothing else
    cfg.MODEL.DISTILL[method] = csgr_cfg.MODEL.DISTILL[method].clone()
    assert cfg.dump() == csgr_cfg.dump()


# ---------------------------------------------------------------- tools/train_net.py


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("d2datasets")
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=4, num_val=2, image_size=64)
    return root


@pytest.mark.parametrize(
    "method, arch",
    [
        ("FGD", "retinanet"),
        ("MSE", "frcnn"),
        ("PKD", "retinanet"),
        ("CWD", "frcnn"),
        ("MGD", "frcnn"),
    ],
)
def test_train_net_two_iterations(
    tmp_path, shapes_root, monkeypatch, restore_catalogs, method, arch
):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    teacher_arch = "RetinaNet" if arch == "retinanet" else "GeneralizedRCNN"
    shapes_base = f"Base-Shapes-{'RetinaNet' if arch == 'retinanet' else 'RCNN'}.yaml"
    teacher_cfg, teacher_weights, _ = save_teacher(  # the levels of the shapes configs
        str(tmp_path),
        teacher_arch,
        depth=18,
        num_classes=len(SHAPES_CATEGORIES),
        base=os.path.join(ROOT, "configs", "Shapes", shapes_base),
    )
    config_file = os.path.join(ROOT, "configs", "Shapes", f"{method.lower()}_{arch}_r18_r34.yaml")
    opts = {
        "MODEL.DISTILL.TEACHER.CONFIG_FILE": teacher_cfg,
        "MODEL.DISTILL.TEACHER.WEIGHTS": teacher_weights,
        "INPUT.MIN_SIZE_TRAIN": "(64,)",
        "INPUT.MAX_SIZE_TRAIN": 64,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": 64,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 32,
        "SOLVER.IMS_PER_BATCH": 2,
        "SOLVER.MAX_ITER": 2,
        "SOLVER.WARMUP_ITERS": 1,
        "DATALOADER.NUM_WORKERS": 0,
        "DATASETS.TEST": "()",
        "OUTPUT_DIR": str(tmp_path / "run"),
    }
    argv = ["--config-file", config_file] + [str(x) for kv in opts.items() for x in kv]
    load_tool("train_net").main(default_argument_parser().parse_args(argv))
    with open(tmp_path / "run" / "metrics.json") as f:
        records = [json.loads(line) for line in f if '"iteration"' in line]
    assert records and records[-1]["iteration"] == 1
    for key in LOSS_KEYS[method]:
        assert math.isfinite(records[-1][key]), key
    assert os.path.isfile(tmp_path / "run" / "model_final.pth")


def test_add_csgr_config_completes_an_existing_distill_node():
    cfg = get_cfg()
    cfg.MODEL.DISTILL = CN()
    cfg.MODEL.DISTILL.METHODS = ["PKD"]
    cfg.MODEL.DISTILL.PKD = CN()
    cfg.MODEL.DISTILL.PKD.WEIGHT = 2.0
    add_csgr_config(cfg)
    assert cfg.MODEL.DISTILL.METHODS == ["PKD"] and cfg.MODEL.DISTILL.PKD.WEIGHT == 2.0
    assert cfg.MODEL.DISTILL.PKD.IN_FEATURES == [] and cfg.MODEL.DISTILL.TEACHER.WEIGHTS == ""
    assert cfg.MODEL.DISTILL.MGD.ALPHA == -1.0


def test_every_registered_method_describes_itself():
    """Config node, builder and applicability come from each method's registry entry."""
    cfg = cfg_for("RetinaNet")
    names = method_names()
    assert names[0] == "CSGR" and set(METHODS) <= set(names)
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
