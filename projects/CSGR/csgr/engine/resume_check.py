"""Refusing ``--resume`` from a checkpoint written under other distillation methods.

Resuming after changing ``MODEL.DISTILL.METHODS`` would otherwise go one of two wrong ways: where
the trainable modules differ in size, PyTorch's ``Optimizer.load_state_dict`` fails with "loaded
state dict contains a parameter group that doesn't match the size of optimizer's group", naming
neither the checkpoint nor the cause; where they do not (a method without parameters, such as
PKD, added or removed), the run resumes silently with a loss it did not train with, or with new,
untrained modules whose absence Detectron2 only logs. Checkpoints therefore store the methods
(:data:`METHODS_KEY`), and :func:`resume_mismatch` compares them, and the distillation modules'
weights, with the model's before anything is loaded.
"""

from typing import Iterable, List, Optional

__all__ = [
    "METHODS_KEY",
    "is_optimizer_mismatch",
    "distill_methods",
    "resume_mismatch",
    "config_changed_message",
]

# Checkpoint entry holding the Distiller's methods (MODEL.DISTILL.METHODS) in their order.
METHODS_KEY = "distill_methods"
_PREFIX = "distill_losses."
_SHOWN = 5


def is_optimizer_mismatch(error: Exception) -> bool:
    """Whether ``error`` is PyTorch's refusal of an optimizer state of other parameters."""
    return isinstance(error, ValueError) and "parameter group" in str(error)


def distill_methods(model) -> Optional[List[str]]:
    """The distillation methods a model trains with (a Distiller's ``distill_losses``), or None
    for a plain detector."""
    losses = getattr(model, "distill_losses", None)
    return None if losses is None else list(losses.keys())


def _methods_of_keys(keys: Iterable[str]) -> List[str]:
    """The methods with weights among ``keys`` (methods without parameters do not show)."""
    return sorted({k.split(".")[1] for k in keys if k.startswith(_PREFIX)})


def _shown(keys: List[str]) -> str:
    more = len(keys) - _SHOWN
    return ", ".join(keys[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def resume_mismatch(
    saved_methods: Optional[List[str]],
    built_methods: Optional[List[str]],
    checkpoint_keys: Iterable[str],
    model_keys: Iterable[str],
) -> List[str]:
    """What keeps a checkpoint from being resumed by a model ([] if nothing).

    Args:
        saved_methods: the checkpoint's :data:`METHODS_KEY` (None: not stored, e.g. a
            checkpoint written before the methods were stored, or by a plain detector).
        built_methods: :func:`distill_methods` of the model.
        checkpoint_keys / model_keys: the weight names of the checkpoint and of the model.
    """
    saved = {k for k in checkpoint_keys if k.startswith(_PREFIX)}
    built = {k for k in model_keys if k.startswith(_PREFIX)}
    if None not in (saved_methods, built_methods) and saved_methods != built_methods:
        return [
            f"the checkpoint was trained with the methods {saved_methods}, the config's "
            f"MODEL.DISTILL.METHODS is {built_methods}"
        ]
    if saved == built:
        return []
    if _methods_of_keys(saved) != _methods_of_keys(built):
        config = f"is {built_methods}" if built_methods is not None else "builds other ones"
        return [
            f"the checkpoint holds the distillation modules of {_methods_of_keys(saved)}, the "
            f"config's MODEL.DISTILL.METHODS {config}"
        ]
    parts = []
    for what, keys in (("checkpoint", saved - built), ("model", built - saved)):
        if keys:
            parts.append(f"distillation weights only in the {what}: {_shown(sorted(keys))}")
    return parts


def config_changed_message(path: str, parts: List[str]) -> str:
    """The one-line error for ``--resume`` from the checkpoint at ``path`` whose differences
    from the current config are ``parts`` (see :func:`resume_mismatch`)."""
    return "; ".join(
        [f"--resume: the config changed since the checkpoint {path} was written", *parts]
        + [
            "resume with the config the run was started with, or start a new run in another "
            "OUTPUT_DIR (MODEL.WEIGHTS <checkpoint> initialises it from these weights)"
        ]
    )
