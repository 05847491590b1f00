"""CSGR's formulations, ``MODEL.DISTILL.CSGR.FORMULATION``: what the relation term's keys mean and
whether the student's detection heads start from the teacher's.

* ``"published"``: the paper's formulation, every ``MODEL.DISTILL.CSGR`` key read as set (the
  relation term summed over channels and cells at ``REL_WEIGHT`` 1e-5 on the category term's
  levels, unless ``REL_*`` say otherwise); the student is initialised as its own config says.
* ``"pkd-levels-headinit"``: the relation term averaged per level (as PKD: every level weighs the
  same whatever its size) on PKD's published levels at PKD's per-level weight (Faster R-CNN p2-p5
  at 3, RetinaNet p3-p6 at 5, restricted to the levels both sides have), the category term as
  published, and the student's RPN and ROI heads (RetinaNet: its head) initialised from the
  teacher's where names and shapes agree (FGD's published recipe has the same init). It fixes
  ``REL_LEVEL_MEAN``, ``REL_WEIGHT`` and ``REL_IN_FEATURES``: set to anything but their defaults,
  they are an error (use ``"published"`` to tune them).
* ``"published-headinit"``: the published terms, every key read as set, and the student's heads
  initialised from the teacher's as above.
* ``"headinit"`` (the default): one setting for either student, resolved from its
  meta-architecture to what was measured best for it: a Faster R-CNN student
  ``"pkd-levels-headinit"``, a RetinaNet student ``"published-headinit"``. The paper's configs
  (SODA10M, VOC, MiniCOCO) set ``"published"``.

Measured in BENCHMARKS.md ("The default CSGR, ImageNet-initialised students").
"""

from typing import Any, Dict, Optional, Tuple

from detectron2.config import CfgNode

from .base import get_method

__all__ = [
    "FORMULATIONS",
    "formulation",
    "pkd_levels",
    "relation_settings",
    "init_parts",
    "resolved_defaults",
]

FORMULATIONS = ("published", "published-headinit", "pkd-levels-headinit", "headinit")
# What "headinit" is for each student meta-architecture.
HEADINIT_BY_DETECTOR = {"GeneralizedRCNN": "pkd-levels-headinit", "RetinaNet": "published-headinit"}
_FIXED = ("REL_LEVEL_MEAN", "REL_WEIGHT", "REL_IN_FEATURES")


def pkd_levels(arch: str) -> Tuple[Tuple[str, ...], float]:
    """PKD's published levels and per-level weight of a mean squared difference for a student
    meta-architecture: its loss weight over 2, since :class:`.pkd.PKDLoss` halves the mean
    (Faster R-CNN p2-p5 at 3, RetinaNet p3-p6 at 5). Read from the registry: importing pkd.py
    here would register PKD before CSGR, and the method tables follow registration order."""
    published = get_method("PKD").PUBLISHED[arch]
    return tuple(published["IN_FEATURES"]), published["WEIGHT"] / 2


def formulation(cfg: CfgNode) -> str:
    """The config's formulation, ``"headinit"`` resolved for its student detector.

    Raises:
        ValueError: an unknown formulation; ``"headinit"`` for a student detector it does not
            define.
    """
    value = cfg.MODEL.DISTILL.CSGR.FORMULATION
    if value not in FORMULATIONS:
        raise ValueError(
            f"MODEL.DISTILL.CSGR.FORMULATION must be one of {FORMULATIONS}, got {value!r}"
        )
    if value != "headinit":
        return value
    arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    if arch not in HEADINIT_BY_DETECTOR:
        raise ValueError(
            f"MODEL.DISTILL.CSGR.FORMULATION 'headinit' is defined for students "
            f"{sorted(HEADINIT_BY_DETECTOR)}, not {arch!r} (MODEL.DISTILL.STUDENT_META_ARCHITECTURE)"
            "; use 'published' or 'published-headinit'"
        )
    return HEADINIT_BY_DETECTOR[arch]


def relation_settings(
    cfg: CfgNode, student_shapes: dict, teacher_shapes: dict
) -> Optional[Tuple[Tuple[str, ...], float, bool]]:
    """The relation term's (levels, weight, level mean) where the config's formulation sets them,
    None where it reads ``REL_IN_FEATURES``, ``REL_WEIGHT`` and ``REL_LEVEL_MEAN`` as set.

    Args:
        cfg: a Distiller config.
        student_shapes / teacher_shapes (dict[str, ShapeSpec]): backbone outputs by level.

    Raises:
        ValueError: an unknown formulation; a key the formulation fixes set to another value
            (naming it); none of PKD's levels in both student and teacher.
    """
    node = cfg.MODEL.DISTILL.CSGR
    resolved = formulation(cfg)
    if resolved != "pkd-levels-headinit":
        return None
    arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    shown = (
        repr(resolved)
        if node.FORMULATION == resolved
        else f"'headinit' ({resolved!r} for a {arch})"
    )
    method = get_method("CSGR")
    defaults = CfgNode()
    method.add_config(defaults)  # the published values the formulation replaces
    published = method.PUBLISHED.get(arch, {})
    changed = [
        k
        for k in _FIXED
        if (method.published(cfg, k) if k in published else node[k]) != defaults[k]
    ]
    if changed:
        raise ValueError(
            f"MODEL.DISTILL.CSGR.FORMULATION {shown} sets the relation term itself, but "
            f"{', '.join('MODEL.DISTILL.CSGR.' + k for k in changed)} is set too; leave it at its "
            "default or use FORMULATION 'published' or 'published-headinit' to tune the relation "
            "term"
        )
    if arch not in get_method("PKD").PUBLISHED:
        raise ValueError(
            f"MODEL.DISTILL.CSGR.FORMULATION {shown} is defined for students "
            f"{sorted(get_method('PKD').PUBLISHED)}, not {arch!r}"
        )
    wanted, weight = pkd_levels(arch)
    levels = tuple(k for k in wanted if k in student_shapes and k in teacher_shapes)
    if not levels:
        raise ValueError(
            f"MODEL.DISTILL.CSGR.FORMULATION {shown}: none of PKD's levels {list(wanted)} "
            f"is in both the student {sorted(student_shapes)} and the teacher "
            f"{sorted(teacher_shapes)}"
        )
    return levels, weight, True


def init_parts(cfg: CfgNode) -> Tuple[str, ...]:
    """The student parts the formulation initialises from the teacher ("head" or none)."""
    return () if formulation(cfg) == "published" else ("head",)


def resolved_defaults(arch: str, defaults: Dict[str, Any]) -> Dict[str, Any]:
    """``MODEL.DISTILL.CSGR``'s keys at ``defaults`` as the loss for an ``arch`` student uses
    them: ``FORMULATION`` "headinit" shown with what it resolves to, and the relation term's keys
    that the resolved formulation sets (PKD's levels, all of which FPN students have), these
    keys first.

    Args:
        arch: the student meta-architecture.
        defaults: every key of the node, -1 replaced by the published value.
    """
    cfg = CfgNode({"MODEL": {"DISTILL": {"STUDENT_META_ARCHITECTURE": arch}}})
    cfg.MODEL.DISTILL.CSGR = CfgNode(dict(defaults))
    resolved = formulation(cfg)
    shown = defaults["FORMULATION"]
    out = {"FORMULATION": shown if resolved == shown else f"{shown} ({resolved})"}
    if resolved == "pkd-levels-headinit":
        levels, weight = pkd_levels(arch)
        out.update(REL_IN_FEATURES=list(levels), REL_WEIGHT=weight, REL_LEVEL_MEAN=True)
    return {**out, **{k: v for k, v in defaults.items() if k not in out}}
