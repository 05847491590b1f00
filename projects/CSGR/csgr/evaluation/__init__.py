from .build import build_evaluator

__all__ = ["build_evaluator"]
