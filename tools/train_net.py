#!/usr/bin/env python
"""Train or evaluate a detector, distilled or not, with Detectron2's usual flags.

python tools/train_net.py --config-file configs/csgr_frcnn_r50.yaml
python tools/train_net.py --config-file ... --num-gpus 8 SOLVER.IMS_PER_BATCH 16
python tools/train_net.py --config-file ... --resume
python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/model_final.pth
"""

import csgr  # noqa: F401  first: quiets dependency warnings; registers models, losses, datasets
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import launch

from csgr.engine import Trainer, argument_parser, setup_cfg
from csgr.errors import one_line_errors


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = argument_parser().parse_args()
    print("Command Line Args:", args)
    with one_line_errors():  # e.g. missing teacher weights: one line with the command to run
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
