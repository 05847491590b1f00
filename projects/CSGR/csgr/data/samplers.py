"""A training sampler whose index stream resumes where an interrupted run stopped.

Detectron2's ``TrainingSampler`` restarts its (seeded) infinite stream from the beginning when a
run is resumed, so a resumed run sees the first batches again rather than those the interrupted
run would have seen next. :class:`ResumableTrainingSampler` skips the indices already used, and
saves its seed in the checkpoint so that the stream is the same even when ``SEED`` is random.
"""

import itertools
import logging

from detectron2.data.samplers import TrainingSampler

__all__ = ["ResumableTrainingSampler"]

logger = logging.getLogger(__name__)


class ResumableTrainingSampler(TrainingSampler):
    """``TrainingSampler`` that can start after the first ``start_iter`` batches of its stream.

    The stream is the same as ``TrainingSampler``'s for the same seed. Skipping is exact when every
    batch takes exactly ``batch_size`` indices from this rank's stream: always without
    ``DATALOADER.ASPECT_RATIO_GROUPING``, and with it when all images fall in one aspect-ratio
    group (all wider than tall, or all not); otherwise images waiting in a group when the run
    stopped are not seen again (at most ``batch_size - 1`` per group).
    """

    def __init__(self, size: int, shuffle: bool = True, seed=None):
        """
        Args:
            size, shuffle, seed: as :class:`detectron2.data.samplers.TrainingSampler`.
        """
        super().__init__(size, shuffle=shuffle, seed=seed)
        self._start = 0

    @property
    def seed(self) -> int:
        return self._seed

    def set_start_iter(self, start_iter: int, batch_size: int) -> None:
        """Start the stream after ``start_iter`` batches of ``batch_size`` (per-rank) indices.

        Must be called before the data loader's iterator is created (its first ``next``).
        """
        if start_iter < 0 or batch_size < 1:
            raise ValueError(f"start_iter={start_iter}, batch_size={batch_size}")
        self._start = start_iter * batch_size
        if self._start:
            logger.info(
                f"Training sampler (seed {self._seed}) resumes after {start_iter} batches "
                f"({self._start} indices of this rank's stream)"
            )

    def __iter__(self):
        yield from itertools.islice(super().__iter__(), self._start, None)

    def state_dict(self) -> dict:
        """The seed, saved with each checkpoint."""
        return {"seed": int(self._seed)}

    def load_state_dict(self, state: dict) -> None:
        """Take the seed of the checkpoint's run."""
        self._seed = int(state["seed"])
