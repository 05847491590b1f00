"""Running a released student (plain Detectron2 YAML + .pth) on images and drawing its detections.

Detectron2's ``DefaultPredictor`` and ``Visualizer``; class names come from the metadata of the
config's first test dataset when it is registered, else the class ids are shown.
"""

import glob
import logging
import os
from typing import List, Optional, Sequence

import cv2
from detectron2.config import CfgNode, get_cfg
from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata
from detectron2.engine import DefaultPredictor
from detectron2.utils.visualizer import ColorMode, Visualizer

from .drawing import imwrite

__all__ = ["IMAGE_EXTENSIONS", "list_images", "released_cfg", "dataset_metadata", "run_demo"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(inputs: Sequence[str]) -> List[str]:
    """Image files from folders (their images, sorted), glob patterns and file paths.

    Raises:
        FileNotFoundError: naming an input that matches no image.
    """
    images = []
    for spec in inputs:
        if os.path.isdir(spec):
            found = sorted(
                os.path.join(spec, f)
                for f in os.listdir(spec)
                if f.lower().endswith(IMAGE_EXTENSIONS)
            )
        elif os.path.isfile(spec):
            found = [spec]
        else:
            found = sorted(glob.glob(os.path.expanduser(spec)))
        if not found:
            raise FileNotFoundError(f"--input {spec!r}: no image found")
        images.extend(found)
    return images


def released_cfg(
    config_file: str,
    weights: Optional[str] = None,
    confidence_threshold: float = 0.5,
    opts: Sequence[str] = (),
) -> CfgNode:
    """The config of a released student, read with vanilla Detectron2's ``get_cfg()``.

    A relative ``MODEL.WEIGHTS`` that does not exist from the working directory is taken
    relative to the YAML's folder, where the release writes the .pth.

    Args:
        config_file: the released ``<name>_<hash>.yaml``.
        weights: overrides MODEL.WEIGHTS.
        confidence_threshold: minimum score of a drawn detection.
        opts: extra ``KEY VALUE`` overrides.

    Raises:
        KeyError: naming the file when it is not a plain Detectron2 config (e.g. a Distiller's).
    """
    cfg = get_cfg()
    try:
        cfg.merge_from_file(config_file)
    except KeyError as e:
        raise KeyError(
            f"{config_file} is not a plain Detectron2 config ({e}); the demo runs a released "
            "student: see tools/release_student.py"
        ) from e
    cfg.merge_from_list(list(opts))
    if weights:
        cfg.MODEL.WEIGHTS = weights
    path = cfg.MODEL.WEIGHTS
    if path and "://" not in path and not os.path.isabs(path) and not os.path.exists(path):
        cfg.MODEL.WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(config_file)), path)
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = confidence_threshold
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = confidence_threshold
    cfg.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = confidence_threshold
    cfg.freeze()
    return cfg


def dataset_metadata(cfg: CfgNode) -> Metadata:
    """Metadata of the first registered test (else train) dataset; empty if none is."""
    for name in (*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN):
        if name in MetadataCatalog.list():
            return MetadataCatalog.get(name)
    return Metadata()


def run_demo(
    cfg: CfgNode, inputs: Sequence[str], output_dir: str, confidence_threshold: float = 0.5
) -> List[str]:
    """Detect on each image and write it with boxes, labels and scores drawn.

    Args:
        cfg: see :func:`released_cfg`.
        inputs: folders, globs or files (see :func:`list_images`).
        output_dir: one image per input, same file name (prefixed by its index on a clash).
        confidence_threshold: detections scoring less are not drawn.

    Returns:
        The written paths, in input order. An image file OpenCV cannot read is skipped with a
        warning naming it, and counted in a summary warning.
    """
    images = list_images(inputs)
    predictor = DefaultPredictor(cfg)
    metadata = dataset_metadata(cfg)
    os.makedirs(output_dir, exist_ok=True)
    names = [os.path.basename(p) for p in images]
    written, unreadable = [], []
    for i, (path, name) in enumerate(zip(images, names)):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            unreadable.append(path)
            logger.warning(f"Cannot read the image {path}: skipped ({len(unreadable)} so far)")
            continue
        instances = predictor(image)["instances"].to("cpu")
        instances = instances[instances.scores >= confidence_threshold]
        visualizer = Visualizer(image[:, :, ::-1], metadata, instance_mode=ColorMode.IMAGE)
        drawn = visualizer.draw_instance_predictions(instances).get_image()[:, :, ::-1]
        out_name = name if names.count(name) == 1 else f"{i:04d}_{name}"
        out_path = os.path.join(output_dir, out_name)
        if os.path.abspath(out_path) == os.path.abspath(path):
            raise ValueError(f"--output {output_dir} would overwrite the input {path}")
        imwrite(out_path, drawn)
        written.append(out_path)
    if unreadable:
        logger.warning(
            f"Skipped {len(unreadable)} of {len(images)} input images that could not be read "
            f"(missing, empty or not an image): {', '.join(unreadable)}"
        )
    return written
