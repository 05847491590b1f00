"""The ``csgr.*`` loggers in Detectron2's console output and ``log.txt``.

Detectron2's ``default_setup`` configures the "detectron2" and "fvcore" loggers only; without
:func:`setup_csgr_logger`, messages of ``csgr.*`` (the box-check summary, skipped images, the
dataset checks) reach stderr without a timestamp, never ``log.txt``, and INFO ones not at all.
"""

import logging
from typing import Optional

from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

__all__ = ["setup_csgr_logger"]


def setup_csgr_logger(output_dir: Optional[str] = None) -> logging.Logger:
    """Configure the "csgr" logger as Detectron2 configures its own, at INFO level.

    Same format (with timestamps) and files as ``detectron2.utils.logger.setup_logger``: the
    console on the main process, ``<output_dir>/log.txt`` (``log.txt.rank<N>`` on the other
    ranks). Records also propagate to the root logger (whose handlers, if a program adds any,
    see them too). Calling it again with the same ``output_dir`` adds no handler.

    Args:
        output_dir: the run's ``OUTPUT_DIR``, or ``None`` for the console only.

    Returns:
        The "csgr" logger.
    """
    logger = setup_logger(
        output_dir or None, distributed_rank=comm.get_rank(), name="csgr", enable_propagation=True
    )
    logger.setLevel(logging.INFO)
    return logger
