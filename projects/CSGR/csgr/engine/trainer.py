"""The training loop of CSGR: Detectron2's DefaultTrainer with the project's evaluators."""

import os

from detectron2.engine import DefaultTrainer

from ..evaluation import build_evaluator


class Trainer(DefaultTrainer):
    """DefaultTrainer that evaluates each test set with the evaluator its metadata names.

    Distillation terms returned by the Distiller are logged like any loss (TensorBoard,
    metrics.json, console) under their own ``loss_<method>_*`` names.
    """

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    def train(self):
        """Run training; returns the results of the last evaluation (``None`` if none ran)."""
        super().train()
        return getattr(self, "_last_eval_results", None)
