"""Two-process training on the CPU through Detectron2's ``launch`` (gloo) against one process
with the same total batch.

Set-up that removes the differences that are not DDP's: the student uses GroupNorm (BN would
normalise over 1 image per process instead of 2; use SyncBN for BN students), no random flip
(each rank draws its own augmentations), and every anchor / proposal is sampled (each rank
draws its own samples). What remains is batch-dependent by design (relative differences
measured at iteration 0, when both runs have the same weights):

* RPN losses: normalised per image: identical (~1e-7);
* ROI losses: normalised by the proposals sampled over the process's batch (loss_cls ~3e-4,
  loss_box_reg ~6e-3);
* ``loss_csgr_rel``: per-channel statistics over (N, H, W) of the process's batch (~1e-3);
* ``loss_csgr_cat``: the same statistics, which the category prototypes amplify (~5x at
  initialisation): CSGR's statistics are per process, like BatchNorm's without SyncBN.

Iterations 1 and 2 (after synchronised updates) stay within 5% on all terms but
``loss_csgr_cat``.
"""

import json
import math
import subprocess
import sys

import pytest
import torch
from shapes_runs import (  # noqa: F401  (fixtures)
    one_torch_thread,
    shapes_distill_cfg,
    shapes_root,
    subprocess_env,
    write_cfg,
)

SCRIPT = """
import json, os, sys
import torch
from detectron2.engine import HookBase, default_argument_parser, launch
from detectron2.utils import comm
import csgr  # noqa: F401
from csgr.engine import Trainer, setup_cfg
from csgr.errors import one_line_errors
from csgr.modeling.losses.csgr import CSGRLoss

NAN_RANK = int(os.environ.get("CSGR_TEST_NAN_RANK", "-1"))
FORWARD_FAIL_RANK = int(os.environ.get("CSGR_TEST_FORWARD_FAIL_RANK", "-1"))
_forward = CSGRLoss.forward


def _fail_on_one_rank(self, batch):
    from detectron2.utils.events import get_event_storage
    if comm.get_rank() == FORWARD_FAIL_RANK and get_event_storage().iter == 2:
        # what Detectron2's box heads raise on weights a step made non-finite
        raise FloatingPointError("Predicted boxes or scores contain Inf/NaN. Training diverged.")
    losses = _forward(self, batch)
    if comm.get_rank() == NAN_RANK and get_event_storage().iter == 1:
        losses["loss_csgr_rel"] = losses["loss_csgr_rel"] * float("nan")
    return losses


CSGRLoss.forward = _fail_on_one_rank


class DumpLosses(HookBase):
    def after_train(self):
        if comm.is_main_process():
            st = self.trainer.storage
            out = {k: [v for v, _ in st.history(k).values()] for k in st.histories()
                   if k.startswith("loss_") or k == "total_loss"}
            with open(os.path.join(self.trainer.cfg.OUTPUT_DIR, "losses.json"), "w") as f:
                json.dump(out, f)


def main(args):
    cfg = setup_cfg(args)
    trainer = Trainer(cfg)
    trainer.register_hooks([DumpLosses()])
    trainer.resume_or_load(resume=False)
    trainer.train()
    model = getattr(trainer.model, "module", trainer.model)
    torch.save(model.state_dict(), os.path.join(cfg.OUTPUT_DIR, f"rank{comm.get_rank()}.pth"))


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    with one_line_errors():  # as tools/train_net.py
        launch(main, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
"""

# relative tolerances at iteration 0 (same weights in both runs), see the module docstring
RTOL = {
    "loss_rpn_cls": 1e-5,
    "loss_rpn_loc": 1e-5,
    "loss_cls": 0.01,
    "loss_box_reg": 0.03,
    "loss_csgr_rel": 0.01,
}


def _launch(tmp_path, shapes_root, config_file, name, num_procs, check=True, cuda=False, **env):
    """Launch ``num_procs`` processes of SCRIPT: NCCL with ``cuda``, else gloo (GPUs hidden:
    Detectron2's launch uses NCCL whenever CUDA is available)."""
    out = tmp_path / name
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), "--config-file", config_file]
    cmd += ["--num-gpus", str(num_procs), "--dist-url", "auto", "OUTPUT_DIR", str(out)]
    env = dict(subprocess_env(shapes_root), **env)
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    with open(tmp_path / f"{name}.log", "w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=log, check=check, timeout=300)
    return proc, out


def _run(tmp_path, shapes_root, config_file, name, num_procs):
    _, out = _launch(tmp_path, shapes_root, config_file, name, num_procs)
    with open(out / "losses.json") as f:
        return json.load(f), out


def _ddp_cfg(tmp_path, max_iter, device="cpu", category_min_cells=0):
    cfg = shapes_distill_cfg(tmp_path, max_iter=max_iter, period=100)
    cfg.MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS = category_min_cells
    cfg.MODEL.DEVICE = device
    cfg.SOLVER.BASE_LR = 0.001
    cfg.SOLVER.IMS_PER_BATCH = 2  # 2 images in one process, 1 per process with 2
    cfg.MODEL.RESNETS.NORM = "GN"
    cfg.INPUT.RANDOM_FLIP = "none"
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 4096  # > the 1023 anchors of a 64 x 64 image
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512  # > the 64 proposals + ground truth
    cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION = 1.0
    return write_cfg(cfg, tmp_path / "cfg.yaml")


def test_two_processes_match_one(tmp_path, shapes_root):
    config_file = _ddp_cfg(tmp_path, max_iter=3)

    one, _ = _run(tmp_path, shapes_root, config_file, "one", 1)
    two, out = _run(tmp_path, shapes_root, config_file, "two", 2)

    assert set(one) == set(two) and len(two["total_loss"]) == 3
    assert all(math.isfinite(v) for values in two.values() for v in values)
    for k, rtol in RTOL.items():
        assert math.isclose(one[k][0], two[k][0], rel_tol=rtol), (k, one[k][0], two[k][0])
    for k in RTOL:
        for it in (1, 2):
            assert math.isclose(one[k][it], two[k][it], rel_tol=0.05), (k, it, one[k], two[k])
    # DDP keeps the processes' weights identical, distillation modules included
    rank0, rank1 = torch.load(out / "rank0.pth"), torch.load(out / "rank1.pth")
    assert any(k.startswith("distill_losses.") for k in rank0)
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k


def _two_ranks_that_fail(tmp_path, shapes_root, name, cuda=False, **env):
    """Launch 2 processes (4 iterations; on 2 GPUs with NCCL if ``cuda``) that must diverge;
    returns every log's text (each rank's own log holds its error, rank 0's also goes to the
    console) after checking that the launch exited with the divergence status, as
    tools/train_net.py does, and wrote no final model."""
    from csgr.errors import DIVERGED_EXIT_STATUS

    config_file = _ddp_cfg(tmp_path, max_iter=4, device="cuda" if cuda else "cpu")
    proc, out = _launch(tmp_path, shapes_root, config_file, name, 2, False, cuda, **env)
    assert proc.returncode == DIVERGED_EXIT_STATUS
    assert not (out / "model_final.pth").exists()
    return "".join(p.read_text() for p in [tmp_path / f"{name}.log", *out.glob("log.txt*")])


def _assert_nan_on_one_rank_stops_every_rank(tmp_path, shapes_root, cuda):
    log = _two_ranks_that_fail(tmp_path, shapes_root, "nan", cuda, CSGR_TEST_NAN_RANK="1")
    assert "NonFiniteLossError" in log
    assert "Non-finite loss at iteration 1 on rank 1: loss_csgr_rel=nan" in log
    assert "Non-finite loss at iteration 1 on another rank (rank 0 has only finite" in log


def test_nan_on_one_rank_stops_every_rank(tmp_path, shapes_root):
    """A NaN term on rank 1 only: both processes stop at the same iteration (no rank hangs in
    the next all-reduce), the error names the term, the iteration and the rank."""
    _assert_nan_on_one_rank_stops_every_rank(tmp_path, shapes_root, cuda=False)


@pytest.mark.cuda(devices=2)
def test_nan_on_one_rank_stops_every_rank_under_nccl(tmp_path, shapes_root):
    """The same on two GPUs with NCCL, where the guard's flag is all-reduced on the GPU."""
    _assert_nan_on_one_rank_stops_every_rank(tmp_path, shapes_root, cuda=True)


def test_forward_divergence_on_one_rank_stops_every_rank(tmp_path, shapes_root):
    """The forward of rank 1 fails at iteration 2 (Detectron2's "Predicted boxes or scores
    contain Inf/NaN"): the launch exits non-zero within the timeout (rank 0, waiting in the next
    collective, does not hang) and rank 1's error names the previous step's terms."""
    log = _two_ranks_that_fail(tmp_path, shapes_root, "fwd", CSGR_TEST_FORWARD_FAIL_RANK="1")
    assert "NonFiniteLossError: Training diverged at iteration 2: Predicted boxes" in log
    assert "The step of iteration 1 made the weights non-finite; its loss terms were:" in log
    assert "loss_csgr_rel=" in log


def test_calibrated_loss_scale_equal_on_both_ranks_and_restored_on_resume(tmp_path, shapes_root):
    cfg = shapes_distill_cfg(tmp_path, max_iter=3, period=100)
    cfg.MODEL.DISTILL.LOSS_SCALE.MODE = "calibrated"
    cfg.MODEL.DISTILL.LOSS_SCALE.TARGET = 0.5
    cfg.MODEL.DISTILL.LOSS_SCALE.WARMUP_ITERS = 2
    config_file = write_cfg(cfg, tmp_path / "calibrated.yaml")
    losses, out = _run(tmp_path, shapes_root, config_file, "calibrated", 2)
    rank0, rank1 = torch.load(out / "rank0.pth"), torch.load(out / "rank1.pth")
    assert bool(rank0["loss_scale.fixed"]) and int(rank0["loss_scale.measured"]) == 2
    assert torch.equal(rank0["loss_scale.factors"], rank1["loss_scale.factors"])
    factor = rank0["loss_scale.factors"][0].item()
    assert factor > 0 and factor != 1.0
    # measuring: the terms are 0 in the total; then scaled by the fixed factor
    assert losses["loss_csgr_rel"][0] == 0.0 and losses["loss_csgr_rel"][2] > 0
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    logged = [m["loss_scale/CSGR"] for m in metrics if "loss_scale/CSGR" in m]
    assert logged and logged[-1] == factor

    # the factors are in the checkpoint: a resumed Distiller scales with them at once
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from csgr.config import load_config

    model = build_model(load_config(config_file))
    DetectionCheckpointer(model).load(str(out / "model_final.pth"))
    assert bool(model.loss_scale.fixed) and model.loss_scale.factor_dict()["CSGR"] == factor


def test_category_min_cells_trains_on_two_processes(tmp_path, shapes_root):
    """``CATEGORY_MIN_CELLS`` drops the category term on the small levels (P4-P6 of these
    64 px images) every step; their classifiers get a zero gradient, so DDP (which by default
    fails on a parameter that no loss reached) trains, and the ranks stay identical."""
    config_file = _ddp_cfg(tmp_path, max_iter=2, category_min_cells=64)
    losses, out = _run(tmp_path, shapes_root, config_file, "min_cells", 2)
    assert len(losses["loss_csgr_cat"]) == 2 and losses["loss_csgr_cat"][1] > 0
    rank0, rank1 = torch.load(out / "rank0.pth"), torch.load(out / "rank1.pth")
    assert "distill_losses.CSGR.classifiers.p6.weight" in rank0
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
