"""The training step: Detectron2's SimpleTrainer/AMPTrainer step with a NaN guard and CPU AMP.

:class:`GuardedTrainer` runs Detectron2's step (data, forward, zero_grad, backward, metrics,
optimizer step) with two additions:

* :func:`.nan_guard.check_finite_losses` between forward and backward, and
  :func:`.nan_guard.diverged_in_forward` for a forward that fails on weights a step made
  non-finite (Detectron2's "Predicted boxes or scores contain Inf/NaN");
* mixed precision on CUDA and CPU: the forward runs under ``torch.autocast`` of the model's
  device type in ``SOLVER.AMP.PRECISION``; float16 uses a ``GradScaler`` (CUDA only, exactly as
  Detectron2's ``AMPTrainer``), bfloat16 needs none. The loss terms are summed in float32.

Its checkpoint state is Detectron2's (``optimizer``, plus ``grad_scaler`` under float16).
"""

import contextlib
import time
from typing import Callable, Optional

import torch
from detectron2.engine import SimpleTrainer

from ..config.reliability import AMP_PRECISIONS
from .nan_guard import check_finite_losses, diverged_in_forward

__all__ = ["GuardedTrainer", "amp_dtype", "build_train_loop"]

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


class GuardedTrainer(SimpleTrainer):
    """``SimpleTrainer`` with a non-finite-loss guard and optional autocast.

    Attributes:
        amp_dtype: the autocast dtype, or ``None`` for full precision.
        device_type: "cuda" or "cpu", the autocast device type.
        grad_scaler: a ``torch.amp.GradScaler`` (float16), or ``None``.
        nonfinite_hint: returns text added to the non-finite-loss error (set by the Trainer).
    """

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        *,
        amp_dtype: Optional[torch.dtype] = None,
        device_type: str = "cuda",
        grad_scaler=None,
        **kwargs,
    ):
        """
        Args:
            model, data_loader, optimizer, kwargs: as :class:`detectron2.engine.SimpleTrainer`.
            amp_dtype: autocast dtype, or ``None``.
            device_type: the model's device type.
            grad_scaler: a GradScaler for float16, or ``None``.
        """
        super().__init__(model, data_loader, optimizer, **kwargs)
        self.amp_dtype = amp_dtype
        self.device_type = device_type
        self.grad_scaler = grad_scaler
        self.nonfinite_hint: Optional[Callable[[], str]] = None
        self._first_loss_values = {}  # term -> (iteration, first non-zero value)
        self._last_losses = None  # the previous iteration's terms (detached)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.amp_dtype)

    def run_step(self):
        assert self.model.training, "[GuardedTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        try:
            with self._autocast():
                loss_dict = self.model(data)
        except FloatingPointError as e:  # e.g. non-finite boxes after a step that blew up
            raise diverged_in_forward(
                e, self.iter, self._last_losses, self._first_loss_values, self.nonfinite_hint
            ) from e
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        check_finite_losses(loss_dict, self.iter, self.nonfinite_hint, self._first_loss_values)
        self._last_losses = {k: v.detach() for k, v in loss_dict.items()}
        losses = sum(v.float() for v in loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
        else:
            losses.backward()

        self.after_backward()

        if self.async_write_metrics:
            self.concurrent_executor.submit(
                self._write_metrics, loss_dict, data_time, iter=self.iter
            )
        else:
            self._write_metrics(loss_dict, data_time)

        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])


def amp_dtype(cfg) -> Optional[torch.dtype]:
    """The autocast dtype of a config's ``SOLVER.AMP`` (``None`` when it is disabled).

    Raises:
        ValueError: ``SOLVER.AMP.PRECISION`` is unknown, or float16 on a CPU device.
    """
    if not cfg.SOLVER.AMP.ENABLED:
        return None
    precision = cfg.SOLVER.AMP.get("PRECISION", "float16")
    if precision not in AMP_PRECISIONS:
        raise ValueError(f"SOLVER.AMP.PRECISION must be one of {AMP_PRECISIONS}, got {precision!r}")
    if precision == "float16" and torch.device(cfg.MODEL.DEVICE).type != "cuda":
        raise ValueError(
            f"SOLVER.AMP.ENABLED with SOLVER.AMP.PRECISION 'float16' needs a CUDA device, but "
            f"MODEL.DEVICE is {cfg.MODEL.DEVICE!r}; set SOLVER.AMP.PRECISION 'bfloat16' for "
            "mixed precision on the CPU"
        )
    return _DTYPES[precision]


def build_train_loop(cfg, model, data_loader, optimizer) -> GuardedTrainer:
    """The :class:`GuardedTrainer` of a config (``SOLVER.AMP.*``, ``MODEL.DEVICE``).

    Raises:
        ValueError: see :func:`amp_dtype`.
    """
    device_type = torch.device(cfg.MODEL.DEVICE).type
    dtype = amp_dtype(cfg)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return GuardedTrainer(
        model,
        data_loader,
        optimizer,
        amp_dtype=dtype,
        device_type=device_type,
        grad_scaler=scaler,
    )
