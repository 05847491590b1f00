"""Loss-scale calibration: one factor per distillation method, fitted to the user's data.

Published loss weights were tuned for one recipe (COCO, ImageNet-initialised R50 students); on
other data the distillation terms can start orders of magnitude above or below the detection
loss. The distillation repositories' rule of thumb is to scale each method so that its loss is
about the size of the detection loss, keeping the ratios between the method's own terms.
:class:`LossScale` does exactly that, once, at the start of training:

* mode "published": every factor is 1; the published weights act as they are.
* mode "calibrated": during the first ``warmup_iters`` iterations the student trains on its
  detection loss alone while, per method, the sum of its weighted terms and the detection loss
  are accumulated (detached). Then each method's factor is fixed to
  ``target * mean(detection loss) / mean(method loss)``, the same for all of the method's terms.

The accumulators are summed over processes under DDP, so every rank fixes the same factors.
Factors and accumulators are buffers: they are saved in checkpoints and restored on resume.
"""

import logging
from typing import Dict, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["LossScale", "LOSS_SCALE_MODES", "SCALAR_PREFIX"]

LOSS_SCALE_MODES = ("published", "calibrated")
# the factors are logged as <SCALAR_PREFIX><method> (metrics.json, TensorBoard)
SCALAR_PREFIX = "loss_scale/"
logger = logging.getLogger(__name__)


class LossScale(nn.Module):
    """Per-method factors on the weighted distillation terms.

    Args:
        methods: the distillation methods, in order.
        mode: "published" or "calibrated" (see the module docstring).
        target: wanted ratio of a method's summed terms to the detection loss (> 0).
        warmup_iters: calibrated mode: iterations measured before the factors are fixed (>= 1).
    """

    def __init__(
        self, methods: Sequence[str], mode: str = "published", target: float = 1.0, warmup_iters=20
    ):
        super().__init__()
        self.check_settings(mode, target, warmup_iters)
        self.methods = list(methods)
        self.mode = mode
        self.target = float(target)
        self.warmup_iters = int(warmup_iters)
        m = len(self.methods)
        # float64 accumulators: hundreds of float32 losses summed without drift
        self.register_buffer("factors", torch.ones(m, dtype=torch.float64))
        self.register_buffer("method_sums", torch.zeros(m, dtype=torch.float64))
        self.register_buffer("detection_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("measured", torch.zeros((), dtype=torch.int64))
        self.register_buffer("fixed", torch.tensor(mode == "published"))
        # host copies of `fixed` and `factors`: the training step reads them without a device sync
        self._fixed = mode == "published"
        self._factors = [1.0] * m

    @staticmethod
    def check_settings(mode: str, target: float, warmup_iters: int) -> None:
        """Raise ValueError naming the bad setting (``MODEL.DISTILL.LOSS_SCALE.*``)."""
        if mode not in LOSS_SCALE_MODES:
            raise ValueError(f"loss scale mode must be one of {LOSS_SCALE_MODES}, got {mode!r}")
        if not target > 0:
            raise ValueError(f"loss scale target must be > 0, got {target}")
        if mode == "calibrated" and warmup_iters < 1:
            raise ValueError(f"calibration needs warmup_iters >= 1, got {warmup_iters}")

    @property
    def is_fixed(self) -> bool:
        """Whether the factors are fixed (published mode, or calibration done)."""
        return self._fixed

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._fixed = bool(self.fixed)
        self._factors = self.factors.tolist()

    def extra_repr(self) -> str:
        return f"methods={self.methods}, mode={self.mode}, target={self.target}"

    def factor_dict(self) -> Dict[str, float]:
        """Method -> factor (1.0 for every method until calibration has fixed them)."""
        return dict(zip(self.methods, self._factors))

    def forward(
        self,
        detection: Mapping[str, torch.Tensor],
        distillation: Mapping[str, Mapping[str, torch.Tensor]],
    ) -> Dict[str, torch.Tensor]:
        """Scale one training step's distillation terms.

        Args:
            detection: the student's own losses (scalars), e.g. loss_cls, loss_box_reg.
            distillation: method -> its weighted terms (scalars), methods as in ``methods``.

        Returns:
            The distillation terms, flat, each times its method's factor (times 0 while the
            calibration is still measuring).
        """
        if not self._fixed:
            self._measure(detection, distillation)
            return {k: v * 0.0 for terms in distillation.values() for k, v in terms.items()}
        out = {}
        for i, name in enumerate(self.methods):
            factor = self.factors[i]
            for k, v in distillation[name].items():
                out[k] = v * factor.to(v.dtype) if self.mode == "calibrated" else v
        return out

    @torch.no_grad()
    def _measure(self, detection, distillation) -> None:
        device = self.method_sums.device
        det = sum(v.detach().to(device, torch.float64) for v in detection.values())
        per_method = torch.stack(
            [
                sum(
                    (v.detach().to(device, torch.float64) for v in distillation[m].values()),
                    torch.zeros((), dtype=torch.float64, device=device),
                )
                for m in self.methods
            ]
        )
        self.detection_sum += det
        self.method_sums += per_method
        self.measured += 1
        if int(self.measured) >= self.warmup_iters:
            self._fix()

    def _fix(self) -> None:
        sums = torch.cat([self.method_sums, self.detection_sum.view(1)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sums = sums.clone()
            dist.all_reduce(sums)  # every rank fixes the same factors
        method_sums, detection_sum = sums[:-1], sums[-1]
        factors = torch.ones_like(self.factors)
        usable = method_sums > 0
        factors[usable] = self.target * detection_sum / method_sums[usable]
        self.factors.copy_(factors)
        self.fixed.fill_(True)
        self._fixed, self._factors = True, factors.tolist()
        for name, factor, total in zip(self.methods, factors.tolist(), method_sums.tolist()):
            note = "" if total > 0 else " (its terms were 0 while measuring: kept at 1)"
            logger.info(
                f"loss scale: {name} x {factor:.4g} after {int(self.measured)} iterations "
                f"(target {self.target:g} x the detection loss){note}"
            )
