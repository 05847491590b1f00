"""The training loop of CSGR: Detectron2's DefaultTrainer, made robust to bad data and crashes.

On top of ``DefaultTrainer`` (same hooks, writers, evaluation, ``--resume`` semantics):

* data: :mod:`csgr.data.loaders` (bad image files named or skipped, bad boxes clipped or
  dropped, a training sampler that resumes where the run stopped); annotation errors name the
  file, and the test sets are checked (:func:`csgr.data.checks.check_before_training`) before
  the first iteration;
* step: :class:`.loop.GuardedTrainer` (a NaN/inf loss term stops training before backward,
  naming the term and the iteration; ``SOLVER.AMP`` in float16 on CUDA or bfloat16 on CUDA/CPU);
* writers: a full disk is one error naming the file (:mod:`.writers`), as for checkpoints;
* checkpoints: :class:`.checkpoint.AtomicCheckpointer` (atomic writes, no non-finite weights),
  the sampler's seed and every rank's RNG states (:class:`.rng_state.RNGStateHook`), so that a
  resumed run continues as the uninterrupted one would have;
* multi-process training on CPU (gloo) as well as CUDA: DDP without ``device_ids`` on the CPU.
"""

import logging
import os
import weakref

import torch
from detectron2.engine import DefaultTrainer, TrainerBase, create_ddp_model, hooks
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..data.checks import check_before_training
from ..data.loaders import build_test_loader, build_train_loader
from ..evaluation import build_evaluator
from .checkpoint import AtomicCheckpointer
from .log_setup import setup_csgr_logger
from .loop import build_train_loop
from .optimizer import build_optimizer
from .rng_state import RNGStateHook
from .writers import guard_writers

__all__ = ["Trainer"]


class Trainer(DefaultTrainer):
    """DefaultTrainer that evaluates each test set with the evaluator its metadata names.

    Distillation terms returned by the Distiller are logged like any loss (TensorBoard,
    metrics.json, console) under their own ``loss_<method>_*`` names. See the module docstring
    for what it adds to Detectron2's trainer.
    """

    def __init__(self, cfg):
        """Same steps as ``DefaultTrainer.__init__``, with CSGR's step, checkpointer and DDP."""
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        if not logging.getLogger("csgr").isEnabledFor(logging.INFO):
            setup_csgr_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())

        model = self.build_model(cfg)
        check_before_training(cfg)  # a test set the evaluator cannot read fails now, named
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        self._sampler = getattr(data_loader, "resumable_sampler", None)

        cpu = torch.device(cfg.MODEL.DEVICE).type == "cpu"
        # DDP on CPU modules takes no device_ids (Detectron2 passes the local rank's GPU)
        ddp_kwargs = {"device_ids": None} if cpu else {}
        model = create_ddp_model(model, broadcast_buffers=False, **ddp_kwargs)
        self._trainer = build_train_loop(cfg, model, data_loader, optimizer)
        self._trainer.nonfinite_hint = self._last_checkpoint_hint

        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        if self._sampler is not None:
            self.checkpointer.add_checkpointable("sampler", self._sampler)
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg

        self.register_hooks(self.build_hooks())

    def _last_checkpoint_hint(self) -> str:
        last = self.checkpointer.get_checkpoint_file()
        if not last or not os.path.isfile(last):
            return "No checkpoint has been written yet."
        return f"The last checkpoint, {last}, is kept; resume from it with --resume."

    def build_hooks(self):
        """Detectron2's hooks, with :class:`RNGStateHook` first (before the checkpointer)."""
        return [RNGStateHook(self.cfg.SOLVER.CHECKPOINT_PERIOD)] + super().build_hooks()

    def build_writers(self):
        """Detectron2's default writers; a full disk stops training with one error naming the
        file (``metrics.json``) instead of a bare ``OSError`` (see :mod:`.writers`)."""
        return guard_writers(super().build_writers(), self.cfg.OUTPUT_DIR)

    def resume_or_load(self, resume=True):
        """Detectron2's ``resume_or_load``; a resumed run's sampler starts after the batches
        already used (``start_iter`` batches of ``SOLVER.IMS_PER_BATCH / world size``)."""
        super().resume_or_load(resume=resume)
        if self._sampler is not None:
            per_rank = self.cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
            self._sampler.set_start_iter(self.start_iter, per_rank)

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Detectron2's optimizer; ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE`` may also be "full_model"
        (see :mod:`.optimizer`)."""
        return build_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    def train(self):
        """Run training; returns the results of the last evaluation (``None`` if none ran)."""
        super().train()
        return getattr(self, "_last_eval_results", None)
