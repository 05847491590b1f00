"""Config keys of the robustness features: bad-image skipping and the mixed-precision dtype.

They live next to the Detectron2 keys they qualify (``DATALOADER``, ``SOLVER.AMP``), where a
Detectron2 user looks for them. Code reads them with ``.get`` and the defaults below, so a config
built without :func:`add_reliability_config` behaves like Detectron2.
"""

__all__ = ["add_reliability_config", "SKIP_BAD_IMAGES_DEFAULT", "AMP_PRECISIONS"]

SKIP_BAD_IMAGES_DEFAULT = False
AMP_PRECISIONS = ("float16", "bfloat16")


def add_reliability_config(cfg):
    """Add ``DATALOADER.SKIP_BAD_IMAGES`` and ``SOLVER.AMP.PRECISION``, in place.

    Safe to call more than once (keys already present are left alone).

    Args:
        cfg (CfgNode): a config from :func:`detectron2.config.get_cfg`.
    """
    if "SKIP_BAD_IMAGES" not in cfg.DATALOADER:
        # What to do with an image file that is missing, empty or cannot be decoded.
        # False: stop with an error naming the file (the default: a dataset with bad files is
        # usually a setup mistake). True: log a warning naming the file, count it, and go on;
        # in training Detectron2 puts another random image of the dataset in its place, in
        # evaluation the image yields no prediction (its ground truth counts as missed).
        cfg.DATALOADER.SKIP_BAD_IMAGES = SKIP_BAD_IMAGES_DEFAULT
    if "PRECISION" not in cfg.SOLVER.AMP:
        # Reduced precision of the forward pass when SOLVER.AMP.ENABLED is True:
        # "float16" (CUDA only; with a GradScaler, as Detectron2's AMPTrainer) or "bfloat16"
        # (CUDA or CPU; no GradScaler needed). Losses are summed and back-propagated in float32.
        cfg.SOLVER.AMP.PRECISION = "float16"
