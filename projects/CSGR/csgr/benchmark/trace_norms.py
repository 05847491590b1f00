"""Watching a training's parameter and feature sizes iteration by iteration.

When a run diverges, the loss terms say *which* term grew; :func:`trace_norms` says *where*: it
runs a config's first iterations exactly as ``tools/train_net.py`` would (same Trainer, data,
optimizer, LR schedule, NaN guard; no evaluation, no checkpoint) and after every step records,
for each group of parameters named by a prefix, the norm of the weights and of their gradient,
and the RMS of the student's FPN outputs per level.

With ``per_term_every`` it also says *which loss term* pulls where: every that many iterations,
the gradient norm of each loss term alone, on each parameter group and on each of the student's
FPN outputs (``torch.autograd.grad`` of the term, on the step's own graph, before the step's
backward; the step itself is unchanged).
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
    the student's FPN outputs; ``diverged`` holds the error of the iteration that stopped.

    ``term_grad_norm`` (iterations where per-term norms were asked for, else empty): by loss term,
    the norm of that term's gradient on each prefix's parameters and on each student FPN level
    (keyed ``fpn.<level>``); 0 where the term does not reach them.
    """

    iteration: int
    lr: float = math.nan
    losses: Dict[str, float] = field(default_factory=dict)
    weight_norm: Dict[str, float] = field(default_factory=dict)
    grad_norm: Dict[str, float] = field(default_factory=dict)
    feature_rms: Dict[str, float] = field(default_factory=dict)
    term_grad_norm: Dict[str, Dict[str, float]] = field(default_factory=dict)
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
        lines = [" | ".join(parts)]
        for term, norms in self.term_grad_norm.items():
            lines.append(
                f"    |g| of {term}: " + "  ".join(f"{k} {v:.3g}" for k, v in norms.items())
            )
        return "\n".join(lines)


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


def _term_grad_norms(
    loss_dict: Dict[str, torch.Tensor],
    groups: Dict[str, List[torch.nn.Parameter]],
    features: Dict[str, torch.Tensor],
) -> Dict[str, Dict[str, float]]:
    """The gradient norm of each loss term alone on each group and each feature map.

    Args:
        loss_dict: the model's loss terms of this step, graphs alive.
        groups: prefix -> parameters (a parameter may be in several groups).
        features: level -> the student's FPN output of this step (in the graph).

    Returns:
        term -> {prefix or ``fpn.<level>``: norm}, one ``autograd.grad`` (a partial backward,
        graph retained) per term that requires grad.
    """
    unique = list({id(t): t for ts in groups.values() for t in ts}.values())
    slot = {id(t): i for i, t in enumerate(unique)}
    levels = [k for k, x in features.items() if x.requires_grad]
    inputs = unique + [features[k] for k in levels]
    out: Dict[str, Dict[str, float]] = {}
    for term, value in loss_dict.items():
        if not value.requires_grad:
            continue
        grads = torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
        norms = {}
        for prefix, params in groups.items():
            norms[prefix] = _norm(
                [grads[slot[id(p)]] for p in params if grads[slot[id(p)]] is not None]
            )
        for i, level in enumerate(levels):
            g = grads[len(unique) + i]
            norms[f"fpn.{level}"] = 0.0 if g is None else _norm([g])
        out[term] = norms
    return out


def trace_norms(
    trainer,
    iterations: int,
    prefixes: Sequence[str],
    emit: Callable[[str], None] = print,
    per_term_every: int = 0,
) -> List[TraceRow]:
    """Run ``trainer``'s first ``iterations`` steps and record sizes after each.

    Args:
        trainer: a :class:`csgr.engine.Trainer` (one process), weights loaded.
        iterations: steps to run (fewer if training diverges first).
        prefixes: parameter-name prefixes, each traced as one group (e.g. ``distill_losses``,
            ``student.backbone``).
        emit: receives each row's :meth:`TraceRow.line` as it is recorded.
        per_term_every: every this many iterations (iteration 0 included), also the gradient
            norm of each loss term alone on each group and each student FPN level
            (:attr:`TraceRow.term_grad_norm`); 0: never. Costs one partial backward per term on
            those iterations; the training step is the same either way.

    Returns:
        one row per iteration run; the last has ``diverged`` set if training diverged.

    Raises:
        ValueError: a prefix names no trainable parameter (the message lists names that exist).
    """
    model = trainer.model
    groups = _parameter_groups(model, prefixes)
    detector = getattr(model, "student", model)
    rms: Dict[str, float] = {}
    features: Dict[str, torch.Tensor] = {}
    per_term: Dict[str, Dict[str, float]] = {}
    due = [False]  # whether this iteration measures the terms' gradients

    def record_features(_module, _inputs, outputs):
        rms.clear()
        features.clear()
        for level, x in outputs.items():
            rms[level] = float(x.detach().float().pow(2).mean().sqrt())
            if due[0]:
                features[level] = x

    def record_term_grads(_module, _inputs, loss_dict):
        if due[0] and isinstance(loss_dict, dict):
            per_term.update(_term_grad_norms(loss_dict, groups, features))
            features.clear()

    handles = [detector.backbone.register_forward_hook(record_features)]
    if per_term_every > 0:
        handles.append(model.register_forward_hook(record_term_grads))
    rows: List[TraceRow] = []
    loop = trainer._trainer
    try:
        with EventStorage(0) as storage:
            for it in range(iterations):
                storage.iter = trainer.iter = loop.iter = it
                row = TraceRow(it, lr=trainer.optimizer.param_groups[0]["lr"])
                due[0] = per_term_every > 0 and it % per_term_every == 0
                per_term.clear()
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
                    row.term_grad_norm = dict(per_term)
                    trainer.scheduler.step()
                rows.append(row)
                emit(row.line())
                if row.diverged:
                    break
    finally:
        for handle in handles:
            handle.remove()
    return rows
