"""Checkpoints that a crash cannot leave half-written, and that never hold non-finite weights.

``fvcore``'s ``Checkpointer.save`` writes ``model_XXXXXXX.pth`` in place and then rewrites
``last_checkpoint`` in place: a run killed during the save can leave ``last_checkpoint`` naming a
truncated file, and ``--resume`` then fails. :class:`AtomicCheckpointer` writes each file to a
temporary name in the same folder, flushes and fsyncs it, renames it over the final name
(``os.replace``, atomic on POSIX), fsyncs the folder, and only then updates ``last_checkpoint``
the same way. It also refuses to save a model with a NaN or infinite weight.
"""

import contextlib
import errno
import os
import shutil
import uuid
from typing import IO, Any, Callable, List, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..errors import ConfigChangedError, NoSpaceLeftError
from .resume_check import (
    METHODS_KEY,
    config_changed_message,
    distill_methods,
    is_optimizer_mismatch,
    resume_mismatch,
)

__all__ = ["AtomicCheckpointer", "atomic_write", "device_full", "non_finite_tensors"]

_KEYS_SHOWN = 10
_NO_SPACE = "no space left on device"
_LOW_SPACE = 64 * 2**20


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file so that ``path`` holds either its old content or the complete new one.

    Args:
        path: the final local path.
        write: writes the content to the binary file object it is given.

    Raises:
        NoSpaceLeftError: the device is full ("no space left on device", the path); nothing
            of the new content is left on disk.
    """
    folder = os.path.dirname(os.path.abspath(path))
    # a hidden, unique name in the same folder (same file system, so os.replace is atomic);
    # created with open() so that it gets the usual permissions (umask), unlike mkstemp's 0600
    tmp = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    )
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        full = device_full(e, folder)  # measured while the partial file still takes its space
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if full:
            raise NoSpaceLeftError(errno.ENOSPC, f"{full}: cannot write {path}") from e
        raise
    _fsync_dir(folder)


def device_full(error: BaseException, folder: str) -> str:
    """Why ``error`` means that ``folder``'s device is full ("" if it does not): an ``OSError``
    ENOSPC/EDQUOT in its chain, or a torch writer failure ("PytorchStreamWriter failed writing
    file ...", raised from ``inline_container.cc``) with less than 64 MiB free."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return os.strerror(seen.errno).lower() if seen.errno == errno.EDQUOT else _NO_SPACE
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, RuntimeError) and "write" in str(error).lower():
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            if free < _LOW_SPACE:
                return f"{_NO_SPACE} ({free / 2**20:.1f} MiB free in {folder})"
    return ""


def non_finite_tensors(state_dict: dict) -> List[str]:
    """Names of the floating-point tensors of ``state_dict`` with a NaN or infinite value."""
    return [
        k
        for k, v in state_dict.items()
        if isinstance(v, torch.Tensor)
        and v.is_floating_point()
        and not bool(torch.isfinite(v).all())
    ]


class AtomicCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` whose saves are atomic and refuse non-finite weights.

    Paths with a "://" scheme (remote storage) fall back to the non-atomic ``PathManager``
    writes of Detectron2.
    """

    def _load_model(self, checkpoint: Any):
        saved_keys = list(checkpoint.get("model", {}))
        if getattr(
            self, "_resuming", False
        ):  # before anything is loaded: a refused resume changes nothing
            parts = resume_mismatch(
                checkpoint.get(METHODS_KEY),
                distill_methods(self.model),
                saved_keys,
                self.model.state_dict().keys(),
            )
            if parts:
                raise ConfigChangedError(config_changed_message(self._resume_path, parts))
        self._checkpoint_keys = saved_keys
        return super()._load_model(checkpoint)

    @property
    def loaded_keys(self) -> List[str]:
        """The model keys of the checkpoint loaded last ([] before any)."""
        return list(getattr(self, "_checkpoint_keys", []))

    def load(self, path: str, checkpointables: Optional[List[str]] = None) -> dict:
        """Detectron2's ``load``. Loading every checkpointable (``--resume``) from a checkpoint
        of other distillation methods or modules (the config changed since it was written, e.g.
        ``MODEL.DISTILL.METHODS``) is a :class:`ConfigChangedError` saying so, raised before
        anything is loaded; so is an optimizer state of other parameters."""
        self._resuming, self._resume_path = checkpointables is None, path
        try:
            return super().load(path, checkpointables)
        except ValueError as e:
            if not is_optimizer_mismatch(e):
                raise
            keys = self.model.state_dict().keys()
            saved = self.loaded_keys
            parts = resume_mismatch(None, distill_methods(self.model), saved, keys)
            message = config_changed_message(path, parts)
            raise ConfigChangedError(f"{message} (PyTorch: {e})") from e
        finally:
            self._resuming = False

    def _is_local(self) -> bool:
        return "://" not in str(self.save_dir)

    def save(self, name: str, **kwargs: Any) -> None:
        """Save the model and checkpointables to ``<save_dir>/<name>.pth`` atomically.

        Raises:
            FloatingPointError: a model weight is NaN or infinite; nothing is written and
                ``last_checkpoint`` still names the previous checkpoint.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        model_state = self.model.state_dict()
        bad = non_finite_tensors(model_state)
        if bad:
            shown = ", ".join(bad[:_KEYS_SHOWN]) + (" ..." if len(bad) > _KEYS_SHOWN else "")
            raise FloatingPointError(
                f"Not saving checkpoint {name}.pth: {len(bad)} model tensor(s) hold NaN or "
                f"infinite values ({shown}); last_checkpoint still names "
                f"{self.get_checkpoint_file() or 'no checkpoint'!r}"
            )
        methods = distill_methods(self.model)
        if methods is not None:
            kwargs[METHODS_KEY] = methods
        if not self._is_local():
            return super().save(name, **kwargs)
        data = {"model": model_state}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        if os.path.basename(save_file) != basename:
            raise ValueError(f"checkpoint name {name!r} must not contain a path separator")
        self.logger.info(f"Saving checkpoint to {save_file}")
        os.makedirs(self.save_dir, exist_ok=True)
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Point ``last_checkpoint`` to ``last_filename_basename``, atomically."""
        if not self._is_local():
            return super().tag_last_checkpoint(last_filename_basename)
        atomic_write(
            os.path.join(self.save_dir, "last_checkpoint"),
            lambda f: f.write(last_filename_basename.encode()),
        )
