"""Detectron2's PASCAL VOC evaluator, tolerant of the VOC files annotation tools write.

``PascalVOCDetectionEvaluator`` re-reads the ground truth with its own parser, which fails on
what Detectron2's loader accepts and annotation tools such as labelme write: an empty
``<truncated/>`` or ``<difficult/>`` (``int(None)``), float corners (``int('191.0')``), and it
writes one result file per class named after the class (``tv/monitor`` is a folder).

:class:`TolerantPascalVOCEvaluator` reads every annotation file of the split first
(:func:`csgr.data.checks.voc_files.read_voc_file`). A split that Detectron2's parser reads as is
is evaluated exactly as Detectron2 does. Otherwise the evaluator writes normalised copies of the
annotations to a temporary folder (empty flags read as 0, missing poses as "Unspecified", float
corners rounded to the nearest integer, each class named ``class_<index>``) and runs Detectron2's
own evaluation on them. An unreadable file is an error naming it.
"""

import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

from detectron2.data import MetadataCatalog
from detectron2.evaluation import PascalVOCDetectionEvaluator
from detectron2.evaluation import pascal_voc_evaluation as d2_voc
from detectron2.utils import comm

from ..data.checks.voc_files import VocFile, read_voc_file, unsafe_class_names, voc_split_files
from ..errors import DatasetFileError

__all__ = ["TolerantPascalVOCEvaluator", "write_normalised_annotation"]

logger = logging.getLogger(__name__)


def write_normalised_annotation(path: str, voc_file: VocFile, names: Dict[str, str]) -> None:
    """Write the objects of ``voc_file`` as a VOC xml that Detectron2's ``parse_rec`` reads.

    Args:
        path: the file to write.
        voc_file: a file read by :func:`read_voc_file` without error.
        names: class name -> the name to write.
    """
    root = ET.Element("annotation")
    for obj in voc_file.objects:
        node = ET.SubElement(root, "object")
        for tag, value in (
            ("name", names[obj.name]),
            ("pose", obj.pose),
            ("truncated", obj.truncated),
            ("difficult", obj.difficult),
        ):
            ET.SubElement(node, tag).text = str(value)
        box = ET.SubElement(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.bbox):
            ET.SubElement(box, tag).text = str(value)
    ET.ElementTree(root).write(path)


class TolerantPascalVOCEvaluator(PascalVOCDetectionEvaluator):
    """``PascalVOCDetectionEvaluator`` that accepts empty flags, float corners and class names
    that are no valid file names (see the module docstring); same results on files Detectron2
    reads as is."""

    def _read_split(self) -> List[Tuple[str, VocFile]]:
        meta = MetadataCatalog.get(self._dataset_name)
        files = []
        for image_id, _ in voc_split_files(meta.dirname, meta.split):
            voc_file = read_voc_file(self._anno_file_template.format(image_id), self._class_names)
            if voc_file.error:
                raise DatasetFileError(
                    f"Evaluating '{self._dataset_name}': {voc_file.path}: {voc_file.error}"
                )
            files.append((image_id, voc_file))
        return files

    def evaluate(self):
        """Detectron2's ``evaluate``, on normalised copies of the annotations if needed.

        Returns:
            dict: ``{"bbox": {"AP", "AP50", "AP75"}}`` on the main process, else ``None``.

        Raises:
            DatasetFileError: an annotation file that cannot be read, named.
        """
        if not comm.is_main_process():
            return super().evaluate()
        files = self._read_split()
        unsafe = unsafe_class_names(self._class_names)
        if not unsafe and not any(f.tolerated for _, f in files):
            return super().evaluate()
        tolerated = sorted({t for _, f in files for t in f.tolerated})
        logger.info(
            f"Evaluating '{self._dataset_name}' on normalised copies of its annotations "
            f"({'; '.join(tolerated + ([f'class names {unsafe}'] if unsafe else []))})"
        )
        names = {n: f"class_{i}" for i, n in enumerate(self._class_names)}
        original = (self._anno_file_template, self._class_names)
        with tempfile.TemporaryDirectory(prefix="csgr_voc_eval_") as tmp:
            for image_id, voc_file in files:
                write_normalised_annotation(os.path.join(tmp, f"{image_id}.xml"), voc_file, names)
            self._anno_file_template = os.path.join(tmp, "{}.xml")
            self._class_names = [names[n] for n in original[1]]
            try:
                return super().evaluate()
            finally:
                self._anno_file_template, self._class_names = original
                d2_voc.parse_rec.cache_clear()  # its cache holds the temporary paths
