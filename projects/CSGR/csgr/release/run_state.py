"""Whether a checkpoint ends its run: a release of an unfinished run must be asked for.

Detectron2 writes ``model_final.pth`` when training ends (``iteration = MAX_ITER - 1``) and
``model_<iter>.pth`` every ``CHECKPOINT_PERIOD`` before; a run folder without
``model_final.pth`` is a run that stopped or still trains.
"""

import logging
import os
from typing import Optional

from ..errors import UnfinishedRunError

__all__ = ["is_finished", "require_finished"]

logger = logging.getLogger(__name__)


def is_finished(checkpoint_path: str, iteration: Optional[int], max_iter: int) -> Optional[bool]:
    """Whether the checkpoint was written at the end of training (``None``: it records no
    iteration, e.g. a model-zoo file)."""
    if os.path.basename(checkpoint_path) == "model_final.pth":
        return True
    if iteration is None:
        return None
    return int(iteration) + 1 >= max_iter


def require_finished(
    checkpoint_path: str, iteration: Optional[int], max_iter: int, allow_unfinished: bool = False
) -> Optional[bool]:
    """:func:`is_finished`, refusing an unfinished run unless ``allow_unfinished``.

    Raises:
        UnfinishedRunError: naming the checkpoint, its iteration and ``SOLVER.MAX_ITER``.
    """
    finished = is_finished(checkpoint_path, iteration, max_iter)
    if finished is not False:
        return finished
    what = (
        f"{checkpoint_path} is a checkpoint of an unfinished run: iteration {int(iteration) + 1} "
        f"of SOLVER.MAX_ITER {max_iter}, and its folder has no model_final.pth"
    )
    if not allow_unfinished:
        raise UnfinishedRunError(
            f"{what}. Finish the training (train_net.py --resume) or release this checkpoint "
            "anyway with --allow-unfinished"
        )
    logger.warning(f"Releasing {what} (--allow-unfinished)")
    return finished
