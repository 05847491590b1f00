"""``add_csgr_config``: every key of CSGR, under ``MODEL.DISTILL`` (and the robustness keys next
to the Detectron2 keys they qualify, see :mod:`.reliability`).

The keys shared by every method are here; each method's own keys (``MODEL.DISTILL.<NAME>``) are
defined, with their meaning, unit and published defaults, next to the method, in its file under
``csgr/modeling/losses/`` (``DistillMethod.add_config``).
"""

from detectron2.config import CfgNode as CN

from .backbones import add_mobile_backbones_config
from .reliability import add_reliability_config

__all__ = ["add_csgr_config"]


def add_csgr_config(cfg):
    """Add CSGR's keys to a Detectron2 config, in place: ``MODEL.DISTILL`` with the shared keys
    (below) and one sub-node per registered method, and the robustness keys.

    Safe to call more than once, and on a config that already has some of the keys: only the
    missing keys are added, existing values are left alone.

    Args:
        cfg (CfgNode): a config from :func:`detectron2.config.get_cfg`.
    """
    # imported here: the registry lives with the losses, which import the config helpers
    from ..modeling.losses import get_method, method_names

    distill = _distill_defaults()
    for name in method_names():
        distill[name] = CN()
        get_method(name).add_config(distill[name])
    _add_missing(cfg.MODEL, "DISTILL", distill)
    add_reliability_config(cfg)
    add_mobile_backbones_config(cfg)


def _add_missing(parent: CN, key: str, value) -> None:
    """Set ``parent[key] = value`` where it is missing, recursing into existing sub-nodes."""
    if key not in parent:
        parent[key] = value
    elif isinstance(value, CN) and isinstance(parent[key], CN):
        for k, v in value.items():
            _add_missing(parent[key], k, v)


def _distill_defaults() -> CN:
    _D = CN()
    # Meta-architecture of the student held by the "Distiller" meta-architecture:
    # "GeneralizedRCNN" (Faster R-CNN) or "RetinaNet". The student is built from this same config.
    _D.STUDENT_META_ARCHITECTURE = "GeneralizedRCNN"
    # Distillation methods to train with, by registered name (see DISTILL_LOSS_REGISTRY), e.g.
    # ["CSGR"] or ["CSGR", "PKD"]. Each has its own sub-node below with weights and levels.
    # An empty list trains the student alone (the baseline), with a warning; the teacher is then
    # neither built nor loaded.
    _D.METHODS = ["CSGR"]
    # How a student FPN level of a different width than the teacher's is matched: "auto" adds a
    # learnable 1x1 conv adapter student->teacher channels only where the widths differ, "always"
    # adds one on every distilled level, "never" raises an error on a width mismatch.
    _D.ADAPTER = "auto"

    _D.TEACHER = CN()
    # Path of the teacher's Detectron2 YAML config. A relative path is looked up from the working
    # directory, then from the folder of the config file that sets it (as Detectron2's _BASE_).
    # Required for distillation.
    _D.TEACHER.CONFIG_FILE = ""
    # Path of the teacher's weights (.pth/.pkl; a Detectron2 checkpoint, a model-zoo file, or a
    # CSGR checkpoint whose student was trained as teacher), relative paths as CONFIG_FILE.
    # Loaded strictly: any missing, unexpected or mis-shaped key is an error.
    _D.TEACHER.WEIGHTS = ""
    # Extra ["KEY", "VALUE", ...] overrides applied to the teacher config after CONFIG_FILE.
    _D.TEACHER.OPTS = []

    # Parts of the student initialised from the teacher's weights, where names and shapes match
    # (e.g. same FPN width): any of "neck" (FPN) and "head" (RPN + ROI heads, or the RetinaNet
    # head). FGD's published recipe uses ["neck", "head"]. Applied when the Distiller is built;
    # MODEL.WEIGHTS (an ImageNet backbone, say) is loaded after it, and --resume overrides both.
    _D.STUDENT_INIT_FROM_TEACHER = []

    # Scale of the distillation terms against the student's own detection loss
    # (csgr/modeling/loss_scale.py).
    _D.LOSS_SCALE = CN()
    # "published": every method's terms with their configured (published) weights.
    # "calibrated": during the first WARMUP_ITERS iterations the student trains on its detection
    # loss alone while each method's summed terms are measured against it; then one factor per
    # method (the same for all its terms, so their ratios are kept) makes the method's loss
    # TARGET times the detection loss. Factors are averaged over processes, saved in checkpoints,
    # logged as loss_scale/<method> and printed once.
    _D.LOSS_SCALE.MODE = "published"
    # Calibrated mode: wanted ratio of a method's summed weighted terms to the detection loss.
    _D.LOSS_SCALE.TARGET = 1.0
    # Calibrated mode: iterations measured before the factors are fixed (>= 1).
    _D.LOSS_SCALE.WARMUP_ITERS = 20

    # When the distillation terms act (csgr/modeling/distill_schedule.py): their factor is 0 before
    # START_ITER, then rises linearly to 1 over RAMP_ITERS iterations (after any loss scale),
    # logged as distill_weight. The defaults (0, 0) distil from the first iteration, as published.
    _D.SCHEDULE = CN()
    # First iteration whose terms act; -1: at the end of the LR warm-up (SOLVER.WARMUP_ITERS).
    _D.SCHEDULE.START_ITER = 0
    # Iterations of the linear ramp from START_ITER (0: full weight at once).
    _D.SCHEDULE.RAMP_ITERS = 0
    return _D
