"""CSGR: knowledge distillation of Detectron2 object detectors.

Importing the package registers its meta-architecture, distillation losses and datasets.
"""

from .utils.quiet import install_quiet_filters

install_quiet_filters()  # before Detectron2 is imported (see csgr/utils/quiet.py)

from . import data  # noqa: E402, F401  registers the dataset catalogs
from . import modeling  # noqa: E402, F401  registers the Distiller and the distillation losses
from . import pretrained  # noqa: E402, F401  registers csgr-pretrained:// weights paths
from .config import add_csgr_config  # noqa: E402

__all__ = ["add_csgr_config"]
__version__ = "0.1.0"
