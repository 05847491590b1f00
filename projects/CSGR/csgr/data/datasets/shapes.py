"""The offline "shapes" dataset: generation into a folder, and the ``csgr_shapes_*`` catalogs.

Layout (``$DETECTRON2_DATASETS/csgr_shapes/`` for the registered names)::

    csgr_shapes/
        generator.json                   # generator version and parameters
        annotations/instances_{train,val}.json
        train/000000.jpg ...  val/000000.jpg ...
        annotations/instances_test.json  test/000000.jpg ...   # added on first load of the test split

``csgr_shapes_train`` and ``csgr_shapes_val`` generate the folder with
``DEFAULT_SHAPES_PARAMS`` the first time they are loaded, if it is missing; a file lock keeps
concurrent processes (e.g. DDP workers) from generating twice, and the folder appears
atomically (written to a temporary sibling, then ``os.replace``). ``datasets/generate_shapes.py``
generates it with other parameters.

``csgr_shapes_test`` is a third split, for reporting what was chosen on ``csgr_shapes_val``: the
first time it is loaded it is added to the folder, drawn with the folder's own parameters
(``generator.json``) from an independent random stream, as many images as the val split. Train and
val are left as they are, so models trained before it existed are evaluated on it as they are.
"""

import json
import logging
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional

import portalocker

from .catalog_utils import datasets_root, load_coco_checked, register_generated_splits
from .shapes_generate import GENERATOR_VERSION, SHAPES_CATEGORIES, write_split

__all__ = [
    "DEFAULT_SHAPES_PARAMS",
    "SHAPES_DIRNAME",
    "SHAPES_SPLITS",
    "generate_shapes_dataset",
    "ensure_shapes_dataset",
    "ensure_shapes_test_split",
    "load_shapes",
    "register_all_shapes",
]

logger = logging.getLogger(__name__)

SHAPES_DIRNAME = "csgr_shapes"
SHAPES_SPLITS = {
    "csgr_shapes_train": "train",
    "csgr_shapes_val": "val",
    "csgr_shapes_test": "test",
}
# What the catalogs generate when the folder is missing (the CLI's defaults too): objects of 16
# to 64 px, at most 4 an image, no clutter, so that detectors trained from scratch on a 2-core
# CPU learn within minutes. ``generate_shapes_dataset``'s own defaults draw a harder set.
DEFAULT_SHAPES_PARAMS = {
    "seed": 0,
    "num_train": 1000,
    "num_val": 200,
    "image_size": 128,
    "min_extent": 16.0,
    "max_objects": 4,
    "max_clutter": 0,
}
PARAMS_FILE = "generator.json"  # {"generator_version": int, "params": {...}} of the folder
_LOCK_TIMEOUT_S = 3600


def _is_complete(output_dir: str) -> bool:
    return all(
        os.path.isfile(os.path.join(output_dir, "annotations", f"instances_{s}.json"))
        and os.path.isdir(os.path.join(output_dir, s))
        for s in ("train", "val")
    )


def _generator_version(output_dir: str) -> int:
    """The generator version that wrote ``output_dir`` (0 for folders older than the stamp)."""
    path = os.path.join(output_dir, PARAMS_FILE)
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        return int(json.load(f).get("generator_version", 0))


def _is_current(output_dir: str) -> bool:
    return _is_complete(output_dir) and _generator_version(output_dir) == GENERATOR_VERSION


def generate_shapes_dataset(
    output_dir: str,
    seed: int = 0,
    num_train: int = 1000,
    num_val: int = 200,
    image_size: int = 160,
    overwrite: bool = False,
    **render_kwargs,
) -> Dict[str, int]:
    """
    Generate the train and val splits into ``output_dir``, atomically.

    Args:
        output_dir (str): folder to create (its parent is created if needed).
        seed (int): fixes every image and annotation.
        num_train, num_val (int): number of images per split.
        image_size (int): side of the square images, pixels.
        overwrite (bool): replace an existing ``output_dir``; otherwise it is an error.
        render_kwargs: ``image_format``, ``min_extent``, ``max_objects``, ``min_visible``.

    Returns:
        dict: ``{"train_images", "train_annotations", "val_images", "val_annotations",
        "seconds"}``.
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} already exists; pass overwrite=True (--force).")
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    start = time.perf_counter()
    stats = {}
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
    try:
        for split, num in (("train", num_train), ("val", num_val)):
            coco = write_split(tmp, split, num, seed, image_size, **render_kwargs)
            stats[f"{split}_images"] = len(coco["images"])
            stats[f"{split}_annotations"] = len(coco["annotations"])
        params = dict(
            seed=seed, num_train=num_train, num_val=num_val, image_size=image_size, **render_kwargs
        )
        with open(os.path.join(tmp, PARAMS_FILE), "w") as f:
            json.dump({"generator_version": GENERATOR_VERSION, "params": params}, f, indent=1)
        if os.path.exists(output_dir):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=parent)
            os.replace(output_dir, os.path.join(old, "data"))
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    logger.info(f"Generated the shapes dataset in {output_dir}: {stats}")
    return stats


def ensure_shapes_dataset(output_dir: Optional[str] = None) -> str:
    """
    Generate the shapes dataset with ``DEFAULT_SHAPES_PARAMS`` unless it is already there.

    A folder written by another version of the generator (or before versions were stamped) is
    generated again, with a warning; one written by this version with other parameters (e.g. by
    ``datasets/generate_shapes.py``) is kept. Safe to call from concurrent processes: one
    generates while the others wait on a lock.

    Args:
        output_dir (str): defaults to ``$DETECTRON2_DATASETS/csgr_shapes`` (read now).

    Returns:
        str: the dataset folder.
    """
    output_dir = output_dir or os.path.join(datasets_root(), SHAPES_DIRNAME)
    if _is_current(output_dir):
        return output_dir
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    lock_path = os.path.join(parent, f".{os.path.basename(output_dir)}.lock")
    with portalocker.Lock(lock_path, mode="a", timeout=_LOCK_TIMEOUT_S):
        if not _is_current(output_dir):  # another process may have generated it meanwhile
            if _is_complete(output_dir):
                logger.warning(
                    f"{output_dir} was written by shapes generator version "
                    f"{_generator_version(output_dir)}, this is version {GENERATOR_VERSION}: "
                    "generating it again."
                )
            logger.info(
                f"{output_dir} is missing or outdated: generating the shapes dataset with "
                f"{DEFAULT_SHAPES_PARAMS} (datasets/generate_shapes.py sets other parameters)."
            )
            generate_shapes_dataset(output_dir, overwrite=True, **DEFAULT_SHAPES_PARAMS)
    return output_dir


def ensure_shapes_test_split(output_dir: str) -> None:
    """
    Add the test split to a shapes folder (from :func:`ensure_shapes_dataset`) unless it is there.

    The split is drawn with the parameters of the folder's ``generator.json`` (seed, image size,
    render parameters) from its own random stream, ``num_val`` images. It is written to a
    temporary folder and moved in, images first and the annotation file last, so a present
    ``annotations/instances_test.json`` means a complete split. Safe to call from concurrent
    processes. A folder generated again (:func:`generate_shapes_dataset`) loses its test split,
    which is then drawn again with the new parameters.

    Args:
        output_dir (str): a complete shapes folder of the current generator version.
    """
    json_file = os.path.join(output_dir, "annotations", "instances_test.json")
    if os.path.isfile(json_file):
        return
    parent = os.path.dirname(os.path.abspath(output_dir))
    lock_path = os.path.join(parent, f".{os.path.basename(output_dir)}.lock")
    with portalocker.Lock(lock_path, mode="a", timeout=_LOCK_TIMEOUT_S):
        if os.path.isfile(json_file):  # another process added it meanwhile
            return
        with open(os.path.join(output_dir, PARAMS_FILE)) as f:
            params = dict(json.load(f)["params"])
        seed, size, num = params.pop("seed"), params.pop("image_size"), params.pop("num_val")
        params.pop("num_train")
        tmp = tempfile.mkdtemp(prefix=".test.tmp-", dir=output_dir)
        try:
            write_split(tmp, "test", num, seed, size, **params)
            images = os.path.join(output_dir, "test")
            if os.path.exists(images):  # left by an interrupted earlier attempt
                shutil.rmtree(images)
            os.replace(os.path.join(tmp, "test"), images)
            os.replace(os.path.join(tmp, "annotations", "instances_test.json"), json_file)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(f"Added the test split ({num} images) to {output_dir}")


def load_shapes(dataset_name: str) -> List[dict]:
    """
    Load ``csgr_shapes_train``, ``csgr_shapes_val`` or ``csgr_shapes_test``, generating the data
    first if missing.

    Returns:
        list[dict]: Detectron2 dataset dicts (``bbox_mode`` XYWH_ABS, ``category_id`` 0..K-1).
    """
    split = SHAPES_SPLITS[dataset_name]
    output_dir = ensure_shapes_dataset()
    if split == "test":
        ensure_shapes_test_split(output_dir)
    json_file = os.path.join(output_dir, "annotations", f"instances_{split}.json")
    return load_coco_checked(dataset_name, json_file, os.path.join(output_dir, split))


def register_all_shapes() -> None:
    """Register ``csgr_shapes_{train,val,test}``; touches no file (generation happens on load)."""
    register_generated_splits(SHAPES_SPLITS, load_shapes, SHAPES_CATEGORIES, SHAPES_DIRNAME)
