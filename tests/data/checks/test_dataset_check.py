"""Users' own COCO/VOC files: handled, or named with the reason before the first iteration.

The VOC files are written as labelme's VOC export writes them (empty ``<truncated/>`` and
``<difficult/>``, float corners, a class ``tv/monitor``); the COCO jsons and VOC xmls with errors
are the ones users report (syntax errors, unknown category ids, unknown class, broken xml).
"""

import json
import logging
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.evaluation import PascalVOCDetectionEvaluator
from detectron2.structures import Boxes, Instances
from labelme_data import LABELME_VOC_OBJECT as LABELME_OBJECT
from tiny_models import ROOT, tiny_cfg

import csgr  # noqa: F401
from csgr.config.reliability import add_reliability_config
from csgr.data.checks import check_before_training, check_dataset
from csgr.data.checks.before_training import (
    ClassCountError,
    MissingImageError,
    check_num_classes,
)
from csgr.engine import Trainer
from csgr.errors import DatasetFileError
from csgr.evaluation import build_evaluator
from csgr.evaluation.voc import TolerantPascalVOCEvaluator

CLASSES = ["person", "tv/monitor"]
# image id -> objects (class, xmin, ymin, xmax, ymax) in VOC's 1-based pixel corners
OBJECTS = {
    "img_000": [("person", 3, 4, 30, 40), ("tv/monitor", 35, 10, 60, 30)],
    "img_001": [("tv/monitor", 5, 5, 25, 50)],
    "img_002": [("person", 10, 12, 50, 44), ("person", 40, 2, 62, 20)],
}
SIZE = (48, 64)  # height, width
CLEAN_OBJECT = """
  <object><name>{}</name><pose>Unspecified</pose><truncated>0</truncated>
    <difficult>0</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax>
    <ymax>{}</ymax></bndbox></object>"""
XML = """<annotation>
  <folder></folder>
  <filename>{}.jpg</filename>
  <size><width>{}</width><height>{}</height><depth>3</depth></size>{}
</annotation>
"""


def write_voc(root, objects=OBJECTS, template=LABELME_OBJECT, rename=None, xml_override=None):
    """A VOC folder (Annotations, ImageSets/Main/test.txt, JPEGImages) with small images."""
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    for image_id, objs in objects.items():
        body = "".join(template.format((rename or {}).get(o[0], o[0]), *o[1:]) for o in objs)
        text = (xml_override or {}).get(image_id) or XML.format(image_id, SIZE[1], SIZE[0], body)
        with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as f:
            f.write(text)
        image = rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)
        cv2.imwrite(os.path.join(root, "JPEGImages", image_id + ".jpg"), image)
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("\n".join(objects) + "\n")
    return str(root)


def register_voc(name, dirname, classes=CLASSES):
    register_pascal_voc(name, dirname, "test", 2007, classes)
    MetadataCatalog.get(name).evaluator_type = "pascal_voc"
    return name


def _predictions(seed=0):
    """Per image: ground-truth-like boxes with noise, random scores and some wrong classes."""
    rng = np.random.default_rng(seed)
    inputs, outputs = [], []
    for image_id, objs in OBJECTS.items():
        boxes = np.array([o[1:] for o in objs], dtype=np.float32) - [1, 1, 0, 0]
        boxes = np.concatenate([boxes + rng.normal(0, 2, boxes.shape), boxes[:1] + 9])
        classes = [CLASSES.index(o[0]) for o in objs] + [int(rng.integers(2))]
        instances = Instances(SIZE)
        instances.pred_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32))
        instances.scores = torch.as_tensor(rng.random(len(boxes)), dtype=torch.float32)
        instances.pred_classes = torch.as_tensor(classes)
        inputs.append({"image_id": image_id})
        outputs.append({"instances": instances})
    return inputs, outputs


def _evaluate(evaluator):
    evaluator.reset()
    evaluator.process(*_predictions())
    return evaluator.evaluate()["bbox"]


def test_labelme_voc_evaluates_as_its_clean_equivalent(tmp_path, restore_catalogs):
    labelme = register_voc("test_check_labelme", write_voc(tmp_path / "labelme"))
    # the same annotations as Detectron2's VOC evaluator reads them: int corners, flags 0,
    # class names that are file names
    renamed = {"tv/monitor": "tvmonitor"}
    clean_dir = write_voc(tmp_path / "clean", template=CLEAN_OBJECT, rename=renamed)
    clean = register_voc("test_check_clean", clean_dir, ["person", "tvmonitor"])

    assert len(DatasetCatalog.get(labelme)) == 3  # Detectron2's loader accepts the files
    with pytest.raises((TypeError, ValueError, FileNotFoundError)):
        _evaluate(PascalVOCDetectionEvaluator(labelme))  # ... its evaluator does not

    assert isinstance(build_evaluator(None, labelme), TolerantPascalVOCEvaluator)
    expected = _evaluate(PascalVOCDetectionEvaluator(clean))
    assert 0 < expected["AP"] < expected["AP50"]  # noisy boxes: not a trivial result
    assert _evaluate(build_evaluator(None, labelme)) == expected
    assert _evaluate(build_evaluator(None, clean)) == expected  # clean files: Detectron2's path


def test_check_dataset_reports_labelme_files_as_handled(tmp_path, restore_catalogs):
    name = register_voc("test_check_labelme_report", write_voc(tmp_path))
    report = check_dataset(name)
    assert report.ok, report.summary()
    assert (report.num_images, report.num_boxes) == (3, 5)
    assert report.class_counts == {"person": 3, "tv/monitor": 2}
    notes = " ".join(report.notes)
    first = os.path.join(str(tmp_path), "Annotations", "img_000.xml")
    for fragment in (
        f"<truncated>/<difficult> (read as 0), e.g. <truncated/> in {first}",
        f"non-integer box corners (rounded), e.g. <xmin>3.0</xmin> in {first}",
        "['tv/monitor']",
    ):
        assert fragment in notes, report.summary()


def test_a_voc_corner_0_is_clipped_with_its_reason(tmp_path, restore_catalogs, caplog):
    """labelme writes a box from the image's edge with corner 0.0; Detectron2's 1-based shift
    makes it -1, and the box is clipped back: the check and the training log say why."""
    objects = {"img_000": [("person", 0, 0, 20, 30)], "img_001": [("person", 2, 3, 70, 20)]}
    name = register_voc("test_check_corner_0", write_voc(tmp_path, objects))
    notes = " ".join(check_dataset(name).notes)
    assert "2 box(es) extend beyond their image (clipped)" in notes
    assert "(a corner 0 of a 1-based VOC file, -1 after Detectron2's shift to 0-based)" in notes
    assert "(6 px beyond the 64x48 image)" in notes
    with caplog.at_level(logging.WARNING, logger="csgr.data.box_checks"):
        Trainer.build_train_loader(_train_cfg(name))
    assert "clipped (a corner 0 of a 1-based VOC file" in caplog.text


BROKEN_VOC = {
    "unknown class": (
        {"img_001": [("persn", 5, 5, 25, 40)]},
        "img_001.xml: object 1: class 'persn' is not one of the dataset's classes",
    ),
    "broken xml": (
        {"img_002": None},
        "img_002.xml: is not valid XML (mismatched tag: line 2",
    ),
    "text corner": (
        {"img_000": [("person", 3, 4, 30, 40)]},
        "img_000.xml: object 1: <xmax> is 'abc', not a number",
    ),
}


def _broken_voc(root, case):
    changed, _ = BROKEN_VOC[case]
    objects = dict(OBJECTS)
    objects.update({k: v for k, v in changed.items() if v is not None})
    override = {k: "<annotation>\n<size></annotation>\n" for k, v in changed.items() if v is None}
    dirname = write_voc(root, objects, xml_override=override)
    if case == "text corner":
        path = os.path.join(dirname, "Annotations", "img_000.xml")
        text = open(path).read().replace("<xmax>30.0</xmax>", "<xmax>abc</xmax>")
        open(path, "w").write(text)
    return dirname


def _train_cfg(train, test=()):
    cfg = tiny_cfg(num_classes=2)
    add_reliability_config(cfg)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (train,), tuple(test)
    return cfg


@pytest.mark.parametrize("case", sorted(BROKEN_VOC))
def test_broken_voc_named_before_training(tmp_path, restore_catalogs, case):
    name = register_voc(f"test_check_voc_{case.replace(' ', '_')}", _broken_voc(tmp_path, case))
    expected = BROKEN_VOC[case][1]
    with pytest.raises(DatasetFileError, match=f"Dataset '{name}'") as e:  # as a training set
        Trainer.build_train_loader(_train_cfg(name))
    assert expected in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(DatasetFileError) as e:  # as a test set, when training starts
        check_before_training(_train_cfg(name, [name]))
    assert expected in str(e.value) and "DATASETS.TEST" in str(e.value)
    report = check_dataset(name)
    assert not report.ok and any(expected in err for err in report.errors)


def _coco(tmp_path, name, categories, category_ids, text=None):
    os.makedirs(tmp_path / "images", exist_ok=True)
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    images = [{"id": 1, "file_name": "a.jpg", "height": 20, "width": 30}]
    anns = [
        {"id": i + 1, "image_id": 1, "category_id": c, "bbox": [1, 1, 5, 5], "iscrowd": 0}
        for i, c in enumerate(category_ids)
    ]
    path = tmp_path / f"{name}.json"
    coco = {"images": images, "annotations": anns, "categories": categories}
    path.write_text(text if text is not None else json.dumps(coco))
    register_coco_instances(name, {}, str(path), str(tmp_path / "images"))
    return name, str(path)


def test_coco_errors_named_before_training(tmp_path, restore_catalogs):
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    syntax, syntax_file = _coco(tmp_path, "test_check_syntax", cats, [1], '{"images": [1,, 2]}')
    unknown, unknown_file = _coco(tmp_path, "test_check_ids", cats, [1, 99, 2, 99])
    cases = [
        (syntax, f"{syntax_file} is not valid JSON: Expecting value at line 1, column 15"),
        (unknown, f"{unknown_file}: 2 annotation(s) use category ids [99]"),
    ]
    for name, expected in cases:
        with pytest.raises(DatasetFileError) as e:
            Trainer.build_train_loader(_train_cfg(name))
        assert expected in str(e.value)
        with pytest.raises(DatasetFileError) as e:
            check_before_training(_train_cfg(name, [name]))
        assert expected in str(e.value)
    good, _ = _coco(tmp_path, "test_check_good", cats, [1, 2])
    report = check_dataset(good, num_classes=2)
    assert report.ok and report.class_counts == {"a": 1, "b": 1}, report.summary()
    assert "outside [0, 1)" in " ".join(check_dataset(good, num_classes=1).errors)


def test_trainer_fails_before_training_on_a_broken_test_set(tmp_path, restore_catalogs):
    train, _ = _coco(tmp_path, "test_check_train", [{"id": 1, "name": "a"}], [1])
    test = register_voc("test_check_voc_test", _broken_voc(tmp_path / "voc", "broken xml"))
    cfg = _train_cfg(train, [test])
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    with pytest.raises(DatasetFileError, match="img_002.xml: is not valid XML"):
        Trainer(cfg)


def test_training_evaluates_labelme_voc(tmp_path, restore_catalogs):
    name = register_voc("test_check_labelme_train", write_voc(tmp_path / "voc"))
    cfg = _train_cfg(name, [name])
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.BASE_LR = 2, 0.001
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    assert set(results["bbox"]) == {"AP", "AP50", "AP75"}
    assert all(np.isfinite(v) for v in results["bbox"].values())


def _tool(*args, env=None):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "check_dataset.py"), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
        cwd=ROOT,
    )


def test_check_dataset_tool(tmp_path):
    """The tool registers a user's datasets with --register or $CSGR_REGISTER, prints a summary
    per dataset and exits 1 when one has an error."""
    good = write_voc(tmp_path / "good")
    bad = _broken_voc(tmp_path / "bad", "unknown class")
    module = tmp_path / "my_voc.py"
    module.write_text(
        "from detectron2.data import MetadataCatalog\n"
        "from detectron2.data.datasets import register_pascal_voc\n"
        f"for name, d in (('my_good', {good!r}), ('my_bad', {bad!r})):\n"
        f"    register_pascal_voc(name, d, 'test', 2007, {CLASSES!r})\n"
        "    MetadataCatalog.get(name).evaluator_type = 'pascal_voc'\n"
    )
    ok = _tool("--register", str(module), "my_good")
    assert ok.returncode == 0, ok.stderr
    assert "Dataset 'my_good'" in ok.stdout and "3 images, 5 boxes" in ok.stdout
    assert "1 of 1 dataset(s) OK" in ok.stdout
    failed = _tool("my_good", "my_bad", "--no-images", env={"CSGR_REGISTER": str(module)})
    assert failed.returncode == 1
    assert "img_001.xml: object 1: class 'persn'" in failed.stdout
    assert "errors in ['my_bad']" in failed.stdout


def test_check_dataset_tool_takes_config_overrides(tmp_path):
    """KEY VALUE after --config-file are overrides (not dataset names): the overridden datasets
    are checked, the config's own ones are not loaded (nor generated)."""
    module = tmp_path / "my_voc.py"
    module.write_text(
        "from detectron2.data import MetadataCatalog\n"
        "from detectron2.data.datasets import register_pascal_voc\n"
        f"register_pascal_voc('my_good', {write_voc(tmp_path / 'good')!r}, 'test', 2007, "
        f"{CLASSES!r})\n"
        "MetadataCatalog.get('my_good').evaluator_type = 'pascal_voc'\n"
    )
    config = os.path.join(ROOT, "configs", "Shapes", "faster_rcnn_R_18_FPN.yaml")
    datasets_root = tmp_path / "datasets"
    env = {"DETECTRON2_DATASETS": str(datasets_root)}
    opts = ["DATASETS.TRAIN", "('my_good',)", "DATASETS.TEST", "('my_good',)"]
    args = ["--register", str(module), "--config-file", config, "--no-images"]
    for sep in ([], ["--"]):
        result = _tool(*args, *sep, *opts, "MODEL.ROI_HEADS.NUM_CLASSES", "2", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Dataset 'my_good'" in result.stdout and "1 of 1 dataset(s) OK" in result.stdout
        assert "csgr_shapes" not in result.stdout and not datasets_root.exists()
    odd = _tool(*args, "DATASETS.TRAIN", env=env)
    assert odd.returncode == 2 and "KEY VALUE pairs" in odd.stderr


@pytest.mark.parametrize("arch", ["GeneralizedRCNN", "RetinaNet"])
@pytest.mark.parametrize("distilled", [False, True])
def test_too_few_classes_refused_before_training(tmp_path, restore_catalogs, arch, distilled):
    """NUM_CLASSES below the dataset's class count would train the last classes as background:
    refused for the training set (its ids) and the test sets, naming the key and the dataset."""
    cats = [{"id": i + 1, "name": n} for i, n in enumerate("abc")]
    name, _ = _coco(tmp_path, f"test_check_classes_{arch}_{distilled}", cats, [1, 2, 3])
    cfg = tiny_cfg(arch, num_classes=2)
    add_reliability_config(cfg)
    if distilled:  # a Distiller config: the student's key
        cfg.MODEL.META_ARCHITECTURE = "Distiller"
        cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (name,), (name,)
    key = "MODEL.RETINANET.NUM_CLASSES" if arch == "RetinaNet" else "MODEL.ROI_HEADS.NUM_CLASSES"
    expected = f"{key} is 2 but dataset '{name}' (DATASETS.TRAIN) has 3 classes"
    with pytest.raises(ClassCountError, match=re.escape(expected)):
        Trainer.build_train_loader(cfg)
    with pytest.raises(ClassCountError, match=re.escape(f"'{name}' (DATASETS.TEST) has 3")):
        check_before_training(cfg)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = cfg.MODEL.RETINANET.NUM_CLASSES = 3
    Trainer.build_train_loader(cfg)
    check_before_training(cfg)


def test_too_few_classes_by_category_ids(restore_catalogs):
    """A dataset registered without thing_classes is checked by its category ids."""
    DatasetCatalog.register("test_check_ids_only", lambda: [])
    cfg = tiny_cfg(num_classes=2)
    dicts = [{"annotations": [{"category_id": 0}, {"category_id": 4}]}]
    with pytest.raises(ClassCountError, match=r"use category ids \[4\] \(ids must be in \[0, 2\)"):
        check_num_classes(cfg, ["test_check_ids_only"], "DATASETS.TRAIN", dicts)


def test_empty_test_image_fails_before_training(tmp_path, restore_catalogs):
    """A 0-byte image of a test set is named before the first iteration (not after training,
    when the evaluation reads it); of the training set too."""
    name, _ = _coco(tmp_path, "test_check_empty_image", [{"id": 1, "name": "a"}], [1])
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    with pytest.raises(DatasetFileError, match=r"a\.jpg \(empty file\)"):
        check_before_training(_train_cfg(name, [name]))
    with pytest.raises(MissingImageError, match=r"a\.jpg' is empty"):
        Trainer.build_train_loader(_train_cfg(name))
