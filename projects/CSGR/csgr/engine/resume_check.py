"""Saying that the config changed since a checkpoint, when ``--resume`` cannot restore it.

Resuming a run after changing ``MODEL.DISTILL.METHODS`` (or anything else that adds or removes
trainable modules) makes PyTorch's ``Optimizer.load_state_dict`` fail with "loaded state dict
contains a parameter group that doesn't match the size of optimizer's group", which names
neither the checkpoint nor the cause. :func:`config_changed_message` compares the checkpoint's
weights with the model's and says what differs.
"""

from typing import Iterable, List

__all__ = ["is_optimizer_mismatch", "config_changed_message"]

_SHOWN = 5


def is_optimizer_mismatch(error: Exception) -> bool:
    """Whether ``error`` is PyTorch's refusal of an optimizer state of other parameters."""
    return isinstance(error, ValueError) and "parameter group" in str(error)


def _methods(keys: Iterable[str]) -> List[str]:
    return sorted({k.split(".")[1] for k in keys if k.startswith("distill_losses.")})


def _shown(keys: List[str]) -> str:
    more = len(keys) - _SHOWN
    return ", ".join(keys[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def config_changed_message(path: str, checkpoint_keys: Iterable[str], model_keys: Iterable[str]):
    """Why the checkpoint at ``path`` does not fit the model built from the current config.

    Args:
        path: the checkpoint.
        checkpoint_keys / model_keys: the weight names of the checkpoint and of the model.
    """
    saved, built = set(checkpoint_keys), set(model_keys)
    parts = [
        f"--resume: the config changed since the checkpoint {path} was written: its optimizer "
        "state does not fit the parameters of the model built from the current config"
    ]
    if _methods(saved) != _methods(built):
        parts.append(
            f"the checkpoint holds the distillation modules of {_methods(saved)}, the config's "
            f"MODEL.DISTILL.METHODS builds those of {_methods(built)}"
        )
    else:
        if saved - built:
            parts.append(f"weights only in the checkpoint: {_shown(sorted(saved - built))}")
        if built - saved:
            parts.append(f"weights only in the model: {_shown(sorted(built - saved))}")
    parts.append(
        "resume with the config the run was started with, or start a new run in another "
        "OUTPUT_DIR (MODEL.WEIGHTS <checkpoint> initialises it from these weights)"
    )
    return "; ".join(parts)
