"""SOLVER.CLIP_GRADIENTS.CLIP_TYPE "full_model": the joint gradient norm is clipped, as FGD's
published recipe does; the other types stay Detectron2's."""

import math

import pytest
import torch
from detectron2.config import get_cfg
from torch import nn

from csgr.engine.optimizer import build_optimizer


def cfg_with_clip(clip_type, value):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY = 1.0, 0.0, 0.0
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = value
    return cfg


def two_layer_step(cfg):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).double()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = build_optimizer(cfg, model)
    model(torch.randn(5, 3, dtype=torch.float64)).pow(2).sum().mul(100).backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    optimizer.step()
    updates = [b - p.detach() for b, p in zip(before, model.parameters())]  # lr 1: the grad used
    return grads, updates


def test_full_model_clip_scales_all_gradients_together():
    grads, updates = two_layer_step(cfg_with_clip("full_model", 0.5))
    norm = math.sqrt(sum(g.pow(2).sum().item() for g in grads))
    assert norm > 0.5  # the clip is active
    # torch divides by (norm + 1e-6): the clipped norm is 0.5 to ~1e-6
    assert math.sqrt(sum(u.pow(2).sum().item() for u in updates)) == pytest.approx(0.5, rel=1e-6)
    for g, u in zip(grads, updates):  # one common factor: directions kept
        torch.testing.assert_close(u, g * (0.5 / norm), rtol=1e-6, atol=1e-12)


def test_per_parameter_norm_clip_is_detectron2s():
    grads, updates = two_layer_step(cfg_with_clip("norm", 0.5))
    for g, u in zip(grads, updates):  # each parameter clipped on its own
        expected = min(1.0, 0.5 / g.norm().item())
        torch.testing.assert_close(u, g * expected, rtol=1e-5, atol=1e-12)


def test_bad_full_model_value_is_named():
    with pytest.raises(ValueError, match="CLIP_VALUE"):
        two_layer_step(cfg_with_clip("full_model", 0.0))
