"""CSGR: knowledge distillation of Detectron2 object detectors.

Importing the package registers its meta-architecture, distillation losses and datasets.
"""

from . import data  # noqa: F401  registers the dataset catalogs
from . import modeling  # noqa: F401  registers the Distiller and the distillation losses
from . import pretrained  # noqa: F401  registers csgr-pretrained:// weights paths
from .config import add_csgr_config

__all__ = ["add_csgr_config"]
__version__ = "0.1.0"
