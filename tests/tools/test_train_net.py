"""tools/train_net.py end to end on the CPU: train, checkpoint, resume, evaluate (COCO and VOC)."""

import json
import math
import os
import xml.etree.ElementTree as ET

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_pascal_voc
from detectron2.engine import default_argument_parser
from tiny_models import load_tool, tiny_cfg

from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("d2datasets")
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=12, num_val=6, image_size=64)
    return root


def _run(train_net, config_file, *opts, eval_only=False, resume=False):
    argv = ["--config-file", config_file]
    argv += ["--eval-only"] if eval_only else []
    argv += ["--resume"] if resume else []
    args = default_argument_parser().parse_args(argv + [str(o) for o in opts])
    return train_net.main(args)


def _iterations(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line)["iteration"] for line in f if '"iteration"' in line]


def test_train_resume_and_coco_eval(tmp_path, shapes_root, monkeypatch, restore_catalogs):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    cfg = tiny_cfg(num_classes=len(SHAPES_CATEGORIES))
    cfg.DATASETS.TRAIN = ("csgr_shapes_train",)
    cfg.DATASETS.TEST = ("csgr_shapes_val",)
    cfg.SOLVER.MAX_ITER = 4
    cfg.SOLVER.CHECKPOINT_PERIOD = 2
    cfg.SOLVER.WARMUP_ITERS = 1
    out = str(tmp_path / "run")
    cfg.OUTPUT_DIR = out
    config_file = str(tmp_path / "tiny.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    train_net = load_tool("train_net")

    results = _run(train_net, config_file)
    assert math.isfinite(results["bbox"]["AP"])
    assert os.path.isfile(os.path.join(out, "model_0000001.pth"))
    assert os.path.isfile(os.path.join(out, "model_final.pth"))
    with open(os.path.join(out, "last_checkpoint")) as f:
        assert f.read().strip() == "model_final.pth"

    # resume from the iteration-2 checkpoint and train to 6 iterations
    with open(os.path.join(out, "last_checkpoint"), "w") as f:
        f.write("model_0000001.pth")
    os.remove(os.path.join(out, "metrics.json"))
    _run(train_net, config_file, "SOLVER.MAX_ITER", 6, resume=True)
    with open(os.path.join(out, "log.txt")) as f:
        assert "Starting training from iteration 2" in f.read()
    assert 5 in _iterations(out)

    results = _run(
        train_net,
        config_file,
        "MODEL.WEIGHTS",
        os.path.join(out, "model_final.pth"),
        eval_only=True,
    )
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}


def _write_voc(shapes_root, voc_dir):
    """Convert the generated shapes val split to the PASCAL VOC on-disk format."""
    dicts = DatasetCatalog.get("csgr_shapes_val")
    os.makedirs(voc_dir / "Annotations")
    os.makedirs(voc_dir / "ImageSets" / "Main")
    os.symlink(os.path.dirname(dicts[0]["file_name"]), voc_dir / "JPEGImages")
    names = [c["name"] for c in SHAPES_CATEGORIES]
    ids = []
    for d in dicts:
        stem, ext = os.path.splitext(os.path.basename(d["file_name"]))
        assert ext == ".jpg"
        ids.append(stem)
        root = ET.Element("annotation")
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(d["width"])
        ET.SubElement(size, "height").text = str(d["height"])
        for a in d["annotations"]:
            x, y, w, h = a["bbox"]
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = names[a["category_id"]]
            ET.SubElement(obj, "pose").text = "Unspecified"
            ET.SubElement(obj, "truncated").text = "0"
            ET.SubElement(obj, "difficult").text = "0"
            box = ET.SubElement(obj, "bndbox")
            for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (x + 1, y + 1, x + w, y + h)):
                ET.SubElement(box, tag).text = str(round(v))
        ET.ElementTree(root).write(voc_dir / "Annotations" / f"{stem}.xml")
    (voc_dir / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")
    return names


def test_eval_with_voc_evaluator(tmp_path, shapes_root, monkeypatch, restore_catalogs):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    names = _write_voc(shapes_root, tmp_path / "VOC2007")
    register_pascal_voc("test_shapes_voc_2007_test", str(tmp_path / "VOC2007"), "test", 2007, names)
    MetadataCatalog.get("test_shapes_voc_2007_test").evaluator_type = "pascal_voc"
    cfg = tiny_cfg(num_classes=len(names))
    cfg.DATASETS.TEST = ("test_shapes_voc_2007_test",)
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    config_file = str(tmp_path / "tiny.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    results = _run(load_tool("train_net"), config_file, eval_only=True)
    assert set(results["bbox"]) == {"AP", "AP50", "AP75"}
    assert all(math.isfinite(v) for v in results["bbox"].values())
