"""Which head of a trained Faster R-CNN is weak: its RPN or its box classifier.

A student far below its baseline can fail in either stage. :func:`probe_heads` runs a trained
detector over a test set and measures both on the ground truth, separately:

* RPN recall: the share of ground-truth boxes that one of the top ``top_k`` proposals (as
  inference ranks them) overlaps with IoU >= each threshold;
* the box classifier on perfect boxes: the ground-truth boxes themselves are pooled as ROIs and
  classified, so its accuracy does not depend on the RPN. ``background`` is the share it calls
  background, the sign of a classifier left on the plateau where every ROI is background.

:func:`plateau_trace` reads the same story from training: Detectron2's ``fast_rcnn/*`` metrics
of a run's ``metrics.json``.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.data import DatasetMapper, build_detection_test_loader
from detectron2.data import detection_utils as utils
from detectron2.structures import Boxes, Instances, pairwise_iou

from ..evaluation import read_metrics

__all__ = [
    "HeadProbe",
    "gt_recall_hits",
    "classify_gt_boxes",
    "load_trained_detector",
    "probe_heads",
    "plateau_trace",
    "probe_tables",
]

PLATEAU_METRICS = ("fast_rcnn/false_negative", "fast_rcnn/fg_cls_accuracy", "loss_cls")


@dataclass
class HeadProbe:
    """What :func:`probe_heads` measured over ``objects`` ground-truth boxes of ``images``."""

    images: int = 0
    objects: int = 0
    recall_hits: Dict[float, int] = field(default_factory=dict)
    correct: int = 0
    background: int = 0
    true_prob_sum: float = 0.0

    def summary(self) -> Dict[str, float]:
        """Shares over the objects: ``recall@<iou>``, ``accuracy``, ``background``, ``p_true``."""
        n = max(self.objects, 1)
        out = {f"recall@{t:g}": hits / n for t, hits in self.recall_hits.items()}
        out.update(
            accuracy=self.correct / n, background=self.background / n, p_true=self.true_prob_sum / n
        )
        return out


def gt_recall_hits(gt: Boxes, proposals: Boxes, thresholds: Sequence[float]) -> Dict[float, int]:
    """How many ground-truth boxes some proposal overlaps with IoU >= each threshold.

    Args:
        gt: (G, 4) ground-truth boxes.
        proposals: (P, 4) proposals (P may be 0).
    """
    if len(gt) == 0 or len(proposals) == 0:
        return {t: 0 for t in thresholds}
    best = pairwise_iou(gt, proposals).max(dim=1).values  # (G,)
    return {t: int((best >= t).sum()) for t in thresholds}


def classify_gt_boxes(
    roi_heads, features: Dict[str, torch.Tensor], gt: Instances
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The box classifier's class probabilities on the ground-truth boxes of one image.

    Args:
        roi_heads: a ``StandardROIHeads`` (``box_pooler``, ``box_head``, ``box_predictor``).
        features: the image's FPN outputs, (1, C, H_l, W_l) by level.
        gt: its ground truth (``gt_boxes``, ``gt_classes``), in the input's frame.

    Returns:
        ((G, K + 1) softmax probabilities, background last; (G,) probability of the true class)
    """
    pooled = roi_heads.box_pooler([features[f] for f in roi_heads.box_in_features], [gt.gt_boxes])
    scores, _ = roi_heads.box_predictor(roi_heads.box_head(pooled))
    prob = scores.softmax(dim=-1)
    return prob, prob[torch.arange(len(gt)), gt.gt_classes]


def load_trained_detector(run_dir: str):
    """The detector a run folder trained (a Distiller's student), from its ``config.yaml`` and
    checkpoint (``model_final.pth``, else the one ``last_checkpoint`` names), on the config's
    device; the teacher is not built.

    Returns:
        (detector in eval mode, its config)
    """
    from ..config import load_config
    from ..modeling import build_detector
    from ..release.export import find_checkpoint, student_state_dict

    cfg = load_config(os.path.join(run_dir, "config.yaml"))
    weights = find_checkpoint(run_dir)
    model = torch.load(weights, map_location="cpu", weights_only=False)["model"]
    distiller = cfg.MODEL.META_ARCHITECTURE == "Distiller"
    state, _ = student_state_dict(model, distiller, source=weights)
    detector = build_detector(cfg)
    detector.load_state_dict(state)
    return detector.eval(), cfg


@torch.no_grad()
def probe_heads(
    detector, cfg, dataset: str, max_images: int = 200, top_k: int = 100, thresholds=(0.5, 0.7)
) -> HeadProbe:
    """Measure a Faster R-CNN's RPN recall and box classifier on ``dataset``'s ground truth.

    Args:
        detector: a ``GeneralizedRCNN`` with weights loaded (a Distiller: pass its ``student``).
        cfg: its config (input sizes and format of the test-time mapping).
        dataset: a registered dataset with annotations.
        max_images: images read, in the dataset's order.
        top_k: proposals counted per image, best first as inference ranks them.

    Raises:
        ValueError: the detector has no box classifier (e.g. a RetinaNet).
    """
    if not hasattr(getattr(detector, "roi_heads", None), "box_predictor"):
        raise ValueError(
            f"probe_heads needs a Faster R-CNN (ROI heads), got {type(detector).__name__}"
        )
    was_training = detector.training
    detector.eval()
    mapper = DatasetMapper(
        is_train=True,  # keeps the annotations; the test-time resize only
        augmentations=utils.build_augmentation(cfg, is_train=False),
        image_format=cfg.INPUT.FORMAT,
    )
    probe = HeadProbe(recall_hits={t: 0 for t in thresholds})
    for batch in build_detection_test_loader(cfg, dataset, mapper=mapper):
        if probe.images >= max_images:
            break
        probe.images += 1
        gt = batch[0]["instances"].to(detector.device)
        if len(gt) == 0:
            continue
        images = detector.preprocess_image(batch)
        features = detector.backbone(images.tensor)
        proposals, _ = detector.proposal_generator(images, features, None)
        hits = gt_recall_hits(gt.gt_boxes, proposals[0].proposal_boxes[:top_k], thresholds)
        prob, p_true = classify_gt_boxes(detector.roi_heads, features, gt)
        pred = prob.argmax(dim=-1)
        probe.objects += len(gt)
        for t in thresholds:
            probe.recall_hits[t] += hits[t]
        probe.correct += int((pred == gt.gt_classes).sum())
        probe.background += int((pred == prob.shape[1] - 1).sum())
        probe.true_prob_sum += float(p_true.sum())
    detector.train(was_training)
    return probe


def plateau_trace(
    run_dir: str, every: int = 100, keys: Sequence[str] = PLATEAU_METRICS
) -> List[Dict[str, float]]:
    """``keys`` of a run's ``metrics.json`` at every ``every``-th iteration (and the last).

    Returns:
        one dict per iteration kept: ``iteration`` and the keys it logged.
    """
    path = os.path.join(run_dir, "metrics.json")
    rows = [
        {"iteration": r["iteration"], **{k: r[k] for k in keys if k in r}}
        for r in read_metrics(path)
        if "iteration" in r and any(k in r for k in keys)
    ]
    if not rows:
        raise ValueError(f"{path}: no training metrics ({', '.join(keys)})")
    kept = [r for r in rows if (r["iteration"] + 1) % every == 0]
    return kept if kept and kept[-1] is rows[-1] else kept + [rows[-1]]


def probe_tables(summaries: Dict[str, Dict[str, float]], traces: Dict[str, list]) -> List[dict]:
    """The probe's two tables in the docs' generic results format (``columns``, ``rows``): one
    row per run of :meth:`HeadProbe.summary`, and one row per run and traced iteration.

    Args:
        summaries: by run folder, its probe summary (same keys for every run).
        traces: by run folder, its :func:`plateau_trace` rows.
    """
    keys = list(next(iter(summaries.values())))
    probe = {
        "title": "the final students on the ground truth",
        "columns": ["run", *keys],
        "rows": [[run, *(f"{s[k]:.3f}" for k in keys)] for run, s in summaries.items()],
    }
    metrics = [k for k in PLATEAU_METRICS if any(k in r for rows in traces.values() for r in rows)]
    plateau = {
        "title": "training (metrics.json)",
        "columns": ["run", "iteration", *metrics],
        "rows": [
            [run, str(r["iteration"]), *(f"{r[k]:.3f}" if k in r else "" for k in metrics)]
            for run, rows in traces.items()
            for r in rows
        ],
    }
    return [probe, plateau]
