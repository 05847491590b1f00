"""The offline shapes dataset: generator determinism and content, lazy catalog generation,
concurrency, the CLI, and Detectron2's mapper and COCO evaluator on it."""

import json
import multiprocessing as mp
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import Boxes, BoxMode, Instances
from pycocotools import mask as mask_util
from tiny_models import load_script

import csgr  # noqa: F401  registers the datasets
from csgr.data.datasets import SHAPES_CATEGORIES, ensure_shapes_dataset, generate_shapes_dataset
from csgr.data.datasets import shapes as shapes_module

TINY = {"seed": 7, "num_train": 6, "num_val": 4, "image_size": 96}


def _files(folder):
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(dirpath, n)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def _load(folder, split):
    with open(os.path.join(folder, "annotations", f"instances_{split}.json")) as f:
        return json.load(f)


@pytest.fixture
def root(tmp_path, monkeypatch, restore_catalogs):
    """A temporary $DETECTRON2_DATASETS and tiny defaults for lazy generation."""
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    monkeypatch.setattr(shapes_module, "DEFAULT_SHAPES_PARAMS", dict(TINY))
    return tmp_path


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    generate_shapes_dataset(a, **TINY)
    generate_shapes_dataset(b, **TINY)
    generate_shapes_dataset(c, **dict(TINY, seed=8))
    files_a = _files(a)
    assert len(files_a) == 3 + TINY["num_train"] + TINY["num_val"]  # 2 jsons + generator.json
    assert files_a == _files(b)
    files_c = _files(c)
    assert files_c.keys() == files_a.keys()
    assert all(files_c[k] != files_a[k] for k in files_a if k.endswith(".jpg"))


def test_smaller_dataset_is_a_prefix(tmp_path):
    small, big = str(tmp_path / "small"), str(tmp_path / "big")
    generate_shapes_dataset(small, **dict(TINY, num_train=3), image_format="png")
    generate_shapes_dataset(big, **TINY, image_format="png")
    files_small, files_big = _files(small), _files(big)
    assert all(files_big[k] == v for k, v in files_small.items() if k.endswith(".png"))
    assert _load(small, "val") == _load(big, "val")


def test_content_covers_classes_sizes_and_occlusion(tmp_path):
    size = 128
    generate_shapes_dataset(
        str(tmp_path), seed=0, num_train=60, num_val=1, image_size=size, overwrite=True
    )
    coco = _load(str(tmp_path), "train")
    assert [c["id"] for c in coco["categories"]] == list(range(1, len(SHAPES_CATEGORIES) + 1))
    assert len(coco["categories"]) >= 6
    anns = coco["annotations"]
    assert {a["category_id"] for a in anns} == {c["id"] for c in coco["categories"]}
    per_image = np.bincount([a["image_id"] for a in anns], minlength=61)[1:]
    assert per_image.max() <= 8 and per_image.mean() >= 2

    extents = np.array([max(a["bbox"][2:]) for a in anns])
    assert extents.min() <= 12 and extents.max() >= 0.35 * size  # ~8 px to ~half the image
    assert np.mean(extents < 32) > 0.2 and np.mean(extents >= 32) > 0.2
    for a in anns:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= size and y + h <= size and w > 0 and h > 0
        rle = dict(a["segmentation"], counts=a["segmentation"]["counts"].encode())
        assert a["area"] == int(mask_util.area(rle))
        assert list(mask_util.toBbox(rle)) == a["bbox"]  # box of the visible pixels
        assert a["iscrowd"] == 0

    # occlusion: in some images, boxes overlap
    overlaps = 0
    for img in coco["images"]:
        boxes = [a["bbox"] for a in anns if a["image_id"] == img["id"]]
        xyxy = BoxMode.convert(np.array(boxes, dtype=float), BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
        for i in range(len(xyxy)):
            for j in range(i):
                ix = min(xyxy[i, 2], xyxy[j, 2]) - max(xyxy[i, 0], xyxy[j, 0])
                iy = min(xyxy[i, 3], xyxy[j, 3]) - max(xyxy[i, 1], xyxy[j, 1])
                overlaps += ix > 0 and iy > 0
    assert overlaps >= 5


def test_generator_params_are_stamped_and_respected(tmp_path):
    params = dict(TINY, num_train=12, image_size=128, min_extent=16.0, max_objects=3)
    generate_shapes_dataset(str(tmp_path), **params, max_clutter=0, overwrite=True)
    with open(tmp_path / shapes_module.PARAMS_FILE) as f:
        stamp = json.load(f)
    assert stamp == {
        "generator_version": shapes_module.GENERATOR_VERSION,
        "params": dict(params, max_clutter=0),
    }
    anns = _load(str(tmp_path), "train")["annotations"]
    per_image = np.bincount([a["image_id"] for a in anns])[1:]
    assert per_image.max() <= 3
    # boxes are of the visible part (>= 30% of an object of extent >= 16 px)
    assert min(max(a["bbox"][2:]) for a in anns) >= 5


def test_outdated_folder_is_generated_again_current_one_kept(root):
    folder = root / "csgr_shapes"
    generate_shapes_dataset(str(folder), **dict(TINY, num_train=2))
    ensure_shapes_dataset()
    assert len(_load(str(folder), "train")["images"]) == 2  # this version, other params: kept
    os.remove(folder / shapes_module.PARAMS_FILE)  # as written before versions were stamped
    ensure_shapes_dataset()
    assert len(_load(str(folder), "train")["images"]) == TINY["num_train"]  # generated again
    assert (folder / shapes_module.PARAMS_FILE).is_file()


def test_existing_folder_needs_overwrite(tmp_path):
    out = str(tmp_path / "shapes")
    generate_shapes_dataset(out, **TINY)
    with pytest.raises(FileExistsError, match="shapes"):
        generate_shapes_dataset(out, **TINY)
    generate_shapes_dataset(out, **dict(TINY, num_train=2), overwrite=True)
    assert len(_load(out, "train")["images"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["shapes"]  # no temporary folder left behind


def test_catalog_generates_lazily_and_loads(root):
    folder = root / "csgr_shapes"
    assert not folder.exists()  # registration did not generate anything
    train = DatasetCatalog.get("csgr_shapes_train")
    assert folder.is_dir() and len(train) == TINY["num_train"]
    stamp = os.path.getmtime(folder / "annotations" / "instances_train.json")
    val = DatasetCatalog.get("csgr_shapes_val")
    assert len(val) == TINY["num_val"]
    DatasetCatalog.get("csgr_shapes_train")
    assert os.path.getmtime(folder / "annotations" / "instances_train.json") == stamp  # reused

    coco = _load(str(folder), "train")
    first = coco["annotations"][0]
    rec = train[0]
    assert rec["file_name"] == str(folder / "train" / "000000.jpg") and os.path.isfile(
        rec["file_name"]
    )
    assert rec["height"] == rec["width"] == TINY["image_size"]
    ann = rec["annotations"][0]
    assert ann["category_id"] == first["category_id"] - 1  # json ids 1..K -> 0..K-1
    assert ann["bbox"] == first["bbox"] and ann["bbox_mode"] == BoxMode.XYWH_ABS
    meta = MetadataCatalog.get("csgr_shapes_train")
    assert meta.evaluator_type == "coco"
    assert meta.thing_classes == [c["name"] for c in SHAPES_CATEGORIES]
    assert meta.json_file == str(folder / "annotations" / "instances_train.json")

    # Detectron2's mapper turns the XYWH boxes into XYXY instances
    mapper = DatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    out = mapper(rec)
    assert tuple(out["image"].shape) == (3, TINY["image_size"], TINY["image_size"])
    expected = [
        BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in rec["annotations"]
    ]
    assert torch.allclose(
        out["instances"].gt_boxes.tensor, torch.tensor(expected, dtype=torch.float32)
    )
    assert out["instances"].gt_classes.tolist() == [a["category_id"] for a in rec["annotations"]]


def _ensure(folder):
    ensure_shapes_dataset(folder)


def test_concurrent_processes_generate_once(root):
    folder = str(root / "csgr_shapes")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_ensure, args=(folder,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(os.listdir(root)) == [".csgr_shapes.lock", "csgr_shapes"]
    assert len(_load(folder, "train")["images"]) == TINY["num_train"]


def _predictions(dicts, shift_class):
    inputs, outputs = [], []
    num_classes = len(SHAPES_CATEGORIES)
    for d in dicts:
        boxes = [
            BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in d["annotations"]
        ]
        inst = Instances((d["height"], d["width"]))
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(len(boxes))
        classes = [(a["category_id"] + shift_class) % num_classes for a in d["annotations"]]
        inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
        inputs.append({"image_id": d["image_id"]})
        outputs.append({"instances": inst})
    return inputs, outputs


@pytest.mark.parametrize("shift_class, expected_ap", [(0, 100.0), (1, 0.0)])
def test_coco_evaluator_scores_ground_truth(root, tmp_path, shift_class, expected_ap):
    dicts = DatasetCatalog.get("csgr_shapes_val")
    evaluator = COCOEvaluator(
        "csgr_shapes_val",
        tasks=("bbox",),
        distributed=False,
        output_dir=str(tmp_path / "eval"),
        use_fast_impl=False,
    )
    evaluator.reset()
    evaluator.process(*_predictions(dicts, shift_class))
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(expected_ap, abs=1e-6)


def test_cli_generates_and_refuses_to_overwrite(tmp_path):
    script = load_script(os.path.join("datasets", "generate_shapes.py"))
    args = [
        "--root",
        str(tmp_path),
        "--num-train",
        "2",
        "--num-val",
        "1",
        "--size",
        "64",
        "--seed",
        "3",
    ]
    stats = script.main(args)
    assert stats["train_images"] == 2 and stats["val_images"] == 1
    coco = _load(str(tmp_path / "csgr_shapes"), "val")
    assert coco["info"]["seed"] == 3 and coco["images"][0]["width"] == 64
    with pytest.raises(SystemExit, match="--force"):
        script.main(args)
    script.main(args + ["--force", "--format", "png"])
    assert os.listdir(tmp_path / "csgr_shapes" / "val") == ["000000.png"]


def test_test_split_is_added_with_the_folder_params_and_train_val_kept(root):
    folder = root / "csgr_shapes"
    params = dict(TINY, num_val=3, image_size=64, min_extent=12.0, max_objects=3)
    generate_shapes_dataset(str(folder), **params)
    before = _files(folder)
    test = DatasetCatalog.get("csgr_shapes_test")
    assert len(test) == 3  # as many as val, drawn with the folder's parameters
    assert all(r["height"] == r["width"] == 64 for r in test)
    after = _files(folder)
    assert {k: v for k, v in after.items() if k in before} == before  # train and val untouched
    added = sorted(set(after) - set(before))
    assert added == ["annotations/instances_test.json"] + [f"test/{i:06d}.jpg" for i in range(3)]
    assert not [n for n in os.listdir(folder) if n.startswith(".")]  # no temporary folder left
    val = _load(str(folder), "val")
    assert [a["bbox"] for a in _load(str(folder), "test")["annotations"]] != [
        a["bbox"] for a in val["annotations"]
    ]  # its own random stream, not a copy of val
    assert MetadataCatalog.get("csgr_shapes_test").evaluator_type == "coco"

    # the same parameters give the same bytes; a folder generated again loses its test split
    other = root / "other"
    generate_shapes_dataset(str(other), **params)
    shapes_module.ensure_shapes_test_split(str(other))
    assert _files(other) == after
    generate_shapes_dataset(str(folder), **params, overwrite=True)
    assert not (folder / "test").exists()
    DatasetCatalog.get("csgr_shapes_test")
    assert _files(folder) == after
