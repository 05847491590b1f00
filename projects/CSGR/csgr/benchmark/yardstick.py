"""Which yardstick should loss-scale calibration use: loss values or gradient norms?

For each method, on the same real training batches and the same student weights, measures

* the loss ratio ``r_loss = L_method / L_det`` (the weighted distillation terms summed, over the
  student's own detection loss): what ``LOSS_SCALE.MODE calibrated`` equalises, and
* the gradient ratio ``r_grad = ||dL_method / dF|| / ||dL_det / dF||`` at the student's FPN
  features ``F`` (all levels as one vector): how hard the method pulls on the student's
  features against the detection loss, which is what a weight is meant to set.

After loss-value calibration (factor ``1 / r_loss``) a method pulls with ``r_grad / r_loss`` of the
detection gradient; if that stays spread over orders of magnitude across methods, loss values
do not equalise what matters and gradient norms would be the better yardstick. The per-batch
coefficient of variation (std / mean) of each ratio says how steady a factor fitted on a few
warm-up iterations is.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import build_detection_train_loader
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from ..config import load_config

__all__ = ["YardstickRow", "feature_grad_norm", "measure_method", "measure_yardsticks"]


@dataclass
class YardstickRow:
    """Per-batch ratios of one method (see the module docstring)."""

    method: str
    loss_ratios: List[float]
    grad_ratios: List[float]

    @staticmethod
    def _mean_cv(values: List[float]):
        mean = sum(values) / len(values)
        if len(values) < 2 or mean == 0:
            return mean, float("nan")
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return mean, math.sqrt(var) / abs(mean)

    def summary(self) -> Dict[str, float]:
        """Means, coefficients of variation and the pull left after loss calibration."""
        r_loss, cv_loss = self._mean_cv(self.loss_ratios)
        r_grad, cv_grad = self._mean_cv(self.grad_ratios)
        return {
            "r_loss": r_loss,
            "cv_loss": cv_loss,
            "r_grad": r_grad,
            "cv_grad": cv_grad,
            "pull_after_loss_calibration": r_grad / r_loss,
        }


def feature_grad_norm(loss: torch.Tensor, features: Sequence[torch.Tensor]) -> float:
    """L2 norm of ``d loss / d features`` over all the tensors as one vector (graph kept).

    Args:
        loss: a scalar in the graph of ``features``.
        features: (N, C, H_l, W_l) tensors that require grad.
    """
    grads = torch.autograd.grad(loss, list(features), retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))


def measure_method(model, batches: List[List[dict]]) -> YardstickRow:
    """Loss and gradient ratios of a Distiller's (single) method on each batch.

    Args:
        model: a Distiller in training mode with published weights (no loss scale applied).
        batches: lists of dataset dicts from Detectron2's training loader.
    """
    method = ", ".join(model.distill_losses.keys())
    loss_ratios, grad_ratios = [], []
    with EventStorage():  # the detectors log training statistics into one
        for inputs in batches:
            loss_ratio, grad_ratio = _ratios_of_batch(model, inputs)
            loss_ratios.append(loss_ratio)
            grad_ratios.append(grad_ratio)
    return YardstickRow(method, loss_ratios, grad_ratios)


def _ratios_of_batch(model, inputs: List[dict]):
    """(loss ratio, gradient ratio) of one batch."""
    detection, batch = model.distill_batch(inputs)
    terms = model.distill_loss_terms(batch)  # published weights: detection not passed
    det = sum(detection.values())
    dist = sum(terms.values())
    features = [f for f in batch.student_features.values() if f.requires_grad]
    g_det = feature_grad_norm(det, features)
    g_dist = feature_grad_norm(dist, features)
    return float(dist.detach()) / float(det.detach()), g_dist / g_det


def measure_yardsticks(
    config_files: Dict[str, str],
    opts: Sequence[str],
    num_batches: int = 10,
    seed: int = 1,
    student_weights: str = "",
) -> List[YardstickRow]:
    """Build each method's Distiller with the same student init and measure it on the same
    ``num_batches`` training batches.

    Args:
        config_files: method name -> its config file.
        opts: ``KEY VALUE`` opts for every config (e.g. the teacher's weights).
        num_batches: batches measured per method.
        seed: seeds the student init (identical across methods) and the data order.
        student_weights: a student checkpoint to measure instead of the init (e.g. a trained
            baseline: how the ratios move during training).
    """
    rows, batches = [], None
    for method, config_file in config_files.items():
        cfg = load_config(config_file, ["SEED", str(seed), *opts])
        if batches is None:
            torch.manual_seed(seed)
            loader = iter(build_detection_train_loader(cfg))
            batches = [next(loader) for _ in range(num_batches)]
            del loader
        torch.manual_seed(seed)
        model = build_model(cfg)
        if student_weights:
            DetectionCheckpointer(model.student).load(student_weights)
        model.train()
        rows.append(measure_method(model, batches))
        rows[-1].method = method
    return rows
