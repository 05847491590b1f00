#!/usr/bin/env python
"""Print, per level, how much of CSGR's relation term its criss-cross attention makes, for a
trained run on batches of its training data (see csgr/benchmark/relation_share.py).

    python tools/relation_share.py --config-file output/coral/frcnn/csgr/seed1/config.yaml \\
        --batches 3 MODEL.WEIGHTS output/coral/frcnn/csgr/seed1/model_final.pth

Reads the config's train loader (its augmentation and seed) in this process, runs the training
forward without a step, and leaves the run's folder untouched: the Trainer's log and config go
to a temporary folder, removed at the end, unless OUTPUT_DIR is given. MODEL.WEIGHTS must name
the run's checkpoint (the config's own MODEL.WEIGHTS is the student's initialisation).
"""

import shlex
import sys
import tempfile
from itertools import islice

import csgr  # noqa: F401  registers the Distiller, the losses and the datasets
from csgr.benchmark.relation_share import HEADER, relation_share
from csgr.engine import Trainer, argument_parser, setup_cfg
from csgr.errors import one_line_errors


def parse_args(argv=None):
    parser = argument_parser()  # train_net's arguments (--config-file, --register, opts)
    parser.add_argument("--batches", type=int, default=3, help="training batches to read")
    args = parser.parse_args(argv)
    if args.num_gpus != 1 or args.resume or args.eval_only:
        parser.error("relation_share runs one process: no --num-gpus, --resume or --eval-only")
    if args.batches < 1:
        parser.error(f"--batches must be >= 1, got {args.batches}")
    if "MODEL.WEIGHTS" not in args.opts[::2]:
        parser.error("pass MODEL.WEIGHTS RUN/model_final.pth, the checkpoint of the run measured")
    return args


def measure(args):
    trainer = Trainer(setup_cfg(args))
    trainer.resume_or_load(resume=False)  # MODEL.WEIGHTS: the run's checkpoint
    if not any(
        k.startswith("distill_losses.CSGR.relations.") for k in trainer.checkpointer.loaded_keys
    ):
        weights = args.opts[args.opts[::2].index("MODEL.WEIGHTS") * 2 + 1]
        raise ValueError(
            f"relation_share: {weights} holds no CSGR relation block "
            "(distill_losses.CSGR.relations.*): not the checkpoint of a CSGR distillation run"
        )
    return relation_share(trainer.model, islice(iter(trainer.data_loader), args.batches))


def main(argv=None):
    args = parse_args(argv)
    print("python tools/relation_share.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    if "OUTPUT_DIR" in args.opts[::2]:
        rows = measure(args)
    else:  # not the run's folder: its config.yaml is kept
        with tempfile.TemporaryDirectory(prefix="relation_share_") as tmp:
            args.opts += ["OUTPUT_DIR", tmp]
            rows = measure(args)
    print(HEADER)
    for row in rows:
        print(row.line())
    return rows


if __name__ == "__main__":
    with one_line_errors():
        main()
