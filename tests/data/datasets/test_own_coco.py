"""A user's COCO json as labelme's converter writes it: evaluated right, checked, registered.

``labelme2coco.py`` numbers annotations from 0 (pycocotools takes id 0 for "no match") and
writes a ``_background_`` category with id 0 that no box uses (see ``labelme_data``).
"""

import json

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.evaluation import COCOEvaluator
from labelme_data import CLASSES, ground_truth_as_predictions, write_labelme_coco

import csgr  # noqa: F401
from csgr.data import register_coco_dataset
from csgr.data.checks import check_dataset
from csgr.errors import DatasetFileError
from csgr.evaluation import build_evaluator


def _evaluate(evaluator, name):
    evaluator.reset()
    evaluator.process(*ground_truth_as_predictions(DatasetCatalog.get(name)))
    return evaluator.evaluate()["bbox"]


def test_annotation_id_0_evaluates_to_100(tmp_path, restore_catalogs):
    """Fed its own ground truth, a json whose annotations start at id 0 scores AP 100 with the
    project's evaluator; Detectron2's own evaluator loses the box of id 0."""
    json_file = write_labelme_coco(str(tmp_path))
    register_coco_instances("own_coco_d2", {}, json_file, str(tmp_path))
    out = str(tmp_path / "eval")
    d2 = _evaluate(COCOEvaluator("own_coco_d2", tasks=("bbox",), output_dir=out), "own_coco_d2")
    assert d2["AP50"] < 99  # the bug this guards against
    ours = _evaluate(build_evaluator(None, "own_coco_d2", out), "own_coco_d2")
    assert ours["AP"] == pytest.approx(100.0) and ours["AP50"] == pytest.approx(100.0)
    with open(json_file) as f:
        assert json.load(f)["annotations"][0]["id"] == 0  # the user's file is untouched


def test_check_dataset_names_id_0_and_the_background_category(tmp_path, restore_catalogs):
    json_file = write_labelme_coco(str(tmp_path))
    register_coco_instances("own_coco_check", {}, json_file, str(tmp_path))
    report = check_dataset("own_coco_check")
    assert report.ok, report.summary()
    notes = " ".join(report.notes)
    assert f"{json_file}: an annotation has id 0" in notes and "renumbers" in notes
    assert "category '_background_' (id 0) has no box but is class 0 of the 3" in notes
    assert "register_coco_dataset" in notes


def test_register_coco_dataset_leaves_the_background_out(tmp_path, restore_catalogs):
    json_file = write_labelme_coco(str(tmp_path))
    register_coco_dataset("own_coco_reg", json_file, str(tmp_path))
    meta = MetadataCatalog.get("own_coco_reg")
    assert meta.thing_classes == CLASSES  # known before loading: demos and checks use them
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 2: 1}
    dicts = DatasetCatalog.get("own_coco_reg")
    assert sorted({a["category_id"] for r in dicts for a in r["annotations"]}) == [0, 1]
    report = check_dataset("own_coco_reg", num_classes=2)
    assert report.ok and report.class_counts == {"person": 4, "tv/monitor": 3}, report.summary()
    assert not any("_background_" in n for n in report.notes)
    out = str(tmp_path / "eval")
    results = _evaluate(build_evaluator(None, "own_coco_reg", out), "own_coco_reg")
    assert results["AP"] == pytest.approx(100.0)
    assert {k for k in results if k.startswith("AP-")} == {f"AP-{c}" for c in CLASSES}


def test_register_coco_dataset_names_a_broken_json_when_loading(tmp_path, restore_catalogs):
    json_file = tmp_path / "broken.json"
    json_file.write_text('{"images": [1,, 2]}')
    register_coco_dataset("own_coco_broken", str(json_file), str(tmp_path))  # no exception
    with pytest.raises(DatasetFileError, match=f"{json_file} is not valid JSON: .* line 1"):
        DatasetCatalog.get("own_coco_broken")
