"""The registered methods as the tests over every method see them, and each method's loss terms.

Lists come from the registry (:func:`csgr.modeling.losses.method_names`), so that a newly
registered method is covered by the tests that use them.
"""

from csgr.modeling.losses import get_method, method_names

RCNN, RETINA = "GeneralizedRCNN", "RetinaNet"
ARCHS = (RCNN, RETINA)

# The terms each method's loss returns (a registered method missing here fails the tests over
# every method, which check this table against the registry).
LOSS_TERMS = {
    "CSGR": {"loss_csgr_cat", "loss_csgr_rel"},
    "FGD": {"loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask", "loss_fgd_global"},
    "MSE": {"loss_mse"},
    "PKD": {"loss_pkd"},
    "CWD": {"loss_cwd"},
    "MGD": {"loss_mgd"},
    "PCD": {"loss_pcd_cls", "loss_pcd_loc", "loss_pcd_quality"},
    "DKD": {"loss_dkd"},
    "IKD": {"loss_ikd_feat", "loss_ikd_logit", "loss_ikd_align"},
}
# Terms computed from the ROI box classifier's logits: a student without one (RetinaNet) lacks
# them, and a loss returning them requires "roi_head".
ROI_TERMS = {"loss_dkd", "loss_ikd_logit"}


def loss_terms(method, arch):
    """The terms ``method``'s loss returns for a student of meta-architecture ``arch``.

    Raises:
        KeyError: the method has no entry in :data:`LOSS_TERMS`.
    """
    if method not in LOSS_TERMS:
        raise KeyError(f"{method}: add the terms its loss returns to loss_inputs.LOSS_TERMS")
    return LOSS_TERMS[method] if arch == RCNN else LOSS_TERMS[method] - ROI_TERMS


def applicable_pairs():
    """(method, student meta-architecture) for every registered method and each architecture it
    applies to, in registry order."""
    return [(m, arch) for m in method_names() for arch in ARCHS if get_method(m).applies_to(arch)]
