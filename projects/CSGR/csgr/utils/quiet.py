"""Narrow filters for dependency warnings a user cannot act on.

Every start of a tool otherwise prints PyTorch's ``torch.jit.script is deprecated``
FutureWarning (Detectron2 scripts a few helpers at import), on the first ROI pooling PyTorch's
``is_fx_tracing will return true for both ...`` message (Detectron2 asks ``is_fx_tracing()``),
on the first anchors ``torch.meshgrid: in an upcoming release, it will be required to pass the
indexing argument`` (Detectron2's anchor generator) and, on a machine without CUDA, ``No CUDA
runtime is found, using CUDA_HOME=...`` (Detectron2's environment summary at the start of
``train_net``). Each filter matches one message from one module; every other warning,
those of a user's own code included, is shown as usual.

Set ``CSGR_ALL_WARNINGS=1`` to see everything. Python's own ``-W`` options and
``PYTHONWARNINGS`` also turn the warnings filters here off, so an explicit choice of the user
always wins.
"""

import logging
import os
import sys
import warnings

__all__ = ["QUIET_WARNINGS", "QUIET_LOG_MESSAGES", "install_quiet_filters", "quiet_enabled"]

# (message regex, category, module regex) for warnings.filterwarnings
QUIET_WARNINGS = (
    (r"`torch\.jit\.script` is deprecated", FutureWarning, r"torch\.jit\._script"),
    (r"`torch\.jit\.script` is not supported in Python", FutureWarning, r"torch\.jit\._script"),
    # Detectron2's anchor generator calls torch.meshgrid without ``indexing``
    (r"torch\.meshgrid: in an upcoming release", UserWarning, r"torch\.functional"),
)
# logger name -> message prefix, for messages sent through logging instead of warnings
QUIET_LOG_MESSAGES = {
    "torch.fx._symbolic_trace": "is_fx_tracing will return true for both fx.symbolic_trace",
    # Detectron2's environment summary imports torch.utils.cpp_extension, which looks for CUDA
    "torch.utils.cpp_extension": "No CUDA runtime is found",
}


class _DropMessages(logging.Filter):
    """Drops log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_enabled() -> bool:
    """False when the user asked for every warning (``CSGR_ALL_WARNINGS=1``, ``-W``,
    ``PYTHONWARNINGS``)."""
    if os.environ.get("CSGR_ALL_WARNINGS", "").strip() not in ("", "0"):
        return False
    return not sys.warnoptions


def install_quiet_filters() -> bool:
    """Install the filters of :data:`QUIET_WARNINGS` and :data:`QUIET_LOG_MESSAGES`, once.

    Returns:
        True when the filters are in place, False when the user asked to see everything.
    """
    if not quiet_enabled():
        return False
    for message, category, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, prefix in QUIET_LOG_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessages(prefix))
    return True
