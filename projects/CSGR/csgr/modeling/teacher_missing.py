"""The one line a user needs when the teacher's weights do not exist yet: how to train it.

On a fresh machine the distillation configs name a teacher checkpoint that no run has written
yet (``output/<dataset>/<teacher config>/model_final.pth``); :func:`require_teacher_weights`
says so before anything is built, with the command that writes that file.
"""

import os
import shlex
from typing import Optional, Sequence

from detectron2.config import CfgNode

from ..config import resolve_path
from ..engine.user_modules import registered_on_command_line
from ..errors import MissingTeacherWeightsError

__all__ = ["train_teacher_command", "require_teacher_weights"]


def train_teacher_command(cfg: CfgNode, register: Optional[Sequence[str]] = None) -> str:
    """The ``tools/train_net.py`` command that trains the teacher of a distillation config and
    writes ``MODEL.DISTILL.TEACHER.WEIGHTS`` (when it names a ``model_final.pth``), with the
    ``--register`` modules of this process's command line (or ``register``)."""
    teacher = cfg.MODEL.DISTILL.TEACHER
    command = "python tools/train_net.py"
    if register is None:
        register = registered_on_command_line()
    for spec in register:  # the user's datasets, as their command had them
        command += f" --register {shlex.quote(spec)}"
    command += f" --config-file {shlex.quote(teacher.CONFIG_FILE)}"
    opts = list(teacher.OPTS)
    if os.path.basename(teacher.WEIGHTS) == "model_final.pth":
        opts += ["OUTPUT_DIR", os.path.dirname(teacher.WEIGHTS) or "."]
    return " ".join([command, *(shlex.quote(str(o)) for o in opts)])


def require_teacher_weights(cfg: CfgNode) -> None:
    """Raise when ``MODEL.DISTILL.TEACHER.WEIGHTS`` names a local file that does not exist
    (looked up as :func:`csgr.config.resolve_path` does).

    Raises:
        MissingTeacherWeightsError: naming the file and the command that trains the teacher.
    """
    path = cfg.MODEL.DISTILL.TEACHER.WEIGHTS
    resolved = resolve_path(path)
    if not path or "://" in resolved or os.path.isfile(resolved):
        return
    where = "" if os.path.isabs(path) else f" (looked in the working directory {os.getcwd()})"
    raise MissingTeacherWeightsError(
        f"MODEL.DISTILL.TEACHER.WEIGHTS: no such file {path!r}{where}. Train the teacher first: "
        f"{train_teacher_command(cfg)}"
    )
