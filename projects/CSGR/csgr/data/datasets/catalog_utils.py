"""Helpers shared by the dataset registrations: the dataset root, path checks, lazy loaders.

Every dataset of this project lives under ``$DETECTRON2_DATASETS`` (default ``datasets``,
relative to the working directory), as in Detectron2's ``builtin.py``. Unlike Detectron2, the
root is read when a dataset is *loaded* (``DatasetCatalog.get``), not when it is registered,
so that registration never touches the disk and a process (or a test) can point the variable
elsewhere after import.
"""

import functools
import json
import logging
import os
from typing import Callable, Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

logger = logging.getLogger(__name__)

README_HINT = (
    "see datasets/README.md for the expected layout under $DETECTRON2_DATASETS and where to "
    "obtain the data"
)

__all__ = [
    "datasets_root",
    "require_file",
    "require_dir",
    "refresh_metadata",
    "register_once",
    "rebind_lazy",
    "load_coco_checked",
]


def datasets_root() -> str:
    """
    Returns:
        str: ``$DETECTRON2_DATASETS`` (``~`` expanded), or ``"datasets"`` when it is unset.
    """
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def _missing(kind: str, path: str, dataset_name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Dataset '{dataset_name}': {kind} not found: {os.path.abspath(path)} "
        f"($DETECTRON2_DATASETS={datasets_root()!r}); {README_HINT}."
    )


def require_file(path: str, dataset_name: str, kind: str = "annotation file") -> str:
    """
    Raise a ``FileNotFoundError`` naming ``path`` (and the dataset) when it is not a file.

    Returns:
        str: ``path`` unchanged.
    """
    if not os.path.isfile(path):
        raise _missing(kind, path, dataset_name)
    return path


def require_dir(path: str, dataset_name: str, kind: str = "image folder") -> str:
    """
    Raise a ``FileNotFoundError`` naming ``path`` (and the dataset) when it is not a folder.

    Returns:
        str: ``path`` unchanged.
    """
    if not os.path.isdir(path):
        raise _missing(kind, path, dataset_name)
    return path


def refresh_metadata(dataset_name: str, **kwargs) -> None:
    """
    Set metadata keys of ``dataset_name`` even when they already hold another value.

    Detectron2's ``Metadata`` refuses to change a key; paths such as ``json_file`` (read by
    ``COCOEvaluator``) or ``dirname`` (read by ``PascalVOCDetectionEvaluator``) must however
    follow ``$DETECTRON2_DATASETS`` when it changes between registration and loading.
    """
    meta = MetadataCatalog.get(dataset_name)
    for key, value in kwargs.items():
        if meta.get(key) != value:
            if key in meta.__dict__:
                delattr(meta, key)
            setattr(meta, key, value)


def register_once(name: str, loader: Callable[[], List[dict]], **metadata) -> bool:
    """
    Register ``loader`` under ``name`` with ``metadata``, unless ``name`` is already registered.

    Returns:
        bool: whether the dataset was registered by this call.
    """
    if name in DatasetCatalog.list():
        logger.debug(f"Dataset '{name}' is already registered; keeping the existing one.")
        return False
    DatasetCatalog.register(name, loader)
    refresh_metadata(name, **metadata)  # metadata left over from a removed dataset is replaced
    return True


def register_generated_splits(
    splits: Dict[str, str], load: Callable[[str], List[dict]], categories: List[dict], dirname: str
) -> None:
    """Register COCO-style datasets the project builds itself on first load (shapes, coral).

    Args:
        splits: dataset name -> split folder (``<root>/<dirname>/<split>``, annotations in
            ``<root>/<dirname>/annotations/instances_<split>.json``).
        load: ``load(dataset_name)`` builds the data if needed and returns its dicts.
        categories: COCO categories (``id``, ``name``), in contiguous-id order.
        dirname: the folder under ``$DETECTRON2_DATASETS``.
    """
    root = datasets_root()
    for name, split in splits.items():
        register_once(
            name,
            functools.partial(load, name),
            thing_classes=[c["name"] for c in categories],
            thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in enumerate(categories)},
            json_file=os.path.join(root, dirname, "annotations", f"instances_{split}.json"),
            image_root=os.path.join(root, dirname, split),
            evaluator_type="coco",
        )


def rebind_lazy(name: str, loader: Callable[[], List[dict]], owner_module: str) -> bool:
    """
    Swap the loader of a dataset that ``owner_module`` registered for ``loader``.

    Detectron2's ``builtin.py`` binds its paths when ``detectron2.data`` is imported; this puts
    a loader that reads ``$DETECTRON2_DATASETS`` at load time in its place, keeping the name and
    its metadata. A dataset that is not registered, or that someone else registered, is left
    alone.

    Returns:
        bool: whether the loader was swapped.
    """
    if name not in DatasetCatalog.list():
        return False
    current = DatasetCatalog[name]
    if getattr(current, "__module__", None) != owner_module:
        return False
    DatasetCatalog.remove(name)
    DatasetCatalog.register(name, loader)
    return True


def _explain_key_error(json_file: str, error: KeyError) -> str:
    """Why ``load_coco_json`` raised ``error``: unknown category ids (all listed) or a missing
    COCO key. Reads the json again, only on this error path."""
    with open(json_file) as f:
        coco = json.load(f)
    if not isinstance(coco, dict) or "annotations" not in coco or "categories" not in coco:
        return (
            f"not a COCO instances file (missing key {error}; expected 'images', "
            "'annotations' and 'categories')"
        )
    known = sorted({c.get("id") for c in coco["categories"]})
    unknown = sorted({a.get("category_id") for a in coco["annotations"]} - set(known))
    if unknown:
        return (
            f"annotations use category ids {unknown} that are not in its 'categories' "
            f"(ids {known})"
        )
    return f"missing key {error} in an image or annotation record"


def load_coco_checked(dataset_name: str, json_file: str, image_root: str) -> List[dict]:
    """
    ``load_coco_json`` with explicit errors for missing paths and mismatched categories.

    Args:
        dataset_name (str): a registered name whose metadata holds ``thing_classes``.
        json_file (str): COCO-format annotation file.
        image_root (str): folder of the images named in ``json_file``.

    Returns:
        list[dict]: Detectron2 dataset dicts; boxes stay ``XYWH_ABS`` (``bbox_mode``) as in
        the json, contiguous ``category_id`` in ``[0, len(thing_classes))``.

    Raises:
        FileNotFoundError: ``json_file`` or ``image_root`` is missing (named).
        ValueError: naming ``json_file`` when it is not valid JSON (with the error's line,
            column and character), uses category ids absent from its ``categories`` (all of
            them listed), lacks COCO keys, or does not match the registered categories.
    """
    require_file(json_file, dataset_name)
    require_dir(image_root, dataset_name)
    refresh_metadata(dataset_name, json_file=json_file, image_root=image_root)
    try:
        return load_coco_json(json_file, image_root, dataset_name)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"Dataset '{dataset_name}': {json_file} is not valid JSON: {e.msg} at line "
            f"{e.lineno}, column {e.colno} (character {e.pos})"
        ) from e
    except KeyError as e:
        raise ValueError(
            f"Dataset '{dataset_name}': {json_file}: {_explain_key_error(json_file, e)}"
        ) from e
    except AssertionError as e:
        # Detectron2 asserts that the json's category names match the registered ones.
        expected = MetadataCatalog.get(dataset_name).get("thing_classes")
        raise ValueError(
            f"Dataset '{dataset_name}': {json_file} does not match the registered dataset "
            f"(expected categories {expected}, in id order): {e}"
        ) from e
