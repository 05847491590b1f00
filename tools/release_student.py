#!/usr/bin/env python
"""Release the student of a distillation run as a plain Detectron2 model (model-zoo style).

    python tools/release_student.py output/shapes/frcnn/csgr/seed1
    python tools/release_student.py output/shapes/frcnn/csgr/seed1/model_final.pth --name csgr_frcnn_r18 \
        --output release/ --url-prefix https://example.org/csgr/

Writes <name>_<hash>.pth (student weights only), <name>_<hash>.yaml (vanilla Detectron2 config),
<name>_<hash>_metrics.json and <name>_<hash>_manifest.json; <hash> is the first 8 hex digits of
the sha256 of the .pth. A run without model_final.pth (training not finished) is refused unless
--allow-unfinished; the manifest records the iteration. Load it with Detectron2 alone:

    cfg = get_cfg(); cfg.merge_from_file("<name>_<hash>.yaml"); predictor = DefaultPredictor(cfg)
"""

import argparse
import os

from csgr.engine.log_setup import setup_csgr_logger
from csgr.errors import one_line_errors
from csgr.release import release_student


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("run", help="run folder (OUTPUT_DIR of the training) or checkpoint file")
    parser.add_argument("--output", help="output folder (default: <run>/release)")
    parser.add_argument("--name", help="file name stem (default: the run folder's name)")
    parser.add_argument("--config-file", help="the run's config (default: <run>/config.yaml)")
    parser.add_argument(
        "--url-prefix", default="", help="MODEL.WEIGHTS = <url-prefix>/<file> (default: file)"
    )
    parser.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="release a checkpoint of a run that has not finished training (no model_final.pth)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_csgr_logger()
    manifest = release_student(
        args.run,
        args.output,
        args.name,
        args.config_file,
        url_prefix=args.url_prefix,
        allow_unfinished=args.allow_unfinished,
    )
    print(f"Released {manifest['name']} (sha256 {manifest['sha256']}) to {manifest['output_dir']}:")
    for path in (*manifest["files"].values(), manifest["manifest"]):
        if path:
            print("  " + os.path.join(manifest["output_dir"], path))
    return manifest


if __name__ == "__main__":
    with one_line_errors():
        main()
