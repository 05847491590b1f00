"""Loading registered datasets with errors that name the annotation file at fault.

A dataset registered with Detectron2's ``register_coco_instances`` (metadata ``json_file``) or
``register_pascal_voc`` (metadata ``dirname`` and ``split``) is read by Detectron2's loaders,
whose errors name no file (``JSONDecodeError``, ``KeyError: category_id=99``, ``ValueError:
'persn' is not in list``, ``ParseError: mismatched tag``). When loading fails,
:func:`named_load_errors` reads the dataset's files again and raises a
:class:`~csgr.errors.DatasetFileError` that names the file and the reason.
"""

import contextlib
import os
from typing import List, Optional, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...errors import DatasetFileError
from .coco_files import coco_json_notes, coco_json_problems
from .voc_files import VocFile, read_voc_file, voc_split_files

__all__ = [
    "dataset_format",
    "dataset_source",
    "voc_files",
    "annotation_problems",
    "annotation_notes",
    "named_load_errors",
]


def dataset_format(name: str) -> str:
    """ "coco" (metadata ``json_file``), "voc" (``dirname`` and ``split``) or "" (other)."""
    meta = MetadataCatalog.get(name) if name in MetadataCatalog.list() else None
    if meta is None:
        return ""
    if meta.get("json_file", None):
        return "coco"
    if meta.get("dirname", None) and meta.get("split", None):
        return "voc"
    return ""


def dataset_source(name: str) -> str:
    """The annotation files of a dataset, in words ("" when unknown)."""
    meta = MetadataCatalog.get(name)
    kind = dataset_format(name)
    if kind == "coco":
        return meta.json_file
    if kind == "voc":
        split = os.path.join(meta.dirname, "ImageSets", "Main", meta.split + ".txt")
        return f"{os.path.join(meta.dirname, 'Annotations')} (split {split})"
    return ""


def voc_files(name: str, stop_at_error: bool = False) -> List[VocFile]:
    """Each annotation file of a registered VOC-format dataset's split, read (see
    :func:`.voc_files.read_voc_file`); with ``stop_at_error``, up to the first unreadable one.

    Raises:
        FileNotFoundError: naming the split list when it does not exist.
    """
    meta = MetadataCatalog.get(name)
    split_file = os.path.join(meta.dirname, "ImageSets", "Main", meta.split + ".txt")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(f"split list {split_file} does not exist")
    classes = list(meta.get("thing_classes", []))
    files = []
    for _, path in voc_split_files(meta.dirname, meta.split):
        files.append(read_voc_file(path, classes))
        if stop_at_error and files[-1].error:
            break
    return files


def annotation_problems(name: str, first_only: bool = False) -> List[str]:
    """Problems of a registered COCO or VOC dataset's annotation files that keep Detectron2 from
    loading or evaluating it, each naming the file ([] for other datasets).

    Args:
        name: a registered dataset.
        first_only: stop at the first problem (a VOC split is read file by file).
    """
    kind = dataset_format(name)
    if kind == "coco":
        json_file = MetadataCatalog.get(name).json_file
        if not os.path.isfile(json_file):
            return [f"annotation file {json_file} does not exist"]
        return coco_json_problems(json_file)
    if kind != "voc":
        return []
    try:
        files = voc_files(name, stop_at_error=first_only)
    except FileNotFoundError as e:
        return [str(e)]
    return [f"{f.path}: {f.error}" for f in files if f.error]


def annotation_notes(name: str) -> List[str]:
    """What Detectron2 or pycocotools would read differently from what a registered COCO
    dataset's file means, and how CSGR handles it (see :func:`.coco_files.coco_json_notes`);
    [] for other datasets."""
    if dataset_format(name) != "coco":
        return []
    meta = MetadataCatalog.get(name)
    if not os.path.isfile(meta.json_file):
        return []
    return coco_json_notes(meta.json_file, list(meta.get("thing_classes", [])))


def _files_exist(name: str) -> bool:
    meta = MetadataCatalog.get(name)
    kind = dataset_format(name)
    if kind == "coco":
        return os.path.isfile(meta.json_file)
    split = os.path.join(meta.dirname, "ImageSets", "Main", meta.split + ".txt")
    return kind == "voc" and os.path.isfile(split)


def _explain(names: Sequence[str]) -> Optional[str]:
    for name in names:
        # a missing file is the loader's to name (the metadata may predate the dataset root)
        if name not in DatasetCatalog.list() or not _files_exist(name):
            continue
        problems = annotation_problems(name, first_only=True)
        if problems:
            return f"Dataset '{name}': {problems[0]}"
    return None


@contextlib.contextmanager
def named_load_errors(names: Sequence[str]):
    """Turn an error raised while loading ``names`` into a :class:`DatasetFileError` naming the
    annotation file and the reason, when the files of one of them show one; other errors pass
    unchanged."""
    try:
        yield
    except DatasetFileError:
        raise
    except Exception as e:
        message = _explain(list(names))
        if message is None:
            raise
        raise DatasetFileError(message) from e
