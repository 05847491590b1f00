"""The plain Detectron2 config of a Distiller's student.

The student's config must merge into vanilla Detectron2's ``get_cfg()`` with no ``csgr`` import,
so every key that vanilla Detectron2 does not know (``MODEL.DISTILL`` and anything else a
project added) is removed.
"""

import logging
from typing import List, Tuple

from detectron2.config import CfgNode, get_cfg

from ..config import add_csgr_config

__all__ = ["DISTILLER", "is_distiller", "student_cfg", "check_vanilla_cfg"]

logger = logging.getLogger(__name__)

DISTILLER = "Distiller"


def is_distiller(cfg: CfgNode) -> bool:
    """Whether a config trains a student with the Distiller meta-architecture."""
    return cfg.MODEL.META_ARCHITECTURE == DISTILLER


def _prune_unknown(node: CfgNode, reference: CfgNode, prefix: str, dropped: List[str]) -> None:
    for key in list(node.keys()):
        if key not in reference:
            del node[key]
            dropped.append(prefix + key)
        elif isinstance(node[key], CfgNode) and isinstance(reference[key], CfgNode):
            _prune_unknown(node[key], reference[key], prefix + key + ".", dropped)


def _csgr_defaults() -> CfgNode:
    cfg = get_cfg()
    add_csgr_config(cfg)
    return cfg


def _has_key(cfg: CfgNode, dotted: str) -> bool:
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return False
        node = node[part]
    return True


def student_cfg(cfg: CfgNode, weights: str = "") -> Tuple[CfgNode, List[str]]:
    """The plain detector config of a run: the Distiller's student, or the detector itself.

    ``MODEL.META_ARCHITECTURE`` becomes ``MODEL.DISTILL.STUDENT_META_ARCHITECTURE`` (the student
    is built from the rest of the Distiller's config, so every other key already describes it),
    and every key that vanilla Detectron2's ``get_cfg()`` lacks is removed (``MODEL.DISTILL``
    entirely). DATASETS, INPUT, SOLVER, TEST, ... are kept.

    Args:
        cfg: a run's config (see :func:`csgr.config.load_config`); not modified.
        weights: the value of ``MODEL.WEIGHTS`` in the result.

    Returns:
        (the student's config, the removed keys as dotted names)
    """
    out = cfg.clone()
    out.defrost()
    if is_distiller(out):
        out.MODEL.META_ARCHITECTURE = out.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    dropped: List[str] = []
    _prune_unknown(out, get_cfg(), "", dropped)
    extra = [k for k in dropped if k != "MODEL.DISTILL"]
    ours = [k for k in extra if _has_key(_csgr_defaults(), k)]
    if ours:  # expected: the keys CSGR adds, which vanilla Detectron2 cannot read
        logger.info(f"Left CSGR's own keys out of the student config: {ours}")
    others = [k for k in extra if k not in ours]
    if others:
        logger.warning(
            f"Removed keys unknown to vanilla Detectron2 and to CSGR from the student config: "
            f"{others} (a model that needs them will not build as trained from the released "
            "config)"
        )
    out.MODEL.WEIGHTS = weights
    return out, dropped


def check_vanilla_cfg(path: str) -> None:
    """Merge a YAML into vanilla Detectron2's ``get_cfg()``.

    Raises:
        KeyError: naming the file and the key vanilla Detectron2 does not know.
    """
    vanilla = get_cfg()
    try:
        vanilla.merge_from_file(path)
    except KeyError as e:
        raise KeyError(f"{path} does not merge into detectron2's get_cfg(): {e}") from e
