"""Saving every process's random number generator states with each checkpoint.

A resumed run draws the same augmentations (NumPy, Python ``random``) and the same anchor and
proposal samples (torch) as the uninterrupted run only if it restores the RNG states of the
moment the checkpoint was written. :class:`RNGStateHook` gathers them from every rank at each
checkpoint iteration (it must run before ``PeriodicCheckpointer``), stores them in the
checkpoint through the trainer's ``hooks`` state, and sets them back at the start of the next
iteration, both in the run that wrote the checkpoint and in a run resumed from it. Restoring
them in the uninterrupted run too keeps anything run between two iterations (evaluation,
PreciseBN) from changing the random streams of training, so that both runs agree.
"""

import logging
import random
from typing import List, Optional

import numpy as np
import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

__all__ = ["RNGStateHook", "get_rng_state", "set_rng_state"]

logger = logging.getLogger(__name__)


def get_rng_state() -> dict:
    """This process's Python, NumPy, torch (and CUDA) RNG states, as tensors and plain types
    (what ``torch.load(weights_only=True)`` accepts)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states from :func:`get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGStateHook(HookBase):
    """Checkpoints the RNG states of all ranks and restores them on resume (see module doc).

    Args:
        period: the checkpoint period (``SOLVER.CHECKPOINT_PERIOD``); states are also captured
            after the last iteration, as ``PeriodicCheckpointer`` saves ``model_final``.
    """

    def __init__(self, period: int):
        self._period = int(period)
        self._states: Optional[List[dict]] = None  # every rank's, from the last capture
        self._pending: Optional[dict] = None  # this rank's, to set at the next before_step

    def after_step(self):
        it = self.trainer.iter
        if (it + 1) % self._period == 0 or it >= self.trainer.max_iter - 1:
            mine = get_rng_state()
            self._states = comm.all_gather(mine)
            self._pending = mine

    def before_step(self):
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None

    def state_dict(self) -> dict:
        return {"states": self._states} if self._states else {}

    def load_state_dict(self, state_dict: dict) -> None:
        states = state_dict.get("states")
        world = comm.get_world_size()
        if not states or len(states) != world:
            logger.warning(
                f"The checkpoint holds RNG states of {len(states or [])} processes, this run has "
                f"{world}: not restored (augmentations and sampling will differ from an "
                "uninterrupted run)"
            )
            return
        self._pending = states[comm.get_rank()]
