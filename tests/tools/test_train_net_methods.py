"""tools/train_net.py: two iterations of each registered method, for each student type it applies
to, from its config in configs/Shapes/ on a generated shapes dataset."""

import json
import math
import os

import pytest
from detectron2.engine import default_argument_parser
from method_lists import RETINA, applicable_pairs, loss_terms
from tiny_models import ROOT, config_from_file, load_tool, save_teacher

from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("d2datasets")
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=4, num_val=2, image_size=64)
    return root


@pytest.mark.parametrize("method, arch", applicable_pairs())
def test_train_net_two_iterations(
    tmp_path, shapes_root, monkeypatch, restore_catalogs, method, arch
):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    prefix, shapes_base = ("retinanet", "RetinaNet") if arch == RETINA else ("frcnn", "RCNN")
    config_file = os.path.join(ROOT, "configs", "Shapes", f"{method.lower()}_{prefix}_r18_r34.yaml")
    teacher_cfg, teacher_weights, _ = save_teacher(  # the levels of the shapes configs
        str(tmp_path),
        arch,
        depth=18,
        num_classes=len(SHAPES_CATEGORIES),
        base=os.path.join(ROOT, "configs", "Shapes", f"Base-Shapes-{shapes_base}.yaml"),
        # the student's anchors: a dense-head method (PCD) compares the two anchor by anchor
        anchor_sizes=config_from_file(config_file).MODEL.ANCHOR_GENERATOR.SIZES,
    )
    opts = {
        "MODEL.DISTILL.TEACHER.CONFIG_FILE": teacher_cfg,
        "MODEL.DISTILL.TEACHER.WEIGHTS": teacher_weights,
        "INPUT.MIN_SIZE_TRAIN": "(64,)",
        "INPUT.MAX_SIZE_TRAIN": 64,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": 64,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 32,
        "SOLVER.IMS_PER_BATCH": 2,
        "SOLVER.MAX_ITER": 2,
        "SOLVER.WARMUP_ITERS": 1,
        "DATALOADER.NUM_WORKERS": 0,
        "DATASETS.TEST": "()",
        "OUTPUT_DIR": str(tmp_path / "run"),
    }
    argv = ["--config-file", config_file] + [str(x) for kv in opts.items() for x in kv]
    load_tool("train_net").main(default_argument_parser().parse_args(argv))
    with open(tmp_path / "run" / "metrics.json") as f:
        records = [json.loads(line) for line in f if '"iteration"' in line]
    assert records and records[-1]["iteration"] == 1
    for key in loss_terms(method, arch):
        assert math.isfinite(records[-1][key]), key
    assert os.path.isfile(tmp_path / "run" / "model_final.pth")
