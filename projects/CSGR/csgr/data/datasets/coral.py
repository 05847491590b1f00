"""``coral_train``, ``coral_val``, ``coral_choice``, ``coral_test``: real underwater photographs,
tiled from one orthomosaic.

Source: the sdist of ``yolo-tiling==0.0.9`` (MIT license, Jordan Pierce), ``tests/detection``:
one 3175x3176 RGB coral-reef orthomosaic with 308 boxes in YOLO format, 4 classes. The sdist
is fetched with ``pip download`` the first time a coral dataset is loaded; the tiles are then
built into ``$DETECTRON2_DATASETS/coral`` (atomically, under a file lock)::

    .downloads/yolo_tiling-0.0.9.tar.gz     the sdist, kept
    coral/build.json                        builder version and parameters
    coral/LICENSE                           the source's license
    coral/annotations/instances_{train,val,choice,test}.json   COCO, category ids 1..4
    coral/{train,val,choice,test}/<y>_<x>.jpg   tiles named by their origin in the orthomosaic

Val is the top quarter of the rows and train the rest (``coral_tiles.split_regions``), so no
val tile shares a pixel with a train tile; a box is kept in a tile (clipped) when at least half
of it is inside, and marked crowd (ignored) otherwise. ``coral_choice`` and ``coral_test`` cut
val's rows into four vertical strips and take every other one (``coral_tiles.interleaved_strips``;
four is the fewest that puts every class in both), tiled with val's stride: a setting is chosen
on one and reported on the other; neither shares a pixel with the other or with train.
"""

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import portalocker
from PIL import Image

from .catalog_utils import datasets_root, load_coco_checked, register_generated_splits
from .coral_tiles import (
    boxes_in_tile,
    interleaved_strips,
    read_yolo_boxes,
    region_tiles,
    split_regions,
)

__all__ = ["CORAL_CATEGORIES", "DEFAULT_CORAL_PARAMS", "build_coral_dataset", "ensure_coral"]

logger = logging.getLogger(__name__)

CORAL_DIRNAME = "coral"
CORAL_SPLITS = {
    "coral_train": "train",
    "coral_val": "val",
    "coral_choice": "choice",
    "coral_test": "test",
}
CORAL_SDIST = ("yolo-tiling", "0.0.9")
_MEMBERS = {
    "image": "tests/detection/train/images/VOS_RGB.png",
    "labels": "tests/detection/train/labels/VOS_RGB.txt",
    "license": "LICENSE",
}
CORAL_CATEGORIES = [
    {"id": 1, "name": "Montipora_plate/flabellata"},
    {"id": 2, "name": "Pocillopora"},
    {"id": 3, "name": "Porite_massive"},
    {"id": 4, "name": "Montipora_crust/patula"},
]
BUILDER_VERSION = 2
# tile side (px), train/val tile strides (px), val share of the rows, min share of a box inside,
# strips of val's rows dealt out to choice and test
DEFAULT_CORAL_PARAMS = {
    "tile": 512,
    "train_stride": 256,
    "val_stride": 384,
    "val_fraction": 0.25,
    "min_inside": 0.5,
    "strips": 4,
}


def fetch_coral_source(download_dir: str) -> dict:
    """Extract the orthomosaic, its labels and license from the sdist (downloaded if missing).

    Returns:
        dict: paths by ``_MEMBERS`` key, under ``download_dir``.
    """
    name, version = CORAL_SDIST
    out = os.path.join(download_dir, f"{name.replace('-', '_')}-{version}")
    paths = {k: os.path.join(out, os.path.basename(m)) for k, m in _MEMBERS.items()}
    if all(os.path.isfile(p) for p in paths.values()):
        return paths
    os.makedirs(download_dir, exist_ok=True)
    sdists = glob.glob(os.path.join(download_dir, f"{name.replace('-', '_')}-{version}.tar.gz"))
    if not sdists:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--disable-pip-version-check", "-q", "-d", download_dir, f"{name}=={version}"]
        logger.info(f"Downloading the coral source: {' '.join(cmd)}")
        result = subprocess.run(cmd, capture_output=True, text=True)
        sdists = glob.glob(os.path.join(download_dir, f"{name.replace('-', '_')}-{version}.tar.gz"))
        if result.returncode != 0 or not sdists:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}); the coral dataset is built "
                f"from that sdist. pip said:\n{result.stderr[-2000:]}"
            )
    os.makedirs(out, exist_ok=True)
    with tarfile.open(sdists[0]) as tar:
        root = tar.getnames()[0].split("/")[0]
        for key, member in _MEMBERS.items():
            with tar.extractfile(f"{root}/{member}") as src, open(paths[key], "wb") as dst:
                dst.write(src.read())
    return paths


def _write_split(image: Image.Image, classes, boxes, tiles, params, out_dir, split) -> dict:
    coco = {"images": [], "annotations": [], "categories": CORAL_CATEGORIES}
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    for tile in tiles:
        x0, y0, x1, y1 = tile
        file_name = f"{y0:04d}_{x0:04d}.jpg"
        image.crop(tile).save(os.path.join(out_dir, split, file_name), quality=95)
        image_id = len(coco["images"]) + 1
        coco["images"].append(
            {"id": image_id, "file_name": file_name, "width": x1 - x0, "height": y1 - y0}
        )
        idx, clipped, crowd = boxes_in_tile(boxes, tile, params["min_inside"])
        for i, (bx0, by0, bx1, by1), is_crowd in zip(idx, clipped.tolist(), crowd.tolist()):
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": int(classes[i]) + 1,
                    "bbox": [bx0, by0, bx1 - bx0, by1 - by0],
                    "area": (bx1 - bx0) * (by1 - by0),
                    "iscrowd": int(is_crowd),
                }
            )
    with open(os.path.join(out_dir, "annotations", f"instances_{split}.json"), "w") as f:
        json.dump(coco, f)
    return {"images": len(coco["images"]), "boxes": len(coco["annotations"])}


def build_coral_dataset(image_path: str, labels_path: str, output_dir: str, **params) -> dict:
    """Tile ``image_path`` (labels in YOLO format) into the four splits in ``output_dir``.

    Choice and test are alternate strips of val's region (``strips`` of them), tiled with val's
    stride.

    Args:
        params: overrides of ``DEFAULT_CORAL_PARAMS``.

    Returns:
        dict: number of images and boxes per split.
    """
    params = {**DEFAULT_CORAL_PARAMS, **params}
    image = Image.open(image_path).convert("RGB")
    classes, boxes = read_yolo_boxes(labels_path, *image.size)
    if classes.size and classes.max() >= len(CORAL_CATEGORIES):
        raise ValueError(f"{labels_path}: class {classes.max()} >= {len(CORAL_CATEGORIES)}")
    train_region, val_region = split_regions(*image.size, params["val_fraction"])
    choice_strips, test_strips = interleaved_strips(val_region, params["strips"])
    os.makedirs(os.path.join(output_dir, "annotations"), exist_ok=True)
    stats = {}
    for split, regions, stride in (
        ("train", [train_region], params["train_stride"]),
        ("val", [val_region], params["val_stride"]),
        ("choice", choice_strips, params["val_stride"]),
        ("test", test_strips, params["val_stride"]),
    ):
        tiles = [t for region in regions for t in region_tiles(region, params["tile"], stride)]
        stats[split] = _write_split(image, classes, boxes, tiles, params, output_dir, split)
    return stats


def _is_current(output_dir: str) -> bool:
    path = os.path.join(output_dir, "build.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        stamp = json.load(f)
    return stamp.get("builder_version") == BUILDER_VERSION


def ensure_coral(root: str = None) -> str:
    """Build ``<root>/coral`` with ``DEFAULT_CORAL_PARAMS`` unless a current build is there.

    Returns:
        str: the dataset folder.
    """
    root = root or datasets_root()
    output_dir = os.path.join(root, CORAL_DIRNAME)
    if _is_current(output_dir):
        return output_dir
    os.makedirs(root, exist_ok=True)
    with portalocker.Lock(os.path.join(root, f".{CORAL_DIRNAME}.lock"), "a", timeout=1800):
        if _is_current(output_dir):
            return output_dir
        source = fetch_coral_source(os.path.join(root, ".downloads"))
        tmp = tempfile.mkdtemp(prefix=f".{CORAL_DIRNAME}.tmp-", dir=root)
        try:
            stats = build_coral_dataset(source["image"], source["labels"], tmp)
            shutil.copy(source["license"], os.path.join(tmp, "LICENSE"))
            stamp = {"builder_version": BUILDER_VERSION, "params": DEFAULT_CORAL_PARAMS}
            stamp.update(source=f"{CORAL_SDIST[0]}=={CORAL_SDIST[1]}", stats=stats)
            with open(os.path.join(tmp, "build.json"), "w") as f:
                json.dump(stamp, f, indent=1)
            if os.path.exists(output_dir):
                shutil.rmtree(output_dir)
            os.replace(tmp, output_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info(f"Built the coral dataset in {output_dir}: {stats}")
    return output_dir


def load_coral(dataset_name: str):
    """Load ``coral_train``, ``coral_val``, ``coral_choice`` or ``coral_test``, building the tiles
    first if needed."""
    split = CORAL_SPLITS[dataset_name]
    output_dir = ensure_coral()
    json_file = os.path.join(output_dir, "annotations", f"instances_{split}.json")
    return load_coco_checked(dataset_name, json_file, os.path.join(output_dir, split))


def register_all_coral() -> None:
    """Register ``coral_{train,val,choice,test}``; touches no file (building happens on load)."""
    register_generated_splits(CORAL_SPLITS, load_coral, CORAL_CATEGORIES, CORAL_DIRNAME)
