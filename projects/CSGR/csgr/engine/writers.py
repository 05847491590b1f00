"""Detectron2's event writers, with a full disk reported as one clear error.

``metrics.json`` (``JSONWriter``) is written every 20 iterations; on a full device its write
fails with a bare ``OSError: [Errno 28]`` from inside a hook. :class:`DiskFullAwareWriter` turns
that into :class:`~csgr.errors.NoSpaceLeftError` naming the file, which ``tools/train_net.py``
prints on one line; the last checkpoint stays intact (:mod:`.checkpoint`), so ``--resume``
continues once space is freed. Other errors pass unchanged.
"""

import errno
import os
from typing import List

from detectron2.utils.events import EventWriter, JSONWriter, TensorboardXWriter

from ..errors import NoSpaceLeftError
from .checkpoint import device_full

__all__ = ["DiskFullAwareWriter", "guard_writers"]


class DiskFullAwareWriter(EventWriter):
    """An ``EventWriter`` that raises :class:`NoSpaceLeftError` naming ``path`` when the wrapped
    writer fails because the device is full (ENOSPC/EDQUOT)."""

    def __init__(self, writer: EventWriter, path: str):
        """
        Args:
            writer: the writer to wrap.
            path: the file or folder it writes, for the message.
        """
        self.writer, self.path = writer, path

    def _guarded(self, call):
        try:
            return call()
        except OSError as e:
            full = device_full(e, os.path.dirname(self.path) or ".")
            if not full:
                raise
            raise NoSpaceLeftError(errno.ENOSPC, f"{full}: cannot write {self.path}") from e

    def write(self):
        self._guarded(self.writer.write)

    def close(self):
        self._guarded(self.writer.close)


def guard_writers(writers: List[EventWriter], output_dir: str) -> List[EventWriter]:
    """Wrap the file writers of Detectron2's ``default_writers(output_dir)`` (``JSONWriter``:
    ``<output_dir>/metrics.json``; ``TensorboardXWriter``: ``output_dir``) in
    :class:`DiskFullAwareWriter`; others (the console printer) are returned as they are."""
    guarded = []
    for w in writers:
        if isinstance(w, JSONWriter):
            guarded.append(DiskFullAwareWriter(w, os.path.join(output_dir, "metrics.json")))
        elif isinstance(w, TensorboardXWriter):
            guarded.append(DiskFullAwareWriter(w, output_dir))
        else:
            guarded.append(w)
    return guarded
