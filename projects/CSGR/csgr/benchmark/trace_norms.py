"""Watching a training's parameter and feature sizes iteration by iteration.

When a run diverges, the loss terms say *which* term grew; :func:`trace_norms` says *where*: it
runs a config's first iterations exactly as ``tools/train_net.py`` would (same Trainer, data,
optimizer, LR schedule, NaN guard; no evaluation, no checkpoint) and after every step records,
for each group of parameters named by a prefix, the norm of the weights and of their gradient,
and the RMS of the student's FPN outputs per level.
"""

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import torch
from detectron2.utils.events import EventStorage
from torch.nn.utils import get_total_norm

from ..engine.nan_guard import NonFiniteLossError

__all__ = ["TraceRow", "trace_norms"]


@dataclass
class TraceRow:
    """One iteration: its LR, loss terms, per-prefix weight / gradient norms, per-level RMS of
    the student's FPN outputs; ``diverged`` holds the error of the iteration that stopped."""

    iteration: int
    lr: float = math.nan
    losses: Dict[str, float] = field(default_factory=dict)
    weight_norm: Dict[str, float] = field(default_factory=dict)
    grad_norm: Dict[str, float] = field(default_factory=dict)
    feature_rms: Dict[str, float] = field(default_factory=dict)
    diverged: str = ""

    def line(self) -> str:
        """``it 23  lr 0.0046  loss_x 1.55 ... | <prefix> |w| 3.05 |g| 624 ... | rms p2 1.97 ...``"""
        if self.diverged:
            return f"it {self.iteration}  DIVERGED: {self.diverged}"
        parts = [f"it {self.iteration}  lr {self.lr:.3g}"]
        parts.append("  ".join(f"{k} {v:.3g}" for k, v in self.losses.items()))
        for prefix, w in self.weight_norm.items():
            parts.append(f"{prefix} |w| {w:.3g} |g| {self.grad_norm[prefix]:.3g}")
        parts.append("rms " + " ".join(f"{k} {v:.3g}" for k, v in self.feature_rms.items()))
        return " | ".join(parts)


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    """The L2 norm of all ``tensors`` as one vector (0 for none)."""
    return float(get_total_norm([t.detach() for t in tensors]))


def _parameter_groups(model, prefixes: Sequence[str]) -> Dict[str, List[torch.nn.Parameter]]:
    named = list(model.named_parameters())
    groups = {p: [t for n, t in named if n.startswith(p) and t.requires_grad] for p in prefixes}
    empty = [p for p, ts in groups.items() if not ts]
    if empty:
        tops = sorted({n.split(".")[0] + "." + n.split(".")[1] for n, _ in named if "." in n})
        raise ValueError(
            f"no trainable parameter name starts with {empty}; names start with e.g. {tops}"
        )
    return groups


def trace_norms(
    trainer, iterations: int, prefixes: Sequence[str], emit: Callable[[str], None] = print
) -> List[TraceRow]:
    """Run ``trainer``'s first ``iterations`` steps and record sizes after each.

    Args:
        trainer: a :class:`csgr.engine.Trainer` (one process), weights loaded.
        iterations: steps to run (fewer if training diverges first).
        prefixes: parameter-name prefixes, each traced as one group (e.g. ``distill_losses``,
            ``student.backbone``).
        emit: receives each row's :meth:`TraceRow.line` as it is recorded.

    Returns:
        one row per iteration run; the last has ``diverged`` set if training diverged.

    Raises:
        ValueError: a prefix names no trainable parameter (the message lists names that exist).
    """
    model = trainer.model
    groups = _parameter_groups(model, prefixes)
    detector = getattr(model, "student", model)
    rms: Dict[str, float] = {}

    def record_features(_module, _inputs, outputs):
        rms.clear()
        for level, x in outputs.items():
            rms[level] = float(x.detach().float().pow(2).mean().sqrt())

    handle = detector.backbone.register_forward_hook(record_features)
    rows: List[TraceRow] = []
    loop = trainer._trainer
    try:
        with EventStorage(0) as storage:
            for it in range(iterations):
                storage.iter = trainer.iter = loop.iter = it
                row = TraceRow(it, lr=trainer.optimizer.param_groups[0]["lr"])
                try:
                    loop.run_step()
                except NonFiniteLossError as e:
                    row.diverged = str(e)
                else:
                    row.losses = {
                        k: v for k, (v, _) in storage.latest().items() if k.startswith("loss")
                    }
                    for prefix, params in groups.items():
                        row.weight_norm[prefix] = _norm(params)
                        row.grad_norm[prefix] = _norm(
                            [p.grad for p in params if p.grad is not None]
                        )
                    row.feature_rms = dict(rms)
                    trainer.scheduler.step()
                rows.append(row)
                emit(row.line())
                if row.diverged:
                    break
    finally:
        handle.remove()
    return rows
