"""A run's identity for ``--reuse``: the digest of its merged config and of the files it reads.

The digest does not depend on where the run lies: its ``OUTPUT_DIR`` and a teacher's weights
path (whose content is hashed) are left out, so a study whose folder or repository moved, or
that another checkout runs, still finds its runs. Stamps written before (with those paths in
the digest) still match through :func:`config_digests`.
"""

import hashlib
import os
from typing import List

from ..config import load_config
from .accuracy_runs import Run

__all__ = ["KEYS_ADDED_LATER", "config_digest", "config_digests"]

# Config keys added after runs were first stamped: key -> (the value those earlier runs computed
# with, the distillation method that reads the key, or None where every method does). A merged
# config holding that value, or not running that method (a teacher or baseline runs none),
# digests as if the key did not exist (and a node left empty by that, as if the node did not), so
# the earlier stamps still match; otherwise the key is part of the digest (and the run trains
# anew).
KEYS_ADDED_LATER = {
    "MODEL.DISTILL.PCD.QUALITY_ANCHORS": ("all", "PCD"),
    "MODEL.DISTILL.CSGR.CATEGORY_ATTENTION": ("learned", "CSGR"),
    "MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS": (0, "CSGR"),
    "MODEL.DISTILL.CSGR.REL_LEVEL_MEAN": (False, "CSGR"),
    "MODEL.DISTILL.CSGR.FORMULATION": ("published", "CSGR"),
    "MODEL.DISTILL.SCHEDULE.START_ITER": (0, None),
    "MODEL.DISTILL.SCHEDULE.RAMP_ITERS": (0, None),
}


def _merged_config(run: Run):
    cfg = load_config(run.config_file, ["OUTPUT_DIR", run.output_dir, *run.opts])
    distils = cfg.MODEL.META_ARCHITECTURE == "Distiller" or bool(run.depends_on)
    for key, (earlier_value, method) in KEYS_ADDED_LATER.items():
        *parents, leaf = key.split(".")
        nodes = [cfg]
        for name in parents:
            nodes.append(nodes[-1][name])
        runs_method = method is None or method in cfg.MODEL.DISTILL.METHODS
        if nodes[-1][leaf] == earlier_value or not distils or not runs_method:
            del nodes[-1][leaf]
            _remove_empty_nodes(nodes, parents)
    return cfg


def _remove_empty_nodes(nodes: list, names: List[str]) -> None:
    """Delete ``nodes[i + 1]`` (``nodes[i][names[i]]``) from its parent where it is empty,
    innermost first."""
    for i in range(len(names) - 1, -1, -1):
        if len(nodes[i + 1]):
            return
        del nodes[i][names[i]]


def _digests(dumps: List[str], run: Run) -> List[str]:
    """SHA-256 of each config dump followed by the run's files, which are read once."""
    hashers = [hashlib.sha256(dump.encode()) for dump in dumps]
    files = [run.depends_on] if run.depends_on else []
    files += [m for m in run.register if m.endswith(".py")]
    for path in files:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                for hasher in hashers:
                    hasher.update(chunk)
    return [hasher.hexdigest() for hasher in hashers]


def config_digests(run: Run) -> List[str]:
    """The run's digest (:func:`config_digest`) first, then the digest stamps written before it
    was location-independent (with ``OUTPUT_DIR`` and the teacher's weights path) carry."""
    cfg = _merged_config(run)
    earlier = cfg.dump()
    cfg.OUTPUT_DIR = ""
    weights = cfg.MODEL.DISTILL.TEACHER.WEIGHTS if "DISTILL" in cfg.MODEL else ""
    if run.depends_on and weights:
        named = os.path.realpath(os.path.join(run.cwd, weights))
        if named == os.path.realpath(os.path.join(run.cwd, run.depends_on)):
            cfg.MODEL.DISTILL.TEACHER.WEIGHTS = ""  # its content is part of the digest
    return _digests([cfg.dump(), earlier], run)


def config_digest(run: Run) -> str:
    """SHA-256 of the run's full merged config, of the content of ``run.depends_on`` and of the
    ``.py`` files of ``run.register`` (the user's datasets; a built-in run has none).

    The config has its ``_BASE_`` files and opts resolved, without ``OUTPUT_DIR`` and, where its
    content is hashed (``depends_on``), the teacher's weights path; the keys of
    :data:`KEYS_ADDED_LATER` are left out where they hold their earlier value or their method
    does not run.
    """
    return config_digests(run)[0]
