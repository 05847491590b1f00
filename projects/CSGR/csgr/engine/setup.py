"""Building the config of a run from command-line arguments."""

from detectron2.config import get_cfg
from detectron2.engine import default_setup

from ..config import add_csgr_config
from ..config.reliability import add_reliability_config
from ..modeling.teacher import resolve_path


def setup_cfg(args, freeze: bool = True):
    """Config from ``--config-file`` and trailing ``KEY VALUE`` opts, with CSGR's keys.

    Args:
        args: parsed :func:`detectron2.engine.default_argument_parser` arguments.
        freeze: freeze the config and run Detectron2's ``default_setup`` (logging, output dir,
            seed, config dump).
    """
    cfg = get_cfg()
    add_csgr_config(cfg)
    add_reliability_config(cfg)  # TODO(lead): move into add_csgr_config
    cfg.merge_from_file(resolve_path(args.config_file))
    cfg.merge_from_list(args.opts)
    if freeze:
        cfg.freeze()
        default_setup(cfg, args)
    return cfg
