"""Building the config of a run from command-line arguments."""

from detectron2.engine import default_argument_parser, default_setup

from ..config import load_config
from .log_setup import setup_csgr_logger
from .user_modules import add_register_argument, import_user_modules


def argument_parser(epilog=None):
    """Detectron2's standard training arguments plus ``--register MODULE`` (repeatable): a
    ``.py`` file or module name imported before the config is read, e.g. one registering your
    datasets (``$CSGR_REGISTER`` adds more, separated by ':')."""
    parser = default_argument_parser(epilog)
    add_register_argument(parser)
    return parser


def setup_cfg(args, freeze: bool = True):
    """Config from ``--config-file`` and trailing ``KEY VALUE`` opts, with CSGR's keys.

    Args:
        args: parsed :func:`detectron2.engine.default_argument_parser` arguments.
        freeze: freeze the config and run Detectron2's ``default_setup`` (logging, output dir,
            seed, config dump); the ``csgr.*`` loggers write to the same console and log.txt.
    """
    import_user_modules(getattr(args, "register", []))  # runs in every launched process
    cfg = load_config(args.config_file, args.opts)
    if freeze:
        cfg.freeze()
        default_setup(cfg, args)
        setup_csgr_logger(cfg.OUTPUT_DIR)
    return cfg
