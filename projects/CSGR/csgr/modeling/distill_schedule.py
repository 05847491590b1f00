"""When the distillation terms act: a factor on every method's terms by training iteration.

The published recipes distil from the first iteration (the factor is 1 throughout). A schedule
holds the terms at 0 until ``start_iter`` and then ramps their factor linearly to 1 over
``ramp_iters`` iterations, so the student's detection heads train on their own loss first:

* ``it < start_iter``: 0
* ``start_iter <= it < start_iter + ramp_iters``: ``(it - start_iter + 1) / ramp_iters``
* later: 1

The factor is a function of the trainer's iteration (``EventStorage.iter``), so a resumed run
continues the schedule where it stopped; it multiplies the terms after any loss scale.
"""

from typing import Optional

from detectron2.utils.events import get_event_storage

__all__ = ["DistillSchedule"]


class DistillSchedule:
    """Per-iteration factor on the distillation terms (see the module docstring).

    Args:
        start_iter: first iteration whose terms are not 0 (>= 0).
        ramp_iters: iterations over which the factor rises linearly to 1 from ``start_iter``
            (>= 0; 0: the factor jumps to 1 at ``start_iter``).
    """

    def __init__(self, start_iter: int = 0, ramp_iters: int = 0):
        self.check_settings(start_iter, ramp_iters)
        self.start_iter = int(start_iter)
        self.ramp_iters = int(ramp_iters)

    @staticmethod
    def check_settings(start_iter: int, ramp_iters: int) -> None:
        """Raise ValueError naming the bad setting (``MODEL.DISTILL.SCHEDULE.*``)."""
        if start_iter < 0:
            raise ValueError(
                f"MODEL.DISTILL.SCHEDULE.START_ITER must be >= 0 (or -1: the end of the LR "
                f"warm-up), got {start_iter}"
            )
        if ramp_iters < 0:
            raise ValueError(f"MODEL.DISTILL.SCHEDULE.RAMP_ITERS must be >= 0, got {ramp_iters}")

    @classmethod
    def from_settings(
        cls, start_iter: int, ramp_iters: int, lr_warmup_iters: int
    ) -> Optional["DistillSchedule"]:
        """The schedule of ``MODEL.DISTILL.SCHEDULE``, or None when it is the constant 1.

        Args:
            start_iter: ``START_ITER``; -1 stands for the end of the LR warm-up.
            ramp_iters: ``RAMP_ITERS``.
            lr_warmup_iters: ``SOLVER.WARMUP_ITERS``.
        """
        if start_iter == -1:
            start_iter = lr_warmup_iters
        schedule = cls(start_iter, ramp_iters)
        return None if schedule.is_constant else schedule

    @property
    def is_constant(self) -> bool:
        """Whether the factor is 1 at every iteration (the published recipes)."""
        return self.start_iter == 0 and self.ramp_iters <= 1

    def factor(self, iteration: int) -> float:
        """The factor on the distillation terms at a (0-based) training iteration."""
        if iteration < self.start_iter:
            return 0.0
        if self.ramp_iters == 0:
            return 1.0
        return min(1.0, (iteration - self.start_iter + 1) / self.ramp_iters)

    def current_factor(self) -> float:
        """The factor at the trainer's iteration (``EventStorage.iter``, so only inside an
        ``EventStorage``, as the student's own training forward), logged as ``distill_weight``."""
        storage = get_event_storage()
        factor = self.factor(storage.iter)
        storage.put_scalar("distill_weight", factor, smoothing_hint=False)
        return factor
