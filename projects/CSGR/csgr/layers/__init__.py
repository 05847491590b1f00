"""Layers used by the distillation losses."""

from .criss_cross import CrissCrossAttention, criss_cross_aggregate, dense_criss_cross_reference

__all__ = ["CrissCrossAttention", "criss_cross_aggregate", "dense_criss_cross_reference"]
