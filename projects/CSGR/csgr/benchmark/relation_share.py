"""What the criss-cross attention adds to CSGR's relation term, on a trained run's batches.

Per level the relation term compares ``CCA(z_t)`` with ``CCA(z_s)``, ``z`` the per-channel
normalised maps and ``CCA(x) = x + gamma * aggregate(x)`` (repeated ``recurrence`` times), whose
``gamma`` starts at 0. :func:`relation_share` runs a model's training forward on some batches,
reads the input and the output of each level's :class:`CrissCrossAttention` for teacher and
student (forward hooks: the attention's part is ``output - input``, whatever the recurrence), and
says how much of the compared difference the attention makes: with a share near 0 the term is,
in practice, the squared distance of the normalised maps themselves.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from detectron2.utils.events import EventStorage
from torch import nn

from ..layers import CrissCrossAttention

__all__ = [
    "HEADER",
    "RelationShare",
    "relation_modules",
    "relation_pairs",
    "relation_share",
    "shares_from_sums",
]

# (z, A) of one side of one level: the block's input and the attention's part, float64
Side = Tuple[torch.Tensor, torch.Tensor]


@dataclass
class RelationShare:
    """One level, sums over every image of the batches read.

    Attributes:
        level: FPN level name.
        gamma: the block's ``gamma``.
        term_share: the level's part of the relation term, ``||CCA(z_t) - CCA(z_s)||^2`` over
            its sum over the levels (each divided by the level's element count first, for a
            loss with ``rel_level_mean``).
        attention_of_features: ``||A_t|| / ||z_t||``, ``A = CCA(z) - z`` the attention's part.
        attention_of_difference: ``||A_t - A_s|| / ||z_t - z_s||``.
        loss_ratio: ``||CCA(z_t) - CCA(z_s)||^2 / ||z_t - z_s||^2``, the term with its attention
            over the term without it (1: the attention changes nothing); it equals
            ``1 + 2 * share * correlation + share^2`` with ``share`` = attention_of_difference.
        correlation: cosine of ``A_t - A_s`` with ``z_t - z_s``: negative where the attention
            hides part of the difference. With recurrence 1 and the block's convs as they are,
            no ``gamma`` could shrink the term by more than ``correlation^2`` of itself.
    """

    level: str
    gamma: float
    term_share: float
    attention_of_features: float
    attention_of_difference: float
    loss_ratio: float
    correlation: float

    def line(self) -> str:
        """The level as a row of :data:`HEADER`'s table."""
        return (
            f"| {self.level} | {self.gamma:+.4f} | {self.term_share:.3f} | "
            f"{self.attention_of_features:.4f} | {self.attention_of_difference:.4f} | "
            f"{self.loss_ratio:.4f} | {self.correlation:+.3f} |"
        )


HEADER = (
    "| level | gamma | share of the term | attention / features, teacher "
    "| attention / difference | loss with / without attention | correlation |\n"
    "|---|---|---|---|---|---|---|"
)


def relation_modules(model: nn.Module) -> Dict[str, CrissCrossAttention]:
    """The relation blocks of a Distiller's CSGR loss.

    Args:
        model: a Distiller (not wrapped in DDP).

    Returns:
        {level name: its block}, in the loss's order.

    Raises:
        ValueError: the model distils no CSGR relation term.
    """
    losses = getattr(model, "distill_losses", {})
    csgr = losses["CSGR"] if "CSGR" in losses else None
    relations = getattr(csgr, "relations", None)
    if not relations:
        raise ValueError(
            "relation_share: the model has no CSGR relation term (MODEL.DISTILL.METHODS must "
            f"hold 'CSGR'; it distils {list(losses)})"
        )
    return dict(relations.items())


def relation_pairs(
    model: nn.Module, data: list, modules: Optional[Dict[str, CrissCrossAttention]] = None
) -> Tuple[Dict[str, Tuple[Side, Side]], Dict[str, torch.Tensor]]:
    """One training forward of ``model`` on ``data``, reading every relation block.

    In :class:`CSGRLoss` each block is called on the teacher's map, then on the student's.
    Call it under ``torch.no_grad()`` and an ``EventStorage``; the model must be in training
    mode (only then does it compute its losses).

    Args:
        model: a Distiller with CSGR.
        data: a list of Detectron2 dataset dicts, as the train loader yields it.
        modules: :func:`relation_modules` of ``model``, where the caller has them.

    Returns:
        by level, ``((z_t, A_t), (z_s, A_s))``, each (N, C, H, W) float64 (``z`` the block's
        input, ``A`` its output minus its input); and the model's loss dict.
    """
    modules = modules if modules is not None else relation_modules(model)
    calls: Dict[str, List[Side]] = {k: [] for k in modules}

    def recorder(level):
        def hook(_module, inputs, output):
            x = inputs[0].detach().double()
            calls[level].append((x, output.detach().double() - x))

        return hook

    handles = [m.register_forward_hook(recorder(k)) for k, m in modules.items()]
    try:
        losses = model(data)
    finally:
        for h in handles:
            h.remove()
    for level, sides in calls.items():
        if len(sides) != 2:
            raise RuntimeError(
                f"relation_share: the {level} block ran {len(sides)} times in one step, "
                "expected 2 (teacher, then student)"
            )
    return {k: (sides[0], sides[1]) for k, sides in calls.items()}, losses


def shares_from_sums(
    sums: Dict[str, Dict[str, float]], gammas: Dict[str, float], level_mean: bool = False
) -> List[RelationShare]:
    """Ratios from the accumulated squared norms of each level.

    Args:
        sums: by level, ``feat`` ``||z_t||^2``, ``att`` ``||A_t||^2``, ``diff``
            ``||z_t - z_s||^2``, ``att_diff`` ``||A_t - A_s||^2``, ``out_diff``
            ``||CCA(z_t) - CCA(z_s)||^2``, ``dot`` ``<A_t - A_s, z_t - z_s>``; with
            ``level_mean`` also ``count``, the elements of ``z_t`` summed over.
        gammas: by level, the block's ``gamma``.
        level_mean: the loss averages each level (``CSGRLoss.rel_level_mean``): a level's part
            of the term is its ``out_diff / count``.

    Returns:
        one :class:`RelationShare` per level of ``sums``, in its order.
    """
    term = {k: s["out_diff"] / s["count"] if level_mean else s["out_diff"] for k, s in sums.items()}
    total = max(sum(term.values()), 1e-30)
    out = []
    for level, s in sums.items():
        feat, diff = max(s["feat"], 1e-30), max(s["diff"], 1e-30)
        out.append(
            RelationShare(
                level,
                gammas[level],
                term[level] / total,
                (s["att"] / feat) ** 0.5,
                (s["att_diff"] / diff) ** 0.5,
                s["out_diff"] / diff,
                s["dot"] / max((s["att_diff"] * s["diff"]) ** 0.5, 1e-30),
            )
        )
    return out


def relation_share(model: nn.Module, batches: Iterable[list]) -> List[RelationShare]:
    """Measure, on ``batches``, the attention's part of each level's relation term.

    The model runs its training forward (losses computed, no gradient, no optimizer step;
    BatchNorm layers in training mode do update their running statistics) and is left in the
    mode it had.

    Args:
        model: a Distiller with CSGR (one process, not wrapped in DDP).
        batches: lists of Detectron2 dataset dicts, as the train loader yields them.

    Returns:
        one :class:`RelationShare` per relation level, in the loss's order.
    """
    modules = relation_modules(model)
    keys = ("feat", "att", "diff", "att_diff", "out_diff", "dot", "count")
    sums = {k: dict.fromkeys(keys, 0.0) for k in modules}
    was_training = model.training
    model.train()
    try:
        with torch.no_grad(), EventStorage(0):
            for data in batches:
                pairs, _ = relation_pairs(model, data, modules)
                for level, ((z_t, a_t), (z_s, a_s)) in pairs.items():
                    s = sums[level]
                    s["feat"] += z_t.pow(2).sum().item()
                    s["att"] += a_t.pow(2).sum().item()
                    s["diff"] += (z_t - z_s).pow(2).sum().item()
                    s["att_diff"] += (a_t - a_s).pow(2).sum().item()
                    s["out_diff"] += (z_t + a_t - z_s - a_s).pow(2).sum().item()
                    s["dot"] += ((a_t - a_s) * (z_t - z_s)).sum().item()
                    s["count"] += z_t.numel()
    finally:
        model.train(was_training)
    gammas = {k: float(m.gamma.detach().item()) for k, m in modules.items()}
    level_mean = model.distill_losses["CSGR"].rel_level_mean
    return shares_from_sums(sums, gammas, level_mean)
