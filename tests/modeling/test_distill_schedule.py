"""MODEL.DISTILL.SCHEDULE: the factor on the distillation terms by iteration, known values, its
place in the Distiller's training step, and the published default left untouched."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from tiny_models import distill_cfg, random_batch

import csgr  # noqa: F401
from csgr.modeling.distill_schedule import DistillSchedule


def test_factor_known_values():
    schedule = DistillSchedule(start_iter=3, ramp_iters=4)
    got = [schedule.factor(it) for it in range(9)]
    assert got == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [DistillSchedule(2, 0).factor(it) for it in range(4)] == [0.0, 0.0, 1.0, 1.0]
    assert [DistillSchedule(0, 2).factor(it) for it in range(3)] == [0.5, 1.0, 1.0]


def test_from_settings_reads_the_lr_warmup_and_drops_a_constant_schedule():
    schedule = DistillSchedule.from_settings(-1, 50, lr_warmup_iters=200)
    assert (schedule.start_iter, schedule.ramp_iters) == (200, 50)
    assert DistillSchedule.from_settings(0, 0, lr_warmup_iters=200) is None
    assert DistillSchedule.from_settings(0, 1, lr_warmup_iters=200) is None  # 1 from iteration 0
    assert DistillSchedule.from_settings(-1, 0, lr_warmup_iters=0) is None


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="START_ITER"):
        DistillSchedule.from_settings(-2, 0, lr_warmup_iters=10)
    with pytest.raises(ValueError, match="RAMP_ITERS"):
        DistillSchedule(0, -1)


def _terms(model, batch, iteration):
    torch.manual_seed(0)
    with EventStorage(iteration) as storage:
        storage.iter = iteration
        losses = model(batch)
        logged = storage.latest().get("distill_weight")
    return {k: v for k, v in losses.items() if k.startswith("loss_csgr")}, logged


def test_distiller_scales_every_term_by_the_factor(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.SCHEDULE.START_ITER = 2
    cfg.MODEL.DISTILL.SCHEDULE.RAMP_ITERS = 4
    model = build_model(cfg)
    model.train()
    batch = random_batch()
    schedule = model.schedule
    assert (schedule.start_iter, schedule.ramp_iters) == (2, 4)
    model.schedule = None
    full, logged = _terms(model, batch, 0)
    assert logged is None and all(v.item() > 0 for v in full.values())
    model.schedule = schedule
    for iteration, factor in ((0, 0.0), (3, 0.5), (5, 1.0), (40, 1.0)):
        terms, logged = _terms(model, batch, iteration)
        assert logged == (factor, iteration)
        for k, v in terms.items():
            assert v.item() == pytest.approx(factor * full[k].item(), rel=1e-5, abs=0.0), k

    terms, _ = _terms(model, batch, 0)
    sum(terms.values()).backward()  # held at 0: no gradient from the terms
    grads = [p.grad for p in model.student.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.count_nonzero(g) == 0 for g in grads)


def test_the_default_config_distils_from_the_first_iteration(tmp_path):
    model = build_model(distill_cfg(str(tmp_path)))
    assert model.schedule is None
