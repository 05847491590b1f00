"""tools/relation_share.py: the criss-cross attention's part of CSGR's relation term."""

import os

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from shapes_runs import shapes_distill_cfg, shapes_root, write_cfg  # noqa: F401 (fixture)
from tiny_models import distill_cfg, load_tool, random_batch

from csgr.benchmark.relation_share import (
    relation_modules,
    relation_pairs,
    relation_share,
    shares_from_sums,
)
from csgr.modeling.losses.csgr_category import normalize_per_channel


def test_shares_from_sums_known_values():
    sums = {"p3": {"feat": 4.0, "att": 1.0, "diff": 16.0, "att_diff": 4.0, "out_diff": 9.0}}
    sums["p3"]["dot"] = -6.0
    sums["p4"] = {"feat": 1.0, "att": 0.0, "diff": 3.0, "att_diff": 0.0, "out_diff": 3.0, "dot": 0}
    p3, p4 = shares_from_sums(sums, {"p3": 0.25, "p4": 0.0})
    assert (p3.level, p3.gamma, p3.term_share, p4.term_share) == ("p3", 0.25, 0.75, 0.25)
    assert p3.attention_of_features == 0.5 and p3.attention_of_difference == 0.5
    assert p3.loss_ratio == 9.0 / 16.0 and p3.correlation == -0.75
    assert p3.line() == "| p3 | +0.2500 | 0.750 | 0.5000 | 0.5000 | 0.5625 | -0.750 |"
    assert (p4.attention_of_difference, p4.loss_ratio, p4.correlation) == (0.0, 1.0, 0.0)
    # A loss averaged per level: p3 holds 3x the elements, so its part is 3 / (3 + 3).
    sums["p3"]["count"], sums["p4"]["count"] = 3.0, 1.0
    p3, p4 = shares_from_sums(sums, {"p3": 0.25, "p4": 0.0}, level_mean=True)
    assert (p3.term_share, p4.term_share) == (0.5, 0.5)


def _set_gamma(model, value):
    with torch.no_grad():
        for module in relation_modules(model).values():
            module.gamma.fill_(value)


@pytest.mark.parametrize("recurrence", [1, 2])
def test_pairs_are_the_teachers_then_the_students_and_make_the_loss(tmp_path, recurrence):
    cfg = distill_cfg(str(tmp_path))  # student FPN 32 channels through an adapter, teacher 64
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # the relation term on every level
    cfg.MODEL.DISTILL.CSGR.RECURRENCE = recurrence
    torch.manual_seed(0)
    model = build_model(cfg)
    _set_gamma(model, 0.4)
    data = random_batch(seed=3)
    with torch.no_grad(), EventStorage(0):
        pairs, losses = relation_pairs(model, data)
        teacher = model.teacher_features(data)
    assert list(pairs) == ["p2", "p3", "p4", "p5", "p6"]
    total = 0.0
    for level, ((z_t, a_t), (z_s, a_s)) in pairs.items():
        expected = normalize_per_channel(teacher[level].double())
        torch.testing.assert_close(z_t, expected, rtol=1e-4, atol=1e-4)  # float32 forward
        assert a_t.abs().max() > 0 and z_s.shape == z_t.shape
        total += (z_t + a_t - z_s - a_s).pow(2).sum().item() / z_t.shape[0]
    weight = model.distill_losses["CSGR"].rel_weight
    assert weight * total == pytest.approx(losses["loss_csgr_rel"].item(), rel=1e-5)


def test_share_is_zero_at_gamma_zero_and_linear_in_gamma(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # REL_IN_FEATURES read as set
    cfg.MODEL.DISTILL.CSGR.REL_IN_FEATURES = ["p3", "p4"]
    torch.manual_seed(0)
    model = build_model(cfg)
    batches = [random_batch(seed=1), random_batch(seed=2)]

    _set_gamma(model, 0.0)
    rows = relation_share(model, batches)
    assert [r.level for r in rows] == ["p3", "p4"]
    assert sum(r.term_share for r in rows) == pytest.approx(1.0)
    for r in rows:  # the block is the identity: the term compares the normalised maps
        assert r.attention_of_features == 0 and r.attention_of_difference == 0
        assert r.loss_ratio == 1.0 and r.correlation == 0

    c = 0.3
    _set_gamma(model, c)
    one = relation_share(model, batches)
    _set_gamma(model, 2 * c)
    two = relation_share(model, batches)
    for r1, r2 in zip(one, two):
        assert r1.gamma == pytest.approx(c) and r1.attention_of_difference > 0
        # aggregate(z) does not depend on gamma (recurrence 1): the attention's part is linear
        # (up to the float32 rounding of the block's output, from which it is read)
        assert r2.attention_of_features == pytest.approx(2 * r1.attention_of_features, rel=1e-5)
        assert r2.attention_of_difference == pytest.approx(2 * r1.attention_of_difference, rel=1e-5)
        assert r2.correlation == pytest.approx(r1.correlation, abs=1e-5)
        # ||d + g D||^2 / ||d||^2 = 1 + 2 g p + g^2 a^2, with a = ||D|| / ||d||: hence
        # ratio(2c) - 2 ratio(c) + 1 = 2 c^2 a^2 = 2 (share at c)^2
        curvature = r2.loss_ratio - 2 * r1.loss_ratio + 1
        assert curvature == pytest.approx(2 * r1.attention_of_difference**2, rel=1e-4)
    assert model.training  # left as found


def test_model_without_csgr_is_named(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.METHODS = ["PKD"]
    model = build_model(cfg)
    with pytest.raises(ValueError, match=r"no CSGR relation term .* distils \['PKD'\]"):
        relation_share(model, [random_batch()])


def test_tool_on_a_run_keeps_its_folder(tmp_path, shapes_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    cfg = shapes_distill_cfg(tmp_path)
    cfg.MODEL.DISTILL.CSGR.FORMULATION = "published"  # the relation term on every level
    model = build_model(cfg)
    _set_gamma(model, 0.05)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": model.state_dict()}, run / "model_final.pth")
    torch.save({"model": model.student.state_dict()}, tmp_path / "student_only.pth")
    cfg.OUTPUT_DIR = str(run)  # the run's own folder, as its config.yaml says
    argv = ["--config-file", write_cfg(cfg, tmp_path / "config.yaml"), "--batches", "1"]
    tool = load_tool("relation_share")

    rows = tool.main([*argv, "MODEL.WEIGHTS", str(run / "model_final.pth")])
    assert [r.level for r in rows] == ["p2", "p3", "p4", "p5", "p6"]
    assert [r.gamma for r in rows] == pytest.approx([0.05] * 5)  # the run's weights
    assert all(0 < r.attention_of_difference for r in rows)
    assert sorted(p.name for p in run.iterdir()) == ["model_final.pth"]  # nothing written there
    assert os.listdir(scratch) == []  # its own folder removed

    with pytest.raises(SystemExit):  # the run's checkpoint must be named
        tool.main(argv)
    with pytest.raises(ValueError, match=r"student_only.pth holds no CSGR relation block"):
        tool.main([*argv, "MODEL.WEIGHTS", str(tmp_path / "student_only.pth")])
