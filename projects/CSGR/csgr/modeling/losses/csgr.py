"""CSGR: Category Semantic and Global Relation distillation of FPN features."""

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ...layers import CrissCrossAttention
from .base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss, DistillMethod
from .csgr_category import (
    box_category_attention,
    category_ground_truth,
    category_prototypes,
    normalize_per_channel,
)
from .csgr_formulation import init_parts, relation_settings, resolved_defaults
from .feature_pairs import feature_pairs
from .levels import ChannelAdapters, select_levels

__all__ = ["CSGRLoss", "CSGR"]


class CSGRLoss(DistillLoss):
    """Category semantic and global relation distillation, summed over FPN levels.

    Per level, the student map (through a 1x1 adapter where the widths differ) and the teacher
    map are normalised per channel over (N, H, W). Then:

    * ``loss_csgr_cat = cat_weight * sum_levels ||P_t - P_s||^2 / N``, with ``P`` the (N, K, C)
      category prototypes of :func:`category_prototypes`. Each level has its own 1x1 classifier
      ``C -> K``, shared by teacher and student (one per level rather than one for all levels:
      levels may differ in width, and their statistics differ). Its only training signal is
      this loss (it sees no labels), as specified by CSGR (``category_attention="learned"``).
      With ``category_attention="gt"`` there is no classifier: the attention of each class is
      :func:`box_category_attention` of the ground-truth boxes, the same for teacher and
      student, so the prototypes compare the two maps averaged over each class's boxes.
      ``"gt_level"`` does the same with each box on one level only, the one its size assigns
      (:func:`assign_box_levels`, the rule by which the ROI pooler reads it), so that a box is
      compared where it covers many cells rather than on the coarse maps where it covers a few.
    * ``loss_csgr_rel = rel_weight * sum_rel_levels ||CCA(F_t) - CCA(F_s)||^2 / N``, with one
      :class:`CrissCrossAttention` per level shared by teacher and student. Its ``gamma`` starts
      at 0, so at first the term compares the normalised maps themselves. The sum over channels
      and cells makes the term's strength grow with the input size (a level of H x W cells
      weighs ``C * H * W`` times its mean squared difference); with ``rel_level_mean`` each level's
      squared differences are averaged over (N, C, H, W) instead, so every level weighs the same,
      as in PKD: ``rel_weight * sum_rel_levels mean((CCA(F_t) - CCA(F_s))^2)``.

    Gradients reach the student features and the module's parameters, never the teacher
    features. Everything is computed in float32 (float64 for float64 inputs) with autocast
    disabled, so it is safe under AMP. The module reads no config; see :class:`CSGR` for the
    builder.

    Args:
        in_features: FPN level names of the category term.
        student_channels / teacher_channels: channels by level name (of every distilled level).
        num_classes: K, the number of object classes.
        cat_weight: weight of the category semantic term.
        rel_weight: weight of the global relation term.
        recurrence: recurrence R of the criss-cross attention.
        reduction: query/key channel reduction of the criss-cross attention.
        adapter_mode: "auto", "always" or "never" (see :class:`ChannelAdapters`).
        rel_features: FPN level names of the relation term; None: the same as ``in_features``.
        relation_init: init of the criss-cross convs, "kaiming" or "default" (see
            :class:`CrissCrossAttention`).
        category_attention: "learned" (published: a 1x1 classifier per level, trained by this
            loss alone), "gt" (the ground-truth boxes of each class, see above) or "gt_level"
            (each box on the level its size assigns).
        category_min_cells: the category term skips, at each call, every level of
            ``in_features`` whose map has fewer than this many cells (H * W); 0 (published):
            none. The per-channel statistics of a map of a few cells are those of a handful of
            values, whose small std multiplies that level's pull on the student. With
            ``"gt_level"`` the boxes assigned to a skipped level are not compared.
        rel_level_mean: average each relation level's squared differences over (N, C, H, W)
            rather than summing them over (C, H, W) per image (False, published).
    """

    REQUIRES = frozenset({"features"})
    CATEGORY_ATTENTIONS = ("learned", "gt", "gt_level")

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        num_classes: int,
        cat_weight: float = 5e-4,
        rel_weight: float = 1e-5,
        recurrence: int = 1,
        reduction: int = 8,
        adapter_mode: str = "auto",
        rel_features: Optional[Sequence[str]] = None,
        relation_init: str = "kaiming",
        category_attention: str = "learned",
        category_min_cells: int = 0,
        rel_level_mean: bool = False,
    ):
        super().__init__()
        if category_min_cells < 0:
            raise ValueError(f"CSGR: category_min_cells must be >= 0, got {category_min_cells}")
        if category_attention not in self.CATEGORY_ATTENTIONS:
            raise ValueError(
                f"CSGR: category_attention must be one of {self.CATEGORY_ATTENTIONS}, "
                f"got {category_attention!r}"
            )
        if not in_features:
            raise ValueError("CSGR: in_features is empty")
        if num_classes < 1:
            raise ValueError(f"CSGR: num_classes must be >= 1, got {num_classes}")
        self.in_features = list(in_features)
        self.rel_features = self.in_features if rel_features is None else list(rel_features)
        if not self.rel_features:
            raise ValueError("CSGR: rel_features is empty")
        # Every distilled level, category levels first.
        self.levels = self.in_features + [k for k in self.rel_features if k not in self.in_features]
        self.num_classes = num_classes
        self.cat_weight = cat_weight
        self.rel_weight = rel_weight
        self.adapters = ChannelAdapters(
            self.levels, student_channels, teacher_channels, adapter_mode
        )
        self.category_attention = category_attention
        self.category_min_cells = category_min_cells
        self.rel_level_mean = rel_level_mean
        learned = category_attention == "learned"
        self.classifiers = nn.ModuleDict(
            {
                k: nn.Conv2d(teacher_channels[k], num_classes, kernel_size=1)
                for k in (in_features if learned else ())
            }
        )
        self.relations = nn.ModuleDict(
            {
                k: CrissCrossAttention(teacher_channels[k], reduction, recurrence, relation_init)
                for k in self.rel_features
            }
        )

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses ``student_features`` and ``teacher_features`` of ``in_features`` and
                ``rel_features``, (N, C_s, H, W) and (N, C_t, H, W) per level; with
                ``category_attention`` "gt" or "gt_level" also ``gt_instances`` and
                ``image_shape``.

        Returns:
            {"loss_csgr_cat": scalar, "loss_csgr_rel": scalar}, weighted, float32.
        """
        device = batch.student_features[self.in_features[0]].device
        loss_cat = torch.zeros((), device=device)
        loss_rel = torch.zeros((), device=device)
        gt_by_level = category_ground_truth(batch, self.in_features, self.category_attention)
        with torch.autocast(device_type=device.type, enabled=False):
            for k, student, teacher in feature_pairs(batch, self.levels, self.adapters, "CSGR"):
                student = normalize_per_channel(student)
                teacher = normalize_per_channel(teacher)
                n = student.shape[0]
                if student.shape[-2] * student.shape[-1] < self.category_min_cells:
                    # zeros that keep the level's classifier (and, where no relation term reads
                    # the level, its adapter) in the graph: DDP fails on a parameter no loss
                    # reached
                    if k in self.classifiers:
                        loss_cat = (
                            loss_cat + sum(p.sum() for p in self.classifiers[k].parameters()) * 0.0
                        )
                    if k not in self.relations:
                        loss_cat = loss_cat + student.sum() * 0.0
                elif k in self.classifiers:
                    classifier = self.classifiers[k]
                    proto_diff = category_prototypes(classifier, teacher) - category_prototypes(
                        classifier, student
                    )
                    loss_cat = loss_cat + proto_diff.pow(2).sum() / n
                elif k in gt_by_level:
                    attention = box_category_attention(
                        gt_by_level[k], self.num_classes, batch.image_shape, student.shape[-2:]
                    ).to(student.dtype)
                    proto_diff = torch.bmm(
                        attention, (teacher - student).flatten(2).transpose(1, 2)
                    )
                    loss_cat = loss_cat + proto_diff.pow(2).sum() / n
                if k in self.relations:
                    relation = self.relations[k]
                    diff = relation(teacher) - relation(student)
                    if self.rel_level_mean:
                        loss_rel = loss_rel + diff.pow(2).mean()
                    else:
                        loss_rel = loss_rel + diff.pow(2).sum() / n
        return {
            "loss_csgr_cat": self.cat_weight * loss_cat,
            "loss_csgr_rel": self.rel_weight * loss_rel,
        }


@DISTILL_LOSS_REGISTRY.register()
class CSGR(DistillMethod):
    """CSGR: Category Semantic and Global Relation distillation (docs/methods/csgr.md).

    Builds :class:`CSGRLoss` from ``MODEL.DISTILL.CSGR``: the category term on the levels of
    ``IN_FEATURES`` (all common levels if empty) and the relation term on those of
    ``REL_IN_FEATURES`` (the category term's if empty), with K from
    ``MODEL.RETINANET.NUM_CLASSES`` for a RetinaNet student and ``MODEL.ROI_HEADS.NUM_CLASSES``
    otherwise. ``CAT_WEIGHT`` and ``REL_WEIGHT`` follow the one weight rule (-1: published).
    """

    PUBLISHED = {
        arch: {"CAT_WEIGHT": 5e-4, "REL_WEIGHT": 1e-5} for arch in ("RetinaNet", "GeneralizedRCNN")
    }

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name (e.g. ["p2", "p3", "p4", "p5", "p6"]); [] means every
        # level that teacher and student both have.
        _C.IN_FEATURES = []
        # FPN levels of the global relation term (criss-cross attention); [] means the same as
        # IN_FEATURES. When set, IN_FEATURES names the category term's levels only. See
        # docs/methods/csgr.md for the measured trade-off of dropping p2.
        _C.REL_IN_FEATURES = []
        # Weight of the category semantic term loss_csgr_cat (sum of squared prototype
        # differences over levels, divided by the batch size). -1: published (5e-4).
        _C.CAT_WEIGHT = 5e-4
        # Weight of the global relation term loss_csgr_rel (sum of squared differences of the
        # criss-cross attention outputs over levels, divided by the batch size). -1: published
        # (1e-5).
        _C.REL_WEIGHT = 1e-5
        # Recurrence R of the criss-cross attention: 1 sees the row and column of each pixel, 2
        # the whole image.
        _C.RECURRENCE = 1
        # Channel reduction of the criss-cross query/key projections (C -> C / REDUCTION).
        _C.REDUCTION = 8
        # Init of the criss-cross convs: "kaiming" (Kaiming-normal fan_in, zero bias, as the
        # probable official code) or "default" (PyTorch's default init of the convs).
        _C.RELATION_INIT = "kaiming"
        # Where the category term's per-class attention over positions comes from: "learned"
        # (published: a 1x1 classifier per level, shared by teacher and student, whose only
        # training signal is the category loss itself), "gt" (the ground-truth boxes of each
        # class scaled to the level, each box an equal mass spread over its cells; no
        # classifier) or "gt_level" (as "gt", each box only on the level its size assigns by
        # FPN's rule, 224 px at p4, as the ROI pooler reads it; the nearest distilled level).
        _C.CATEGORY_ATTENTION = "learned"
        # The category term skips, at each step, every level whose map (padded batch) has fewer
        # than this many cells, H x W: 64 keeps p2-p4 of 128 px images and p2-p5 of 320 px ones.
        # 0 (published): every level of IN_FEATURES. The relation term is not affected.
        _C.CATEGORY_MIN_CELLS = 0
        # How the relation term adds up each level's squared differences: False (published)
        # sums them over channels and cells (per image), so a level weighs C x H x W times its
        # mean and the term grows with the input size; True averages them over images, channels
        # and cells, so every level weighs the same whatever its size (as PKD). REL_WEIGHT then
        # weighs a mean: PKD's published per-level weights are 3 (Faster R-CNN), 5 (RetinaNet).
        _C.REL_LEVEL_MEAN = False
        # "headinit" (the default: the student's heads from the teacher; for Faster R-CNN the
        # relation term on PKD's levels, averaged per level), "published" (the paper's, which
        # its configs set), "published-headinit" or "pkd-levels-headinit": csgr_formulation.py.
        _C.FORMULATION = "headinit"

    @classmethod
    def student_init_parts(cls, cfg) -> Tuple[str, ...]:
        return init_parts(cfg)

    @classmethod
    def resolved_defaults(cls, arch, defaults):
        return resolved_defaults(arch, defaults)

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> CSGRLoss:
        csgr_cfg = cls.node(cfg)
        rel_in_features, rel_weight, rel_level_mean = relation_settings(
            cfg, student_shapes, teacher_shapes
        ) or (csgr_cfg.REL_IN_FEATURES, cls.published(cfg, "REL_WEIGHT"), csgr_cfg.REL_LEVEL_MEAN)
        levels = select_levels(csgr_cfg.IN_FEATURES, student_shapes, teacher_shapes, "CSGR")
        rel_levels = levels
        if rel_in_features:
            try:
                rel_levels = select_levels(
                    list(rel_in_features), student_shapes, teacher_shapes, "CSGR"
                )
            except ValueError as e:  # name the key that was set
                message = str(e).replace("CSGR.IN_FEATURES", "CSGR.REL_IN_FEATURES")
                raise ValueError(message) from None
        all_levels = levels + [k for k in rel_levels if k not in levels]
        if csgr_cfg.RELATION_INIT not in CrissCrossAttention.INITS:
            raise ValueError(
                f"MODEL.DISTILL.CSGR.RELATION_INIT must be one of {CrissCrossAttention.INITS}, "
                f"got {csgr_cfg.RELATION_INIT!r}"
            )
        if csgr_cfg.CATEGORY_ATTENTION not in CSGRLoss.CATEGORY_ATTENTIONS:
            raise ValueError(
                "MODEL.DISTILL.CSGR.CATEGORY_ATTENTION must be one of "
                f"{CSGRLoss.CATEGORY_ATTENTIONS}, got {csgr_cfg.CATEGORY_ATTENTION!r}"
            )
        if csgr_cfg.CATEGORY_MIN_CELLS < 0:
            raise ValueError(
                f"MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS must be >= 0, got "
                f"{csgr_cfg.CATEGORY_MIN_CELLS}"
            )
        if cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE == "RetinaNet":
            num_classes = cfg.MODEL.RETINANET.NUM_CLASSES
        else:
            num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        return CSGRLoss(
            in_features=levels,
            student_channels={k: student_shapes[k].channels for k in all_levels},
            teacher_channels={k: teacher_shapes[k].channels for k in all_levels},
            num_classes=num_classes,
            cat_weight=cls.published(cfg, "CAT_WEIGHT"),
            rel_weight=rel_weight,
            recurrence=csgr_cfg.RECURRENCE,
            reduction=csgr_cfg.REDUCTION,
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
            rel_features=rel_levels,
            relation_init=csgr_cfg.RELATION_INIT,
            category_attention=csgr_cfg.CATEGORY_ATTENTION,
            category_min_cells=csgr_cfg.CATEGORY_MIN_CELLS,
            rel_level_mean=rel_level_mean,
        )
