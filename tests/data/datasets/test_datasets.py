"""Dataset registrations (SODA10M, PASCAL VOC, MiniCOCO) and the MiniCOCO sampler.

Each catalog loads small fixtures written here in the dataset's exact on-disk layout, under a
temporary $DETECTRON2_DATASETS.
"""

import json
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
from detectron2.data.datasets.pascal_voc import CLASS_NAMES as VOC_CLASSES
from detectron2.structures import BoxMode
from tiny_models import load_script

import csgr  # noqa: F401  registers the datasets
from csgr.data.datasets import builtin
from csgr.data.datasets.minicoco_sampling import sample_balanced_subset, subset_statistics
from csgr.data.datasets.soda10m import SODA10M_CATEGORIES

SODA_NAMES = ["Pedestrian", "Cyclist", "Car", "Truck", "Tram", "Tricycle"]
COCO_THINGS = [c for c in COCO_CATEGORIES if c["isthing"]]
# The layout of the official VOC xml files (fields Detectron2 does not read trimmed).
VOC_XML = """<annotation>
\t<folder>VOC{year}</folder>
\t<filename>{fid}.jpg</filename>
\t<size>
\t\t<width>200</width>
\t\t<height>100</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>{objects}
</annotation>
"""
VOC_OBJECT = """
\t<object>
\t\t<name>{}</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>{}</xmin>
\t\t\t<ymin>{}</ymin>
\t\t\t<xmax>{}</xmax>
\t\t\t<ymax>{}</ymax>
\t\t</bndbox>
\t</object>"""


@pytest.fixture
def root(tmp_path, monkeypatch, restore_catalogs):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    return tmp_path


def _write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def _coco(categories, anns, num_images=2):
    images = [
        {"id": i, "file_name": f"{i:06d}.jpg", "height": 100, "width": 200}
        for i in range(1, num_images + 1)
    ]
    annotations = [
        {"id": k + 1, "image_id": img, "category_id": cat, "bbox": box, "area": 1.0, "iscrowd": 0}
        for k, (img, cat, box) in enumerate(anns)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_soda10m(root, split, categories=None):
    labeled = os.path.join(root, "SODA10M", "SSLAD-2D", "labeled")
    # listed out of id order on purpose: ids, not list order, define the contiguous ids
    categories = categories or [{"id": i, "name": n} for i, n in reversed(SODA10M_CATEGORIES)]
    anns = [(1, 1, [10.0, 20.0, 30.0, 40.0]), (1, 6, [0.5, 1.5, 2.0, 3.0]), (2, 3, [5, 5, 10, 10])]
    _write_json(
        os.path.join(labeled, "annotations", f"instance_{split}.json"), _coco(categories, anns)
    )
    os.makedirs(os.path.join(labeled, split), exist_ok=True)
    return labeled


def write_voc(root, year, split, ids=("000001", "000002")):
    base = os.path.join(root, f"VOC{year}")
    for sub in ("Annotations", os.path.join("ImageSets", "Main"), "JPEGImages"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    with open(os.path.join(base, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    objects = {
        "000001": [("dog", 1, 2, 50, 60), ("person", 10, 20, 30, 40)],
        "000002": [("tvmonitor", 5, 6, 7, 8)],
    }
    for fid in ids:
        objs = "".join(VOC_OBJECT.format(*o) for o in objects.get(fid, []))
        with open(os.path.join(base, "Annotations", f"{fid}.xml"), "w") as f:
            f.write(VOC_XML.format(year=year, fid=fid, objects=objs))
    return base


def write_coco(root, json_name, image_dir):
    cats = [{"id": c["id"], "name": c["name"], "supercategory": "x"} for c in COCO_THINGS]
    anns = [(1, 1, [1.0, 2.0, 3.0, 4.0]), (1, 90, [10, 10, 20, 30]), (2, 13, [0, 0, 5, 5])]
    _write_json(os.path.join(root, "coco", "annotations", json_name), _coco(cats, anns))
    os.makedirs(os.path.join(root, "coco", image_dir), exist_ok=True)


def test_names_and_metadata_are_registered():
    names = set(DatasetCatalog.list())
    expected = {"soda10m_train", "soda10m_val", "soda10m_test", "minicoco_train", "coco_2017_val"}
    expected |= {"voc_2007_trainval", "voc_2012_trainval", "voc_2007_test"}
    assert expected <= names
    for name in ("soda10m_train", "soda10m_val", "soda10m_test"):
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == SODA_NAMES and meta.evaluator_type == "coco"
    meta = MetadataCatalog.get("minicoco_train")
    assert meta.thing_classes == [c["name"] for c in COCO_THINGS] and meta.evaluator_type == "coco"
    assert meta.thing_dataset_id_to_contiguous_id[90] == 79
    for name in ("voc_2007_trainval", "voc_2012_trainval", "voc_2007_test"):
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "pascal_voc" and meta.thing_classes == list(VOC_CLASSES)


def test_registration_is_idempotent_and_reads_no_file(root, monkeypatch):
    missing = root / "not_there"
    monkeypatch.setenv("DETECTRON2_DATASETS", str(missing))
    builtin.register_all()  # names already registered: must neither fail nor duplicate
    for name in ("soda10m_train", "minicoco_train", "csgr_shapes_train"):
        DatasetCatalog.remove(name)
    builtin.register_all()  # fresh registration against a root that does not exist
    assert {"soda10m_train", "minicoco_train", "csgr_shapes_train"} <= set(DatasetCatalog.list())
    assert not missing.exists()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_soda10m_loads_with_contiguous_ids(root, split):
    labeled = write_soda10m(root, split)
    dicts = DatasetCatalog.get(f"soda10m_{split}")
    assert [d["image_id"] for d in dicts] == [1, 2]
    assert dicts[0]["file_name"] == os.path.join(labeled, split, "000001.jpg")
    first = dicts[0]["annotations"]
    assert [a["category_id"] for a in first] == [0, 5]  # Pedestrian, Tricycle
    assert dicts[1]["annotations"][0]["category_id"] == 2  # Car
    assert first[0]["bbox"] == [10.0, 20.0, 30.0, 40.0]
    assert first[0]["bbox_mode"] == BoxMode.XYWH_ABS
    xyxy = BoxMode.convert(first[0]["bbox"], first[0]["bbox_mode"], BoxMode.XYXY_ABS)
    assert list(xyxy) == [10.0, 20.0, 40.0, 60.0]
    meta = MetadataCatalog.get(f"soda10m_{split}")
    assert meta.json_file == os.path.join(labeled, "annotations", f"instance_{split}.json")


def test_soda10m_wrong_categories_name_the_file(root):
    wrong = [{"id": i, "name": n.lower()} for i, n in SODA10M_CATEGORIES]
    labeled = write_soda10m(root, "val", categories=wrong)
    with pytest.raises(ValueError) as err:
        DatasetCatalog.get("soda10m_val")
    assert os.path.join(labeled, "annotations", "instance_val.json") in str(err.value)


def test_voc_loads_from_root_at_load_time(root):
    base = write_voc(root, 2007, "test")
    dicts = DatasetCatalog.get("voc_2007_test")
    assert [d["image_id"] for d in dicts] == ["000001", "000002"]
    assert dicts[0]["file_name"] == os.path.join(base, "JPEGImages", "000001.jpg")
    dog, person = dicts[0]["annotations"]
    assert dog["category_id"] == VOC_CLASSES.index("dog")
    assert person["category_id"] == VOC_CLASSES.index("person")
    # 1-based inclusive VOC pixel indices -> XYXY_ABS coordinates, as Detectron2 does
    assert dog["bbox"] == [0.0, 1.0, 50.0, 60.0] and dog["bbox_mode"] == BoxMode.XYXY_ABS
    assert dicts[1]["annotations"][0]["category_id"] == VOC_CLASSES.index("tvmonitor")
    # PascalVOCDetectionEvaluator re-reads the xml files from metadata.dirname
    assert MetadataCatalog.get("voc_2007_test").dirname == base


def test_voc_07_plus_12_combine(root):
    write_voc(root, 2007, "trainval")
    write_voc(root, 2012, "trainval", ids=("2012_000001", "2012_000002", "2012_000003"))
    dicts = get_detection_dataset_dicts(
        ("voc_2007_trainval", "voc_2012_trainval"), filter_empty=False
    )
    assert len(dicts) == 5
    assert {os.path.basename(os.path.dirname(os.path.dirname(d["file_name"]))) for d in dicts} == {
        "VOC2007",
        "VOC2012",
    }


def test_minicoco_loads_with_coco_ids(root):
    write_coco(root, "instances_train2017_minicoco.json", "train2017")
    dicts = DatasetCatalog.get("minicoco_train")
    assert dicts[0]["file_name"] == os.path.join(root, "coco", "train2017", "000001.jpg")
    assert [a["category_id"] for a in dicts[0]["annotations"]] == [0, 79]  # person, toothbrush
    assert dicts[1]["annotations"][0]["category_id"] == 11  # stop sign (json id 13)
    ann = dicts[0]["annotations"][1]
    assert ann["bbox"] == [10, 10, 20, 30] and ann["bbox_mode"] == BoxMode.XYWH_ABS
    assert list(BoxMode.convert(ann["bbox"], ann["bbox_mode"], BoxMode.XYXY_ABS)) == [
        10,
        10,
        30,
        40,
    ]


def test_coco_2017_val_follows_root(root):
    write_coco(root, "instances_val2017.json", "val2017")
    dicts = DatasetCatalog.get("coco_2017_val")
    assert dicts[0]["file_name"] == os.path.join(root, "coco", "val2017", "000001.jpg")
    meta = MetadataCatalog.get("coco_2017_val")
    assert meta.json_file == os.path.join(root, "coco", "annotations", "instances_val2017.json")
    assert meta.evaluator_type == "coco"


def _soda(root):
    write_soda10m(root, "train")
    return "soda10m_train", os.path.join(root, "SODA10M", "SSLAD-2D", "labeled")


def _mini(root):
    write_coco(root, "instances_train2017_minicoco.json", "train2017")
    return "minicoco_train", os.path.join(root, "coco")


def _voc(root):
    write_voc(root, 2012, "trainval")
    return "voc_2012_trainval", os.path.join(root, "VOC2012")


@pytest.mark.parametrize(
    "make, relpath",
    [
        (_soda, "annotations/instance_train.json"),
        (_soda, "train"),
        (_mini, "annotations/instances_train2017_minicoco.json"),
        (_mini, "train2017"),
        (_voc, "ImageSets/Main/trainval.txt"),
        (_voc, "Annotations"),
        (_voc, "JPEGImages"),
    ],
)
def test_missing_path_is_named(root, make, relpath):
    name, base = make(root)
    path = os.path.join(base, relpath)
    if os.path.isdir(path):
        for f in os.listdir(path):
            os.remove(os.path.join(path, f))
        os.rmdir(path)
    else:
        os.remove(path)
    with pytest.raises(FileNotFoundError) as err:
        DatasetCatalog.get(name)
    assert path in str(err.value) and "datasets/README.md" in str(err.value)


def test_missing_dataset_root_is_named(root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        DatasetCatalog.get("soda10m_val")


# ---------------------------------------------------------------- MiniCOCO sampler


def synthetic_coco(num_images=600, seed=0):
    """A COCO json with skewed class frequencies, areas and instances per image."""
    rng = np.random.default_rng(seed)
    cat_ids = [1, 3, 7, 8, 20, 42]
    anns = []
    for img in range(1, num_images + 1):
        for _ in range(int(rng.integers(0, 9))):
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            cat = int(rng.choice(cat_ids, p=[0.45, 0.25, 0.12, 0.1, 0.05, 0.03]))
            anns.append((img, cat, [1.0, 2.0, side, side]))
    coco = _coco([{"id": c, "name": f"c{c}"} for c in cat_ids], anns, num_images)
    for ann in coco["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3] * 0.7
        ann["iscrowd"] = int(rng.random() < 0.02)
    return dict(coco, info={"year": 2017}, licenses=[])


def test_balanced_subset_is_a_valid_deterministic_subset():
    coco = synthetic_coco()
    sub = sample_balanced_subset(coco, 120, seed=3)
    assert sub == sample_balanced_subset(coco, 120, seed=3)
    other = sample_balanced_subset(coco, 120, seed=4)
    assert {i["id"] for i in other["images"]} != {i["id"] for i in sub["images"]}

    ids = [i["id"] for i in sub["images"]]
    assert len(ids) == 120 and len(set(ids)) == 120 and ids == sorted(ids)
    assert all(i in coco["images"] for i in sub["images"])
    expected = [a for a in coco["annotations"] if a["image_id"] in set(ids)]
    assert sub["annotations"] == expected
    assert sub["categories"] == coco["categories"] and sub["licenses"] == coco["licenses"]
    json.dumps(sub)  # serialisable


def test_balanced_subset_keeps_class_and_size_proportions():
    coco = synthetic_coco()
    full = subset_statistics(coco)
    for seed in range(3):
        sub = subset_statistics(sample_balanced_subset(coco, 120, seed=seed))
        assert np.abs(sub["class_fraction"] - full["class_fraction"]).max() < 0.01
        assert np.abs(sub["size_fraction"] - full["size_fraction"]).max() < 0.01
        assert abs(sub["instances_per_image"] / full["instances_per_image"] - 1) < 0.03
    with pytest.raises(ValueError, match="num_images"):
        sample_balanced_subset(coco, len(coco["images"]) + 1)


def test_prepare_minicoco_cli(tmp_path):
    script = load_script(os.path.join("datasets", "prepare_minicoco.py"))
    coco = synthetic_coco(200, seed=1)
    _write_json(str(tmp_path / "coco" / "annotations" / "instances_train2017.json"), coco)
    out = script.main(["--coco-root", str(tmp_path / "coco"), "--num-images", "50", "--seed", "1"])
    assert out == str(tmp_path / "coco" / "annotations" / "instances_train2017_minicoco.json")
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(sample_balanced_subset(coco, 50, seed=1)))
    with pytest.raises(SystemExit, match="instances_train2017.json"):
        script.main(["--coco-root", str(tmp_path / "nowhere")])
