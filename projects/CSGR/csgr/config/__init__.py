from .defaults import add_csgr_config

__all__ = ["add_csgr_config"]
