"""Stopping training at the first NaN or infinite loss term, before it reaches the weights.

Detectron2's ``SimpleTrainer`` notices a non-finite *total* loss only when writing metrics
(after ``backward``), on the main process only. :func:`check_finite_losses` runs before
``backward``: every process stops at the same iteration (one all-reduce of a flag), and the
error names the non-finite terms, their values and the iteration. No optimizer step has used
them, so the weights and the last checkpoint are those of the previous iteration.
"""

from typing import Callable, Dict, Optional

import torch
import torch.distributed as dist
from detectron2.utils import comm

__all__ = ["NonFiniteLossError", "check_finite_losses"]


class NonFiniteLossError(FloatingPointError):
    """A loss term is NaN or infinite. The message names the terms and the iteration."""


def _any_rank(flag: torch.Tensor) -> bool:
    if comm.get_world_size() > 1:
        flag = flag.to(torch.int32)
        if dist.get_backend() == "nccl" and flag.device.type != "cuda":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)


def check_finite_losses(
    loss_dict: Dict[str, torch.Tensor], iteration: int, hint: Optional[Callable[[], str]] = None
) -> None:
    """Raise :class:`NonFiniteLossError` if a loss term is NaN or infinite on any process.

    Args:
        loss_dict: the model's losses by name (scalars).
        iteration: the current iteration, for the message.
        hint: returns text appended to the message (e.g. the last checkpoint).

    Raises:
        NonFiniteLossError: on every process, naming this process's non-finite terms.
    """
    if not loss_dict:
        return
    names = list(loss_dict)
    values = torch.stack([loss_dict[k].detach().float().sum() for k in names])
    finite = torch.isfinite(values)
    if not _any_rank(~finite.all()):
        return
    values, finite = values.tolist(), finite.tolist()
    bad = ", ".join(f"{k}={v}" for k, v, ok in zip(names, values, finite) if not ok)
    good = ", ".join(f"{k}={v:.4g}" for k, v, ok in zip(names, values, finite) if ok) or "none"
    rank = comm.get_rank()
    if bad:
        where = f" on rank {rank}" if comm.get_world_size() > 1 else ""
        message = f"Non-finite loss at iteration {iteration}{where}: {bad} (other terms: {good})."
    else:
        message = (
            f"Non-finite loss at iteration {iteration} on another rank (rank {rank} has only "
            f"finite terms: {good})."
        )
    message += (
        " Training stopped before backward: this iteration changed no weight and wrote no "
        "checkpoint."
    )
    if hint is not None:
        message += " " + hint()
    raise NonFiniteLossError(message)
