"""Detectron2's optimizer, plus the whole-model gradient-norm clip that FGD's recipe uses.

Detectron2 clips gradients per parameter (``SOLVER.CLIP_GRADIENTS.CLIP_TYPE`` "value" or
"norm"). The published FGD configs clip the global norm of all gradients together (mmcv's
``grad_clip=dict(max_norm=35, norm_type=2)``), as Detectron2's own DETR project does with its
"full_model" type. ``CLIP_TYPE: "full_model"`` selects that here: before each optimizer step the
gradients of every parameter are scaled together so that their joint L2 norm (``NORM_TYPE``) is
at most ``CLIP_VALUE``.
"""

import copy
import itertools

import torch
from detectron2.solver import build_optimizer as build_d2_optimizer

__all__ = ["FULL_MODEL", "build_optimizer", "add_full_model_gradient_clipping"]

FULL_MODEL = "full_model"


def add_full_model_gradient_clipping(
    optimizer: torch.optim.Optimizer, max_norm: float, norm_type: float = 2.0
) -> torch.optim.Optimizer:
    """Make ``optimizer.step`` clip the joint gradient norm of all its parameters first.

    The instance keeps its state and parameter groups; its class becomes a subclass that clips.
    Under a GradScaler the gradients are already unscaled when ``step`` runs.

    Args:
        optimizer: any torch optimizer.
        max_norm: largest allowed joint norm (> 0).
        norm_type: the norm's order (2.0: L2; ``inf``: max).

    Returns:
        ``optimizer`` itself.
    """
    if not max_norm > 0:
        raise ValueError(f"SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0, got {max_norm}")
    base = type(optimizer)

    class FullModelGradientClipping(base):
        def step(self, closure=None):
            params = itertools.chain(*(g["params"] for g in self.param_groups))
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
            return super().step(closure=closure)

    FullModelGradientClipping.__name__ = base.__name__ + "WithFullModelGradientClipping"
    optimizer.__class__ = FullModelGradientClipping
    return optimizer


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Detectron2's ``build_optimizer``, accepting ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``
    "full_model" (joint gradient norm of the whole model) besides "value" and "norm"."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == FULL_MODEL):
        return build_d2_optimizer(cfg, model)
    plain = copy.deepcopy(cfg)
    plain.defrost()
    plain.SOLVER.CLIP_GRADIENTS.ENABLED = False  # Detectron2 knows no "full_model" type
    optimizer = build_d2_optimizer(plain, model)
    return add_full_model_gradient_clipping(optimizer, clip.CLIP_VALUE, clip.NORM_TYPE)
