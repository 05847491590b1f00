"""Reading configs: the one path rule, the one "load a config from a file", and what a config
says about its detector.

Path rule (as Detectron2 resolves ``_BASE_``): a relative path is taken from the working
directory if it exists there, else from the folder of the config file that names it. Paths
given on the command line (opts) are taken from the working directory.
"""

import difflib
import os
import re
from typing import List, Optional, Sequence

from detectron2.config import CfgNode, get_cfg

from ..errors import ConfigTypeError, UnknownConfigKeyError
from .defaults import add_csgr_config

__all__ = ["resolve_path", "load_config", "detector_meta_arch", "num_classes", "num_classes_key"]

# keys holding paths that a config file may give relative to its own folder
_PATH_KEYS = ("CONFIG_FILE", "WEIGHTS")


def resolve_path(path: str, config_dir: Optional[str] = None) -> str:
    """``path`` as given if it is empty, a URL, absolute or exists from the working directory;
    else ``config_dir/path`` if that exists; else ``path`` unchanged (the caller's error then
    names it).

    Args:
        path: a file path from a config or the command line.
        config_dir: the folder of the config file that names ``path``, if any.
    """
    if not path or "://" in path or os.path.isabs(path) or os.path.exists(path):
        return path
    if config_dir:
        candidate = os.path.join(config_dir, path)
        if os.path.exists(candidate):
            return candidate
    return path


def load_config(config_file: str, opts: Sequence[str] = ()) -> CfgNode:
    """A config with CSGR's keys, merged from a YAML file (``_BASE_`` followed) and ``KEY VALUE``
    opts; unfrozen.

    Relative ``MODEL.DISTILL.TEACHER.{CONFIG_FILE, WEIGHTS}`` set by the file follow the path
    rule of the module docstring (the file's folder is the second place looked in).

    Raises:
        FileNotFoundError: naming the config file.
        UnknownConfigKeyError: naming the key, the config file or the command line, and the
            closest existing keys, for a key unknown to Detectron2 and CSGR.
        ConfigTypeError: naming the key and where its value came from, when the value's type is
            not its default's (yacs's type check; e.g. ``0`` for a float key).
    """
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"no such config file {config_file!r} (relative paths are taken from the working "
            f"directory {os.getcwd()})"
        )
    cfg = get_cfg()
    add_csgr_config(cfg)
    try:
        cfg.merge_from_file(config_file)
    except KeyError as e:
        raise _key_error(e, config_file, cfg) from e
    except ValueError as e:
        raise _type_error(e, config_file) from e
    config_dir = os.path.dirname(os.path.abspath(config_file))
    teacher = cfg.MODEL.DISTILL.TEACHER
    for key in _PATH_KEYS:
        teacher[key] = resolve_path(teacher[key], config_dir)
    try:
        cfg.merge_from_list(list(opts))
    except ValueError as e:
        raise _type_error(e, _OPTS) from e
    except (AssertionError, KeyError) as e:  # yacs asserts that an opt's key exists
        raise _key_error(e, _OPTS, cfg) from e
    return cfg


def _all_keys(node: CfgNode, prefix: str = "") -> List[str]:
    keys = []
    for k, v in node.items():
        keys += _all_keys(v, f"{prefix}{k}.") if isinstance(v, CfgNode) else [prefix + k]
    return keys


def _closest(key: str, keys: List[str]) -> List[str]:
    """The existing keys most like ``key`` (those within a whisker of the best match)."""
    ratios = {k: difflib.SequenceMatcher(None, key, k).ratio() for k in keys}
    best = max(ratios.values(), default=0.0)
    if best < 0.75:
        return []
    return sorted((k for k, r in ratios.items() if r >= best - 0.02), key=lambda k: -ratios[k])


def _key_error(error: Exception, source: str, cfg: CfgNode) -> Exception:
    """yacs's error for a key that does not exist as a :class:`UnknownConfigKeyError` naming
    ``source`` and the closest existing keys; other errors unchanged."""
    found = re.search(r"Non-existent (?:config )?key: ([\w.]+)", str(error))
    if not found:
        return KeyError(f"{source}: {error}") if isinstance(error, KeyError) else error
    key = found.group(1)
    close = _closest(key, _all_keys(cfg))
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return UnknownConfigKeyError(
        f"{source}: unknown config key {key} (neither Detectron2 nor CSGR has it){hint}"
    )


_OPTS = "the command line's KEY VALUE opts"


def _type_error(error: ValueError, source: str) -> Exception:
    """yacs's type-mismatch ``error`` as a :class:`ConfigTypeError` naming ``source``, with a hint
    for the usual case, an integer given for a float key; other errors unchanged."""
    message = str(error)
    if not message.startswith("Type mismatch"):
        return error
    hint = ""
    if "<class 'float'> vs. <class 'int'>" in message:
        hint = " (the key takes a float: write the number with a decimal point, e.g. 0.0)"
    return ConfigTypeError(f"{source}: {message}{hint}")


def detector_meta_arch(cfg: CfgNode) -> str:
    """The detector meta-architecture a config describes, looking through a Distiller config."""
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "Distiller":
        return cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    return arch


def num_classes_key(cfg: CfgNode) -> str:
    """The key that holds the class count of the detector a config describes."""
    if detector_meta_arch(cfg) == "RetinaNet":
        return "MODEL.RETINANET.NUM_CLASSES"
    return "MODEL.ROI_HEADS.NUM_CLASSES"


def num_classes(cfg: CfgNode) -> int:
    """Number of object classes of the detector a config describes."""
    if detector_meta_arch(cfg) == "RetinaNet":
        return cfg.MODEL.RETINANET.NUM_CLASSES
    return cfg.MODEL.ROI_HEADS.NUM_CLASSES
