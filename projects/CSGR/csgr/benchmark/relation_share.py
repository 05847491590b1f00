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
from typing import Dict, Iterable, List

import torch
from detectron2.utils.events import EventStorage
from torch import nn

from ..layers import CrissCrossAttention

__all__ = ["RelationShare", "relation_share", "shares_from_sums", "relation_modules"]


@dataclass
class RelationShare:
    """One level, sums over every image of the batches read.

    Attributes:
        level: FPN level name.
        gamma: the block's ``gamma``.
        attention_of_features: ``||A_t|| / ||z_t||``, ``A = CCA(z) - z`` the attention's part.
        attention_of_difference: ``||A_t - A_s|| / ||z_t - z_s||``.
        loss_ratio: ``||CCA(z_t) - CCA(z_s)||^2 / ||z_t - z_s||^2``, the term with its attention
            over the term without it (1: the attention changes nothing); it equals
            ``1 + 2 * share * correlation + share^2`` with ``share`` = attention_of_difference.
        correlation: cosine of ``A_t - A_s`` with ``z_t - z_s``: negative where the attention
            hides part of the difference; with the best ``gamma`` the term could shrink by at
            most ``correlation^2`` of itself.
    """

    level: str
    gamma: float
    attention_of_features: float
    attention_of_difference: float
    loss_ratio: float
    correlation: float

    def line(self) -> str:
        return (
            f"| {self.level} | {self.gamma:+.4f} | {self.attention_of_features:.4f} | "
            f"{self.attention_of_difference:.4f} | {self.loss_ratio:.4f} | {self.correlation:+.3f} |"
        )


HEADER = (
    "| level | gamma | attention / features, teacher | attention / difference "
    "| loss with / without attention | correlation |\n|---|---|---|---|---|---|"
)


def relation_modules(model: nn.Module) -> Dict[str, CrissCrossAttention]:
    """The relation blocks of a Distiller's CSGR loss, by level.

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


def shares_from_sums(
    sums: Dict[str, Dict[str, float]], gammas: Dict[str, float]
) -> List[RelationShare]:
    """Ratios from the accumulated squared norms of each level.

    Args:
        sums: by level, ``feat`` ``||z_t||^2``, ``att`` ``||A_t||^2``, ``diff``
            ``||z_t - z_s||^2``, ``att_diff`` ``||A_t - A_s||^2``, ``out_diff``
            ``||CCA(z_t) - CCA(z_s)||^2``, ``dot`` ``<A_t - A_s, z_t - z_s>``.
        gammas: by level, the block's ``gamma``.
    """
    out = []
    for level, s in sums.items():
        feat, diff = max(s["feat"], 1e-30), max(s["diff"], 1e-30)
        out.append(
            RelationShare(
                level,
                gammas[level],
                (s["att"] / feat) ** 0.5,
                (s["att_diff"] / diff) ** 0.5,
                s["out_diff"] / diff,
                s["dot"] / max((s["att_diff"] * s["diff"]) ** 0.5, 1e-30),
            )
        )
    return out


def relation_share(model: nn.Module, batches: Iterable[list]) -> List[RelationShare]:
    """Measure, on ``batches``, the attention's part of each level's relation term.

    The model runs its training forward (losses computed, no gradient, nothing stepped); in
    :class:`CSGRLoss` each block is called on the teacher's map, then on the student's.

    Args:
        model: a Distiller with CSGR (one process, not wrapped in DDP).
        batches: lists of Detectron2 dataset dicts, as the train loader yields them.

    Returns:
        one :class:`RelationShare` per relation level, in the loss's order.
    """
    modules = relation_modules(model)
    calls: Dict[str, list] = {k: [] for k in modules}

    def recorder(level):
        def hook(_module, inputs, output):
            x = inputs[0].detach().double()
            calls[level].append((x, output.detach().double() - x))

        return hook

    handles = [m.register_forward_hook(recorder(k)) for k, m in modules.items()]
    keys = ("feat", "att", "diff", "att_diff", "out_diff", "dot")
    sums = {k: dict.fromkeys(keys, 0.0) for k in modules}
    was_training = model.training
    model.train()
    try:
        with torch.no_grad(), EventStorage(0):
            for data in batches:
                for level in modules:
                    calls[level].clear()
                model(data)
                for level, pairs in calls.items():
                    if len(pairs) != 2:
                        raise RuntimeError(
                            f"relation_share: the {level} block ran {len(pairs)} times in one "
                            "step, expected 2 (teacher, then student)"
                        )
                    (z_t, a_t), (z_s, a_s) = pairs
                    s = sums[level]
                    s["feat"] += z_t.pow(2).sum().item()
                    s["att"] += a_t.pow(2).sum().item()
                    s["diff"] += (z_t - z_s).pow(2).sum().item()
                    s["att_diff"] += (a_t - a_s).pow(2).sum().item()
                    s["out_diff"] += (z_t + a_t - z_s - a_s).pow(2).sum().item()
                    s["dot"] += ((a_t - a_s) * (z_t - z_s)).sum().item()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    gammas = {k: float(m.gamma.detach().item()) for k, m in modules.items()}
    return shares_from_sums(sums, gammas)
