from .build import build_evaluator, evaluator_type
from .metrics_file import last_evaluation, last_values, read_metrics

__all__ = ["build_evaluator", "evaluator_type", "last_evaluation", "last_values", "read_metrics"]
