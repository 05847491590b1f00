"""FGD: masks, attentions and GcBlock against loop references, the loss's known value, no
ground truth, and its builder's published defaults."""

import math

import pytest
import torch
from loss_inputs import (
    F64,
    GT,
    IMAGE_SHAPE,
    SIZES,
    batch,
    build_published,
    cfg_for,
    features,
    instances,
    make_loss,
)
from method_lists import LOSS_TERMS

from csgr.modeling.losses.fgd import fgd_attention, fgd_masks
from csgr.modeling.losses.gcblock import GcBlock


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
    assert set(out) == LOSS_TERMS["FGD"]
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


def test_fgd_gcblocks_learn():
    """The zero-initialised last convs of both GcBlocks get gradients."""
    loss = make_loss("FGD", cs=4, ct=8)
    student = features(4, seed=1, requires_grad=True)
    sum(loss(batch(student, features(8, seed=2))).values()).backward()
    assert loss.student_gc["p3"].transform[-1].weight.grad.abs().sum() > 0
    assert loss.teacher_gc["p3"].transform[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "arch, levels, published",
    [
        ("RetinaNet", ["p3", "p4", "p5", "p6", "p7"], (1e-3, 5e-4, 5e-4, 5e-6)),
        ("GeneralizedRCNN", ["p2", "p3", "p4", "p5"], (5e-5, 2.5e-5, 5e-5, 5e-7)),
    ],
)
def test_fgd_builder_takes_published_defaults_per_student_type(arch, levels, published):
    cfg = cfg_for(arch, ["FGD"])
    fgd = build_published("FGD", arch, cfg)
    assert fgd.in_features == levels and fgd.temperature == 0.5
    assert (fgd.alpha, fgd.beta, fgd.gamma, fgd.lambda_global) == published
    assert set(fgd.adapters.adapters) == set(levels)  # 16 -> 32 channels
    cfg.MODEL.DISTILL.FGD.ALPHA_FG = 0.25
    cfg.MODEL.DISTILL.FGD.IN_FEATURES = ["p4"]
    fgd = build_published("FGD", arch, cfg)
    assert fgd.alpha == 0.25 and fgd.beta == published[1] and fgd.in_features == ["p4"]
