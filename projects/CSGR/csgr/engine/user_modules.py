"""Importing a user's Python modules, e.g. one that registers their own datasets.

A file ``my_datasets.py`` that calls ``register_coco_instances(...)`` at import time makes its
datasets usable by name in ``DATASETS.TRAIN`` / ``DATASETS.TEST``. Tools take it as
``--register my_datasets.py`` (a path, or a dotted module name on ``sys.path``) and also read the
environment variable ``CSGR_REGISTER`` (entries separated by ``os.pathsep``, ":" on Linux), which
reaches every process a launcher starts.
"""

import importlib
import importlib.util
import logging
import os
import sys
from types import ModuleType
from typing import Dict, List, Optional, Sequence

__all__ = [
    "ENV_VAR",
    "add_register_argument",
    "import_user_module",
    "import_user_modules",
    "registered_on_command_line",
]

logger = logging.getLogger(__name__)

ENV_VAR = "CSGR_REGISTER"
_IMPORTED: Dict[str, ModuleType] = {}
_FROM_ARGS: List[str] = []  # the --register values of the latest command line, as given


def import_user_module(spec: str) -> ModuleType:
    """Import a module given as a ``.py`` path or a dotted name, once per process.

    Raises:
        FileNotFoundError: a ``.py`` path that does not exist.
        ModuleNotFoundError: a dotted name that is not importable.
    """
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        if path in _IMPORTED:
            return _IMPORTED[path]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--register / ${ENV_VAR}: no such file {spec!r}")
        name = "csgr_user_" + os.path.splitext(os.path.basename(path))[0]
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        _IMPORTED[path] = module
    else:
        module = importlib.import_module(spec)
        _IMPORTED[spec] = module
    logger.info(f"Imported user module {spec}")
    return module


def import_user_modules(specs: Optional[Sequence[str]] = None) -> List[ModuleType]:
    """Import the modules in ``specs`` and in ``$CSGR_REGISTER``, each once per process."""
    env = [s for s in os.environ.get(ENV_VAR, "").split(os.pathsep) if s]
    _FROM_ARGS[:] = list(specs or [])
    return [import_user_module(s) for s in [*env, *(specs or [])]]


def registered_on_command_line() -> List[str]:
    """The ``--register`` values given to this process (not those of ``$CSGR_REGISTER``, which
    a command printed for the user inherits), for commands that must import them too."""
    return list(_FROM_ARGS)


def add_register_argument(parser) -> None:
    """Add the tools' ``--register MODULE`` option (repeatable) to an argparse parser; pass the
    parsed list to :func:`import_user_modules` (``setup_cfg`` does)."""
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="MODULE",
        help=f"a .py file or module name to import first, e.g. one registering your datasets "
        f"(repeatable; ${ENV_VAR} adds more)",
    )
