from .setup import argument_parser, setup_cfg
from .trainer import Trainer

__all__ = ["Trainer", "argument_parser", "setup_cfg"]
