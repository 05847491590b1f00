"""Stopping training at the first NaN or infinite loss term, before it reaches the weights.

Detectron2's ``SimpleTrainer`` notices a non-finite *total* loss only when writing metrics
(after ``backward``), on the main process only. :func:`check_finite_losses` runs before
``backward``: every process stops at the same iteration (one all-reduce of a flag), and the
error names the non-finite terms, their values and the iteration, and the finite term that grew
most since its first value (a distillation term whose weight is too large for the data often
blows up first and drags the detection terms to NaN). No optimizer step has used them, so the
weights and the last checkpoint are those of the previous iteration.

A step can also leave finite losses but non-finite weights (a distillation term far larger than
the detection loss, no gradient clipping): the next forward then fails inside Detectron2
("Predicted boxes or scores contain Inf/NaN"). :func:`diverged_in_forward` turns that into the
same error, naming the previous iteration's terms. Both errors also name the distillation term
that dominated the detection terms at the start, a cause that does not show as growth.
"""

import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.distributed as dist
from detectron2.utils import comm

__all__ = [
    "NonFiniteLossError",
    "check_finite_losses",
    "largest_growth",
    "dominant_term",
    "diverged_in_forward",
]

# a finite term this many times its first value is named as the likely cause
GROWTH_TO_REPORT = 10.0


class NonFiniteLossError(FloatingPointError):
    """A loss term is NaN or infinite. The message names the terms and the iteration."""


def _any_rank(flag: torch.Tensor) -> bool:
    if comm.get_world_size() > 1:
        flag = flag.to(torch.int32)
        if dist.get_backend() == "nccl" and flag.device.type != "cuda":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)


def largest_growth(
    first: Dict[str, Tuple[int, float]], current: Dict[str, float]
) -> Optional[Tuple[str, int, float, float]]:
    """The finite term with the largest ``|current| / |first|``, if at least
    :data:`GROWTH_TO_REPORT`.

    Args:
        first: term -> (iteration, its first non-zero finite value).
        current: term -> value now.

    Returns:
        (term, first iteration, first value, value now), or None.
    """
    best, best_ratio = None, GROWTH_TO_REPORT
    for k, v in current.items():
        if k not in first or not math.isfinite(v):
            continue
        it, v0 = first[k]
        ratio = abs(v) / abs(v0)
        if ratio >= best_ratio:
            best, best_ratio = (k, it, v0, v), ratio
    return best


# the student detectors' own terms (Detectron2's GeneralizedRCNN and RetinaNet)
_DETECTION_TERMS = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}

_ADVICE = (
    " A distillation term this large usually means its weight is too large for this data: try "
    "MODEL.DISTILL.LOSS_SCALE.MODE calibrated, lower the method's weight, or clip the gradient "
    "(SOLVER.CLIP_GRADIENTS, CLIP_TYPE full_model)."
)


def dominant_term(current: Dict[str, float]) -> Optional[Tuple[str, float, float]]:
    """The largest finite distillation term, if larger than the detection terms together.

    Args:
        current: term -> value (the detection terms are :data:`_DETECTION_TERMS`).

    Returns:
        (term, its value, the detection terms' sum), or None.
    """
    detection = sum(abs(v) for k, v in current.items() if k in _DETECTION_TERMS)
    others = [
        (abs(v), k) for k, v in current.items() if k not in _DETECTION_TERMS and math.isfinite(v)
    ]
    if not others or detection == 0 or not math.isfinite(detection):
        return None
    value, name = max(others)
    return (name, value, detection) if value > detection else None


def _cause_notes(first: Optional[Dict[str, Tuple[int, float]]], current: Dict[str, float]) -> str:
    """The finite term that grew most since its first value, and the distillation term that
    dominated the detection terms at the start (first values), with the remedies if either is a
    distillation term."""
    if not first:
        return ""
    note, advise = "", False
    grown = largest_growth(first, current)
    if grown is not None:
        k, it, v0, v = grown
        note += f" Largest growth: {k} from {v0:.4g} (iteration {it}) to {v:.4g} (x{v / v0:.3g})."
        advise = k not in _DETECTION_TERMS
    found = dominant_term({k: v for k, (_, v) in first.items()})
    if found is not None:
        name, value, detection = found
        note += (
            f" At the start {name} was {value:.4g} (iteration {first[name][0]}), "
            f"{value / detection:.3g}x the detection terms together ({detection:.4g})."
        )
        advise = True
    return note + (_ADVICE if advise else "")


def check_finite_losses(
    loss_dict: Dict[str, torch.Tensor],
    iteration: int,
    hint: Optional[Callable[[], str]] = None,
    first_values: Optional[Dict[str, Tuple[int, float]]] = None,
) -> None:
    """Raise :class:`NonFiniteLossError` if a loss term is NaN or infinite on any process.

    Args:
        loss_dict: the model's losses by name (scalars).
        iteration: the current iteration, for the message.
        hint: returns text appended to the message (e.g. the last checkpoint).
        first_values: term -> (iteration, first non-zero finite value); updated in place with
            the terms seen for the first time, and used to name the term that grew most.

    Raises:
        NonFiniteLossError: on every process, naming this process's non-finite terms.
    """
    if not loss_dict:
        return
    names = list(loss_dict)
    values = torch.stack([loss_dict[k].detach().float().sum() for k in names])
    finite = torch.isfinite(values)
    if not _any_rank(~finite.all()):
        if first_values is not None and len(first_values) < len(names):
            for k, v in zip(names, values.tolist()):
                if k not in first_values and v != 0:
                    first_values[k] = (iteration, v)
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
    current = dict(zip(names, values))
    message += _cause_notes(first_values, current)
    message += (
        " Training stopped before backward: this iteration changed no weight and wrote no "
        "checkpoint."
    )
    if hint is not None:
        message += " " + hint()
    raise NonFiniteLossError(message)


def diverged_in_forward(
    error: FloatingPointError,
    iteration: int,
    last_losses: Optional[Dict[str, torch.Tensor]],
    first_values: Optional[Dict[str, Tuple[int, float]]] = None,
    hint: Optional[Callable[[], str]] = None,
) -> NonFiniteLossError:
    """The error for a forward that raised ``error`` (Detectron2's "Predicted boxes or scores
    contain Inf/NaN") because the previous step made the weights non-finite: it names the
    previous iteration's terms, the term that grew most and the distillation term that dominated
    the detection terms at the start.

    Args:
        error: what the forward raised.
        iteration: the iteration whose forward failed.
        last_losses: the previous iteration's loss terms (scalars), or None at the first.
        first_values: as in :func:`check_finite_losses`, to name the term that grew most.
        hint: returns text appended to the message (e.g. the last checkpoint).

    Returns:
        A :class:`NonFiniteLossError`.
    """
    message = f"Training diverged at iteration {iteration}: {error}"
    if last_losses:
        current = {k: float(v.detach().float().sum()) for k, v in last_losses.items()}
        terms = ", ".join(f"{k}={v:.4g}" for k, v in current.items())
        message += (
            f" The step of iteration {iteration - 1} made the weights non-finite; its loss "
            f"terms were: {terms}."
        )
        message += _cause_notes(first_values, current)
    if hint is not None:
        message += " " + hint()
    return NonFiniteLossError(message)
