from .defaults import add_csgr_config
from .helpers import detector_meta_arch, load_config, num_classes, num_classes_key, resolve_path

__all__ = [
    "add_csgr_config",
    "detector_meta_arch",
    "load_config",
    "num_classes",
    "num_classes_key",
    "resolve_path",
]
