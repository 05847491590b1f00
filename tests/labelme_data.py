"""Small datasets written as labelme 6's converters write them, for the tests of users' own data.

``labelme2coco.py`` numbers images and annotations from 0, writes a first category
``_background_`` with id 0 that no box uses, the classes from id 1, ``file_name`` relative to the
json's folder (``JPEGImages/<name>.jpg``), rectangles as 4-point polygons with float corners.
``labelme2voc.py`` writes the VOC files of ``test_dataset_check.write_voc`` (empty
``<truncated/>``/``<difficult/>``, float corners, class names such as ``tv/monitor``).
"""

import json
import os

import cv2
import numpy as np
import torch
from detectron2.structures import Boxes, Instances

CLASSES = ["person", "tv/monitor"]
SIZE = (48, 64)  # height, width
# image name -> objects (class, x1, y1, x2, y2) in pixel corners as labelme stores a rectangle
OBJECTS = {
    "img_000": [("person", 3.0, 4.0, 30.0, 40.0), ("tv/monitor", 35.0, 10.0, 60.0, 30.0)],
    "img_001": [("tv/monitor", 5.0, 5.0, 25.0, 47.0)],
    "img_002": [("person", 10.0, 12.0, 50.0, 44.0), ("person", 40.0, 2.0, 62.0, 20.0)],
    "img_003": [("person", 0.0, 0.0, 20.0, 30.0), ("tv/monitor", 22.0, 3.0, 63.0, 40.0)],
}


def write_images(folder, names=OBJECTS, seed=0):
    """One random JPEG of :data:`SIZE` per name in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        image = rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)
        cv2.imwrite(os.path.join(folder, name + ".jpg"), image)


def write_labelme_coco(root, objects=OBJECTS, classes=CLASSES):
    """``root/annotations.json`` + ``root/JPEGImages``, as ``labelme2coco.py`` writes them.

    Returns:
        The json's path.
    """
    write_images(os.path.join(root, "JPEGImages"), objects)
    categories = [{"supercategory": None, "id": 0, "name": "_background_"}]
    categories += [{"supercategory": None, "id": i + 1, "name": c} for i, c in enumerate(classes)]
    images, annotations = [], []
    for image_id, (name, objs) in enumerate(objects.items()):
        images.append(
            {
                "license": 0,
                "url": None,
                "file_name": f"JPEGImages/{name}.jpg",
                "height": SIZE[0],
                "width": SIZE[1],
                "date_captured": None,
                "id": image_id,
            }
        )
        for cls, x1, y1, x2, y2 in objs:
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": image_id,
                    "category_id": classes.index(cls) + 1,
                    "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
                    "area": float((x2 - x1) * (y2 - y1)),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": None, "url": None, "version": None, "year": 2026},
        "licenses": [{"url": None, "id": 0, "name": None}],
        "images": images,
        "type": "instances",
        "annotations": annotations,
        "categories": categories,
    }
    path = os.path.join(root, "annotations.json")
    with open(path, "w") as f:
        json.dump(coco, f)
    return path


def ground_truth_as_predictions(dicts, boxes_key="bbox"):
    """(inputs, outputs) for an evaluator's ``process``: each image's loaded ground truth boxes
    (absolute XYXY, ``bbox_mode`` handled) as predictions with score 1."""
    from detectron2.structures import BoxMode

    inputs, outputs = [], []
    for record in dicts:
        anns = record.get("annotations", [])
        boxes = [BoxMode.convert(a[boxes_key], a["bbox_mode"], BoxMode.XYXY_ABS) for a in anns]
        instances = Instances((record["height"], record["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        instances.scores = torch.ones(len(anns))
        instances.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        inputs.append({"image_id": record["image_id"], "file_name": record["file_name"]})
        outputs.append({"instances": instances})
    return inputs, outputs


LABELME_VOC_OBJECT = """
  <object>
    <name>{}</name>
    <pose></pose>
    <truncated/>
    <difficult/>
    <bndbox>
      <xmin>{:.1f}</xmin>
      <ymin>{:.1f}</ymin>
      <xmax>{:.1f}</xmax>
      <ymax>{:.1f}</ymax>
    </bndbox>
  </object>"""
LABELME_VOC = """<annotation>
  <folder></folder>
  <filename>{}.jpg</filename>
  <database></database>
  <annotation></annotation>
  <image></image>
  <size><height>{}</height><width>{}</width><depth>3</depth></size>
  <segmented></segmented>{}
</annotation>
"""


def write_labelme_voc(root, objects=OBJECTS, classes=CLASSES, split="train"):
    """``root/{Annotations,JPEGImages,class_names.txt}`` as ``labelme2voc.py`` writes them
    (corners as floats, empty flags, ``_background_`` first in ``class_names.txt``), plus the
    split list ``ImageSets/Main/<split>.txt`` that docs/WORKFLOW.md tells the user to write.

    Returns:
        ``root``.
    """
    write_images(os.path.join(root, "JPEGImages"), objects)
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    for name, objs in objects.items():
        # labelme stores a rectangle as two points; labelme2voc writes them as xmin..ymax
        body = "".join(LABELME_VOC_OBJECT.format(*o) for o in objs)
        with open(os.path.join(root, "Annotations", name + ".xml"), "w") as f:
            f.write(LABELME_VOC.format(name, SIZE[0], SIZE[1], body))
    with open(os.path.join(root, "class_names.txt"), "w") as f:
        f.write("\n".join(["_background_", *classes]))
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    with open(os.path.join(root, "ImageSets", "Main", split + ".txt"), "w") as f:
        f.write("".join(n + "\n" for n in sorted(objects)))
    return str(root)
