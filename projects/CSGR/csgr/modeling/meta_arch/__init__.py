from .distiller import Distiller

__all__ = ["Distiller"]
