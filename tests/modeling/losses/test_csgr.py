"""CSGRLoss: values, gradients, precision and the registry builder."""

import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.structures import Boxes, Instances
from loss_inputs import shapes

from csgr.config import add_csgr_config
from csgr.modeling.losses import DISTILL_LOSS_REGISTRY, CSGRLoss, DistillBatch
from csgr.modeling.losses.csgr_category import (
    assign_box_levels,
    box_category_attention,
    normalize_per_channel,
)

SIZES = {"p3": (8, 12), "p4": (4, 6)}


def features(channels, n=2, seed=0, requires_grad=False):
    """Random FPN features by level, (n, channels, H, W)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(n, channels, h, w, generator=g).requires_grad_(requires_grad)
        for k, (h, w) in SIZES.items()
    }


def make_loss(cs=16, ct=16, num_classes=3, **kwargs):
    torch.manual_seed(0)
    return CSGRLoss(
        in_features=list(SIZES),
        student_channels={k: cs for k in SIZES},
        teacher_channels={k: ct for k in SIZES},
        num_classes=num_classes,
        **kwargs,
    )


def test_zero_for_equal_features_and_positive_otherwise():
    loss = make_loss(recurrence=2)
    with torch.no_grad():
        for cca in loss.relations.values():
            cca.gamma.fill_(0.5)
    teacher = features(16, seed=1)
    student = {k: v.clone().requires_grad_() for k, v in teacher.items()}
    same = loss(DistillBatch(student, teacher))
    assert set(same) == {"loss_csgr_cat", "loss_csgr_rel"}
    assert same["loss_csgr_cat"].item() == 0.0
    assert same["loss_csgr_rel"].item() == 0.0
    differ = loss(DistillBatch(features(16, seed=2), teacher))
    assert differ["loss_csgr_cat"].item() > 0
    assert differ["loss_csgr_rel"].item() > 0


def test_relation_term_positive_with_gamma_zero():
    loss = make_loss()
    assert all(cca.gamma.item() == 0.0 for cca in loss.relations.values())
    out = loss(DistillBatch(features(16, seed=2), features(16, seed=1)))
    assert out["loss_csgr_rel"].item() > 0


def test_gradients_reach_student_and_parameters_never_teacher():
    loss = make_loss(cs=8, ct=16)  # differing widths: adapters on every level
    student = features(8, seed=2, requires_grad=True)
    teacher = features(16, seed=1, requires_grad=True)  # even so, no gradient may reach it
    optimizer = torch.optim.SGD(loss.parameters(), lr=1.0)

    def step():
        optimizer.zero_grad()
        sum(loss(DistillBatch(student, teacher)).values()).backward()

    step()
    for k in SIZES:
        assert student[k].grad is not None and student[k].grad.abs().sum() > 0
        assert teacher[k].grad is None
        assert loss.adapters.adapters[k].weight.grad.abs().sum() > 0
        assert loss.classifiers[k].weight.grad.abs().sum() > 0
        cca = loss.relations[k]
        assert cca.gamma.grad.abs().sum() > 0
        # gamma == 0 blocks the attention branch on the first step...
        assert cca.value_conv.weight.grad.abs().sum() == 0
    optimizer.step()
    step()
    for k in SIZES:
        cca = loss.relations[k]
        assert cca.gamma.item() != 0.0
        # ...and lets it through once gamma has moved.
        for conv in (cca.query_conv, cca.key_conv, cca.value_conv):
            assert conv.weight.grad.abs().sum() > 0, (k, conv)
        assert teacher[k].grad is None


def _normalise(values, eps=1e-5):
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return [(v - mean) / math.sqrt(var + eps) for v in values]


def _prototype(values, weight, bias):
    logits = [weight * v + bias for v in values]
    z = sum(math.exp(x) for x in logits)
    return sum(math.exp(x) / z * v for x, v in zip(logits, values))


def test_known_values_on_a_tiny_map():
    # K = 1 class, C = 1 channel, N = 1, a 1x3 map; gamma = 0 so CCA is the identity.
    # The category term is the square of a difference of two close prototypes (about 0.02
    # apart), so float32 rounding of each prototype (~5e-8) becomes a relative error of ~1e-5 in
    # the result, which depends on the machine's kernels (AVX2 vs AVX-512). The loss is
    # dtype-generic: run it in float64, where the hand computation below is exact to ~1e-15.
    loss = CSGRLoss(["p3"], {"p3": 1}, {"p3": 1}, num_classes=1, cat_weight=0.5, rel_weight=0.25)
    loss.double()
    weight, bias = 0.7, -0.2
    with torch.no_grad():
        loss.classifiers["p3"].weight.fill_(weight)
        loss.classifiers["p3"].bias.fill_(bias)
    t_values, s_values = [0.0, 1.0, 5.0], [3.0, 1.0, 1.0]
    teacher = {"p3": torch.tensor(t_values, dtype=torch.float64).view(1, 1, 1, 3)}
    student = {"p3": torch.tensor(s_values, dtype=torch.float64).view(1, 1, 1, 3)}
    out = loss(DistillBatch(student, teacher))
    assert out["loss_csgr_cat"].dtype == out["loss_csgr_rel"].dtype == torch.float64

    ft, fs = _normalise(t_values), _normalise(s_values)
    expected_cat = 0.5 * (_prototype(ft, weight, bias) - _prototype(fs, weight, bias)) ** 2
    expected_rel = 0.25 * sum((a - b) ** 2 for a, b in zip(ft, fs))
    assert out["loss_csgr_cat"].item() == pytest.approx(expected_cat, rel=1e-10)
    assert out["loss_csgr_rel"].item() == pytest.approx(expected_rel, rel=1e-10)
    assert expected_cat > 0


def test_published_formulation_pinned():
    # The published CSGR (learned category attention), values recorded before any other
    # category attention existed: the module's seeded init, random maps, gamma 0.5, float64.
    loss = make_loss().double()
    with torch.no_grad():
        for module in loss.relations.values():
            module.gamma.fill_(0.5)
    student = {k: v.double().requires_grad_(True) for k, v in features(16, seed=2).items()}
    teacher = {k: v.double() for k, v in features(16, seed=1).items()}
    out = loss(DistillBatch(student, teacher))
    assert out["loss_csgr_cat"].item() == pytest.approx(0.002557824556841576, rel=1e-9)
    assert out["loss_csgr_rel"].item() == pytest.approx(0.046215594275673635, rel=1e-9)
    grads = torch.autograd.grad(
        out["loss_csgr_cat"], [student["p3"], loss.classifiers["p3"].weight]
    )
    assert grads[0].norm().item() == pytest.approx(0.00020441280755254833, rel=1e-9)
    assert grads[1].norm().item() == pytest.approx(0.0012776629938451194, rel=1e-9)


def test_divides_by_batch_size():
    # Repeating a batch leaves the per-channel statistics and the per-image loss unchanged.
    # float64: the two batch sizes reduce in different orders, which float32 rounds differently.
    loss = make_loss().double()
    student, teacher = features(16, n=1, seed=2), features(16, n=1, seed=1)
    student = {k: v.double() for k, v in student.items()}
    teacher = {k: v.double() for k, v in teacher.items()}
    single = loss(DistillBatch(student, teacher))
    double = loss(
        DistillBatch(
            {k: torch.cat([v, v]) for k, v in student.items()},
            {k: torch.cat([v, v]) for k, v in teacher.items()},
        )
    )
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=1e-12, atol=0)


def test_finite_with_empty_gt_and_constant_maps():
    loss = make_loss()
    student = {k: torch.zeros_like(v) for k, v in features(16).items()}  # zero variance
    out = loss(DistillBatch(student, features(16, seed=1), gt_instances=[], image_shape=(64, 96)))
    assert all(torch.isfinite(v) for v in out.values())
    gt = Instances((64, 96), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0).long())
    out = loss(DistillBatch(features(16, seed=2), features(16, seed=1), gt_instances=[gt, gt]))
    assert all(torch.isfinite(v) for v in out.values())


def test_float32_under_autocast():
    loss = make_loss()
    student, teacher = features(16, seed=2), features(16, seed=1)
    expected = loss(DistillBatch(student, teacher))
    half = {k: v.bfloat16() for k, v in student.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(DistillBatch(student, teacher))
        out_half = loss(DistillBatch(half, {k: v.bfloat16() for k, v in teacher.items()}))
    for key in expected:
        assert out[key].dtype == torch.float32
        torch.testing.assert_close(out[key], expected[key])  # autocast is off inside the loss
        assert torch.isfinite(out_half[key])
        torch.testing.assert_close(out_half[key], expected[key], rtol=0.05, atol=0)


def test_builder_reads_config():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # every key read as set
    cfg.MODEL.DISTILL.CSGR.IN_FEATURES = ["p4", "p3"]
    cfg.MODEL.DISTILL.CSGR.CAT_WEIGHT = 2e-3
    cfg.MODEL.DISTILL.CSGR.REL_WEIGHT = 3e-5
    cfg.MODEL.DISTILL.CSGR.RECURRENCE = 2
    cfg.MODEL.DISTILL.CSGR.REDUCTION = 4
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 7
    cfg.MODEL.RETINANET.NUM_CLASSES = 9
    loss = DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(16), shapes(16))
    assert isinstance(loss, CSGRLoss)
    assert loss.in_features == ["p3", "p4"]  # ordered by stride
    assert (loss.cat_weight, loss.rel_weight) == (2e-3, 3e-5)
    assert loss.classifiers["p3"].out_channels == 7
    assert loss.relations["p4"].recurrence == 2
    assert loss.relations["p4"].query_conv.out_channels == 4
    assert len(loss.adapters.adapters) == 0  # equal widths, ADAPTER "auto"
    out = loss(DistillBatch(features(16, seed=2), features(16, seed=1)))
    assert set(out) == {"loss_csgr_cat", "loss_csgr_rel"}

    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = "RetinaNet"
    cfg.MODEL.DISTILL.CSGR.IN_FEATURES = []
    loss = DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(16), shapes(16, ("p3", "p4")))
    assert loss.classifiers["p3"].out_channels == 9
    assert loss.in_features == ["p3", "p4"]  # every common level


def test_builder_missing_level_names_both_sides():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.IN_FEATURES = ["p3", "p5"]
    with pytest.raises(ValueError) as err:
        DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(16), shapes(16, ("p3", "p4")))
    message = str(err.value)
    assert "p5" in message
    assert "student levels ['p3', 'p4', 'p5']" in message
    assert "teacher levels ['p3', 'p4']" in message


def test_builder_adapts_differing_widths():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # every key read as set
    cfg.MODEL.DISTILL.CSGR.IN_FEATURES = ["p3", "p4"]
    loss = DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(8), shapes(16))
    for k in ("p3", "p4"):
        adapter = loss.adapters.adapters[k]
        assert (adapter.in_channels, adapter.out_channels) == (8, 16)
        assert loss.relations[k].in_channels == 16
    out = loss(DistillBatch(features(8, seed=2), features(16, seed=1)))
    assert all(torch.isfinite(v) and v > 0 for v in out.values())

    cfg.MODEL.DISTILL.ADAPTER = "never"
    with pytest.raises(ValueError, match="never"):
        DISTILL_LOSS_REGISTRY.get("CSGR").build(cfg, shapes(8), shapes(16))


def test_relation_levels_separate_from_category_levels():
    # Category term on p3 and p4, relation term on p4 only: each term equals the same term of a
    # loss on its own levels with the same modules.
    both = make_loss()
    with torch.no_grad():
        for cca in both.relations.values():
            cca.gamma.fill_(0.5)
    split = make_loss(rel_features=["p4"])
    assert sorted(split.classifiers) == ["p3", "p4"] and list(split.relations) == ["p4"]
    split.load_state_dict({k: v for k, v in both.state_dict().items() if "relations.p3" not in k})
    only_p4 = CSGRLoss(["p4"], {"p4": 16}, {"p4": 16}, num_classes=3)
    only_p4.load_state_dict(
        {k: v for k, v in both.state_dict().items() if "p4" in k and "adapters" not in k}
    )
    student, teacher = features(16, seed=2), features(16, seed=1)
    out_split = split(DistillBatch(student, teacher))
    torch.testing.assert_close(
        out_split["loss_csgr_cat"], both(DistillBatch(student, teacher))["loss_csgr_cat"]
    )
    torch.testing.assert_close(
        out_split["loss_csgr_rel"], only_p4(DistillBatch(student, teacher))["loss_csgr_rel"]
    )
    # A relation level outside the category levels gets its adapter too.
    wider = CSGRLoss(["p4"], {"p3": 8, "p4": 8}, {"p3": 16, "p4": 16}, 3, rel_features=["p3"])
    assert sorted(wider.adapters.adapters) == ["p3", "p4"] and list(wider.relations) == ["p3"]
    out = wider(DistillBatch(features(8, seed=2), teacher))
    assert out["loss_csgr_rel"].item() > 0


def test_builder_reads_relation_levels():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # every key read as set
    assert cfg.MODEL.DISTILL.CSGR.REL_IN_FEATURES == []
    build = DISTILL_LOSS_REGISTRY.get("CSGR").build
    loss = build(cfg, shapes(16), shapes(16))
    assert loss.rel_features == loss.in_features == ["p3", "p4", "p5"]  # [] = IN_FEATURES
    cfg.MODEL.DISTILL.CSGR.REL_IN_FEATURES = ["p5", "p4"]
    loss = build(cfg, shapes(16), shapes(16))
    assert loss.in_features == ["p3", "p4", "p5"] and loss.rel_features == ["p4", "p5"]
    assert sorted(loss.relations) == ["p4", "p5"]
    cfg.MODEL.DISTILL.CSGR.REL_IN_FEATURES = ["p6"]
    with pytest.raises(ValueError, match=r"REL_IN_FEATURES names \['p6'\]"):
        build(cfg, shapes(16), shapes(16))


def test_builder_reads_relation_init():
    cfg = get_cfg()
    add_csgr_config(cfg)
    assert cfg.MODEL.DISTILL.CSGR.RELATION_INIT == "kaiming"
    build = DISTILL_LOSS_REGISTRY.get("CSGR").build
    loss = build(cfg, shapes(16), shapes(16))
    assert all(torch.count_nonzero(r.value_conv.bias) == 0 for r in loss.relations.values())
    cfg.MODEL.DISTILL.CSGR.RELATION_INIT = "default"
    loss = build(cfg, shapes(16), shapes(16))
    assert all(torch.count_nonzero(r.value_conv.bias) > 0 for r in loss.relations.values())
    cfg.MODEL.DISTILL.CSGR.RELATION_INIT = "orthogonal"
    with pytest.raises(ValueError, match="CSGR.RELATION_INIT must be one of"):
        build(cfg, shapes(16), shapes(16))


def _gt(boxes, classes, image_shape=(64, 64)):
    return Instances(
        image_shape,
        gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).view(-1, 4)),
        gt_classes=torch.tensor(classes, dtype=torch.long),
    )


def test_box_category_attention_known_values():
    # A 64x64 padded batch, an 8x8 level (stride 8); cells floor(x0 / 8) .. ceil(x1 / 8).
    gt = _gt([[0, 0, 15, 15], [16, 16, 24, 24], [40, 0, 48, 8]], [1, 0, 0])
    attention = box_category_attention([gt, _gt([], [])], 3, (64, 64), (8, 8))
    assert attention.shape == (2, 3, 64) and attention.dtype == torch.float32
    maps = attention.view(2, 3, 8, 8)
    expected = torch.zeros(3, 8, 8)
    expected[1, 0:3, 0:3] = 1 / 9  # one box of 3x3 cells
    expected[0, 2:4, 2:4] = 1 / 8  # two boxes of 2x2 cells, each half the class's mass
    expected[0, 0:2, 5:7] = 1 / 8
    torch.testing.assert_close(maps[0], expected, rtol=0, atol=1e-7)
    assert not maps[1].any()  # no box: no attention
    torch.testing.assert_close(attention[0].sum(1), torch.tensor([1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="padded image shape"):
        box_category_attention([gt], 3, (0, 0), (8, 8))


def test_gt_category_attention_known_values_and_gradients():
    # K = 2, C = 1, N = 1, a 2x2 level of a 32x32 batch (stride 16); float64 as above.
    loss = CSGRLoss(
        ["p4"], {"p4": 1}, {"p4": 1}, 2, cat_weight=0.5, rel_weight=0.0, category_attention="gt"
    ).double()
    assert len(loss.classifiers) == 0  # no classifier to learn
    t_values, s_values = [0.0, 1.0, 5.0, 2.0], [3.0, 1.0, 1.0, 0.0]
    teacher = {"p4": torch.tensor(t_values, dtype=torch.float64).view(1, 1, 2, 2)}
    student = {"p4": torch.tensor(s_values, dtype=torch.float64).view(1, 1, 2, 2)}
    student["p4"].requires_grad_(True)
    # cells floor(x0 / 16) .. ceil(x1 / 16), both included, clipped to the map: class 0 covers
    # the top row, class 1 the bottom-right cell
    gt = _gt([[0, 0, 16, 0], [16, 16, 32, 32]], [0, 1], (32, 32))
    out = loss(DistillBatch(student, teacher, gt_instances=[gt], image_shape=(32, 32)))
    ft, fs = _normalise(t_values), _normalise(s_values)
    diff = [a - b for a, b in zip(ft, fs)]  # positions (0,0) (0,1) (1,0) (1,1)
    expected = 0.5 * (((diff[0] + diff[1]) / 2) ** 2 + diff[3] ** 2)
    assert out["loss_csgr_cat"].item() == pytest.approx(expected, rel=1e-10)
    (grad,) = torch.autograd.grad(out["loss_csgr_cat"], student["p4"])
    assert grad.abs().sum() > 0  # through the prototypes and the per-channel statistics
    with pytest.raises(ValueError, match="needs the ground truth of each image"):
        loss(DistillBatch(student, teacher, gt_instances=[], image_shape=(32, 32)))


def test_builder_reads_category_attention():
    cfg = get_cfg()
    add_csgr_config(cfg)
    build = DISTILL_LOSS_REGISTRY.get("CSGR").build
    assert cfg.MODEL.DISTILL.CSGR.CATEGORY_ATTENTION == "learned"
    assert sorted(build(cfg, shapes(16), shapes(16)).classifiers) == ["p3", "p4", "p5"]
    cfg.MODEL.DISTILL.CSGR.CATEGORY_ATTENTION = "gt"
    loss = build(cfg, shapes(16), shapes(16))
    assert loss.category_attention == "gt" and len(loss.classifiers) == 0
    cfg.MODEL.DISTILL.CSGR.CATEGORY_ATTENTION = "labels"
    with pytest.raises(ValueError, match="CATEGORY_ATTENTION must be one of"):
        build(cfg, shapes(16), shapes(16))


def test_assign_box_levels_by_size():
    # floor(4 + log2(sqrt(area) / 224)): 224 px -> 4, 112 -> 3, 56 -> 2, 448 -> 5, 20 -> 0
    gt = _gt(
        [[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 56, 56], [0, 0, 448, 448], [0, 0, 20, 20]],
        [0, 0, 0, 0, 0],
        (512, 512),
    )
    (levels,) = assign_box_levels([gt], [2, 3, 4, 5, 6])
    assert levels.tolist() == [4, 3, 2, 5, 2]  # below p2: the nearest, p2
    (levels,) = assign_box_levels([gt], [5, 3])  # the nearest of the given levels, lower at a tie
    assert levels.tolist() == [3, 3, 3, 5, 3]
    assert assign_box_levels([_gt([], [])], [2, 3])[0].tolist() == []


def test_gt_level_attention_compares_each_box_on_its_level():
    # One 64x64 batch; p3 (8x8) and p4 (4x4). A 32 px box goes to p2 -> nearest p3; a 64 px
    # box to p2 as well (floor(4 + log2(64 / 224)) = 2): both on p3, nothing on p4.
    torch.manual_seed(0)
    student, teacher = features(16, n=1, seed=2), features(16, n=1, seed=1)
    student = {"p3": student["p3"][..., :8, :8], "p4": student["p4"][..., :4, :4]}
    teacher = {"p3": teacher["p3"][..., :8, :8], "p4": teacher["p4"][..., :4, :4]}
    gt = _gt([[0, 0, 32, 32], [0, 0, 64, 64]], [0, 1])
    kwargs = dict(cat_weight=1.0, rel_weight=0.0)
    by_level = make_loss(category_attention="gt_level", **kwargs)
    every = make_loss(category_attention="gt", **kwargs)
    batch = DistillBatch(student, teacher, gt_instances=[gt], image_shape=(64, 64))
    only_p3 = DistillBatch(
        {"p3": student["p3"], "p4": student["p4"]},
        {"p3": teacher["p3"], "p4": student["p4"]},  # p4 of the teacher = the student's
        gt_instances=[gt],
        image_shape=(64, 64),
    )
    assert by_level(batch)["loss_csgr_cat"].item() == pytest.approx(
        every(only_p3)["loss_csgr_cat"].item(), rel=1e-5
    )
    assert every(batch)["loss_csgr_cat"] > by_level(batch)["loss_csgr_cat"] > 0


def test_category_min_cells_skips_small_levels_only():
    # p3 is 8x12 = 96 cells, p4 4x6 = 24. With 25 the category term skips p4: it equals the
    # published term of a batch whose p4 maps agree (a zero difference there), and the p4
    # classifier gets a zero gradient (not None: DDP needs every parameter in the graph). With
    # 24 nothing is skipped; the relation term is never affected. float64: the two losses sum
    # different zeros, which float32 could round apart.
    published = make_loss().double()
    gated = make_loss(category_min_cells=25).double()
    at_boundary = make_loss(category_min_cells=24).double()
    student = {k: v.double().requires_grad_(True) for k, v in features(16, seed=2).items()}
    teacher = {k: v.double() for k, v in features(16, seed=1).items()}
    p4_agrees = {"p3": teacher["p3"], "p4": student["p4"].detach()}

    out = gated(DistillBatch(student, teacher))
    expected = published(DistillBatch(student, p4_agrees))["loss_csgr_cat"]
    assert out["loss_csgr_cat"].item() == pytest.approx(expected.item(), rel=1e-12)
    assert out["loss_csgr_cat"].item() > 0
    full = published(DistillBatch(student, teacher))
    assert out["loss_csgr_rel"].item() == pytest.approx(full["loss_csgr_rel"].item(), rel=1e-12)
    # a threshold no level falls below computes the published term bit for bit, gradients too
    boundary = at_boundary(DistillBatch(student, teacher))
    assert torch.equal(boundary["loss_csgr_cat"], full["loss_csgr_cat"])
    assert torch.equal(boundary["loss_csgr_rel"], full["loss_csgr_rel"])
    assert torch.equal(
        torch.autograd.grad(boundary["loss_csgr_cat"], student["p4"], retain_graph=True)[0],
        torch.autograd.grad(full["loss_csgr_cat"], student["p4"], retain_graph=True)[0],
    )
    grads = torch.autograd.grad(
        out["loss_csgr_cat"],
        [gated.classifiers["p4"].weight, gated.classifiers["p3"].weight, student["p4"]],
        allow_unused=True,
    )
    assert grads[0].abs().sum().item() == 0 and grads[1].abs().sum().item() > 0
    assert grads[2] is None  # the category term does not read the student's p4

    # every level below the threshold: the term is an exact zero, still in the graph
    none = make_loss(category_min_cells=1000)(DistillBatch(features(16, seed=2), features(16)))
    assert none["loss_csgr_cat"].item() == 0.0 and none["loss_csgr_cat"].requires_grad
    with pytest.raises(ValueError, match="category_min_cells must be >= 0"):
        make_loss(category_min_cells=-1)


def test_builder_reads_category_min_cells():
    cfg = get_cfg()
    add_csgr_config(cfg)
    build = DISTILL_LOSS_REGISTRY.get("CSGR").build
    assert cfg.MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS == 0
    assert build(cfg, shapes(16), shapes(16)).category_min_cells == 0
    cfg.MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS = 64
    loss = build(cfg, shapes(16), shapes(16))
    assert loss.category_min_cells == 64 and sorted(loss.classifiers) == ["p3", "p4", "p5"]
    cfg.MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS = -1
    with pytest.raises(ValueError, match=r"MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS must be >= 0"):
        build(cfg, shapes(16), shapes(16))


def test_relation_level_mean_averages_each_level():
    # With gamma = 0 the relation block is the identity, so per level the published term is
    # sum((z_t - z_s)^2) / N = C * H * W * mean, and the averaged one is the mean itself: each
    # level weighs the same, whatever its size. Float64, so the sums are exact to ~1e-15.
    teacher = {k: v.double() for k, v in features(4, seed=1).items()}
    student = {k: v.double() for k, v in features(4, seed=2).items()}
    means = [
        (normalize_per_channel(teacher[k]) - normalize_per_channel(student[k])).pow(2).mean().item()
        for k in SIZES
    ]
    out = {}
    for level_mean in (False, True):
        loss = make_loss(cs=4, ct=4, cat_weight=0.0, rel_weight=1.0, rel_level_mean=level_mean)
        out[level_mean] = loss.double()(DistillBatch(student, teacher))["loss_csgr_rel"].item()
    assert out[True] == pytest.approx(sum(means), rel=1e-12)
    cells = [4 * h * w for h, w in SIZES.values()]  # C * H * W: 384 and 96
    assert out[False] == pytest.approx(sum(m * c for m, c in zip(means, cells)), rel=1e-12)


def test_builder_reads_rel_level_mean():
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # every key read as set
    build = DISTILL_LOSS_REGISTRY.get("CSGR").build
    assert cfg.MODEL.DISTILL.CSGR.REL_LEVEL_MEAN is False  # published
    assert build(cfg, shapes(8), shapes(8)).rel_level_mean is False
    cfg.MODEL.DISTILL.CSGR.REL_LEVEL_MEAN = True
    assert build(cfg, shapes(8), shapes(8)).rel_level_mean is True
