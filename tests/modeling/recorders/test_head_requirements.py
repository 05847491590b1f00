"""The head checks of the recorders: a dense-head loss needs student and teacher anchors to agree."""

import pytest
from detectron2.modeling import build_model
from tiny_models import tiny_cfg

from csgr.modeling.recorders import check_head_requirements

RETINA = "RetinaNet"


def test_dense_anchor_mismatch_fails():
    cfgs = [tiny_cfg(RETINA), tiny_cfg(RETINA)]
    cfgs[1].MODEL.ANCHOR_GENERATOR.SIZES = [[s] for s in (16, 32, 64, 128, 256)]
    student, teacher = (build_model(c) for c in cfgs)
    with pytest.raises(ValueError, match="anchors differ"):
        check_head_requirements({"PCD": {"dense_head"}}, student, teacher)
