"""LossScale: published mode leaves the terms alone; calibrated mode fixes one factor per method
from the warm-up, keeps the ratios of a method's own terms, persists, and agrees across ranks."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from csgr.modeling.loss_scale import LossScale


def t(x):
    return torch.tensor(float(x))


def step_inputs(det=2.0, a=(10.0, 30.0), b=0.5):
    detection = {"loss_cls": t(det / 2), "loss_box_reg": t(det / 2)}
    distillation = {
        "CSGR": {"loss_csgr_cat": t(a[0]), "loss_csgr_rel": t(a[1])},
        "MSE": {"loss_mse": t(b)},
    }
    return detection, distillation


def test_published_mode_is_the_identity():
    scale = LossScale(["CSGR", "MSE"])
    detection, distillation = step_inputs()
    out = scale(detection, distillation)
    assert out == {k: v for terms in distillation.values() for k, v in terms.items()}
    assert scale.factor_dict() == {"CSGR": 1.0, "MSE": 1.0}


def test_calibrated_factors_after_warmup_keep_term_ratios():
    scale = LossScale(["CSGR", "MSE"], mode="calibrated", target=0.5, warmup_iters=2)
    for det, a, b in ((2.0, (10.0, 30.0), 0.5), (4.0, (20.0, 20.0), 1.5)):
        out = scale(*step_inputs(det, a, b))
        assert all(v.item() == 0.0 for v in out.values())  # measuring: detection loss alone
    # mean detection 3, mean CSGR 40, mean MSE 1 -> factors 0.5 * 3 / 40 and 0.5 * 3 / 1
    factors = scale.factor_dict()
    assert factors["CSGR"] == pytest.approx(0.5 * 3 / 40, rel=1e-12)
    assert factors["MSE"] == pytest.approx(1.5, rel=1e-12)
    out = scale(*step_inputs(2.0, (10.0, 30.0), 0.5))
    assert out["loss_csgr_cat"].item() == pytest.approx(10.0 * 0.0375, rel=1e-6)
    assert out["loss_csgr_rel"].item() == pytest.approx(30.0 * 0.0375, rel=1e-6)  # ratio 1:3 kept
    assert out["loss_mse"].item() == pytest.approx(0.75, rel=1e-6)
    assert out["loss_csgr_cat"].dtype == torch.float32


def test_a_method_silent_while_measuring_keeps_factor_one():
    scale = LossScale(["CSGR", "MSE"], mode="calibrated", warmup_iters=1)
    scale(*step_inputs(b=0.0))
    assert scale.factor_dict()["MSE"] == 1.0


def test_factors_persist_in_the_state_dict():
    scale = LossScale(["CSGR", "MSE"], mode="calibrated", warmup_iters=1)
    scale(*step_inputs())
    resumed = LossScale(["CSGR", "MSE"], mode="calibrated", warmup_iters=1)
    resumed.load_state_dict(scale.state_dict())
    assert resumed.factor_dict() == scale.factor_dict()
    out = resumed(*step_inputs())  # fixed: scales at once, measures nothing more
    assert out["loss_mse"].item() > 0 and int(resumed.measured) == 1


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="mode"):
        LossScale(["CSGR"], mode="auto")
    with pytest.raises(ValueError, match="target"):
        LossScale(["CSGR"], target=0.0)
    with pytest.raises(ValueError, match="warmup_iters"):
        LossScale(["CSGR"], mode="calibrated", warmup_iters=0)


def _rank(rank, port, path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    scale = LossScale(["CSGR", "MSE"], mode="calibrated", target=1.0, warmup_iters=1)
    scale(*step_inputs(det=2.0 + 2.0 * rank, a=(10.0 * (rank + 1), 0.0), b=1.0 + rank))
    torch.save(scale.state_dict(), os.path.join(path, f"rank{rank}.pth"))
    dist.destroy_process_group()


def test_factors_equal_on_two_gloo_ranks(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    states = [torch.load(tmp_path / f"rank{r}.pth") for r in range(2)]
    assert torch.equal(states[0]["factors"], states[1]["factors"])
    # summed over ranks: detection 2 + 4, CSGR 10 + 20, MSE 1 + 2
    torch.testing.assert_close(
        states[0]["factors"], torch.tensor([6 / 30, 6 / 3], dtype=torch.float64)
    )


def _calibrated_steps(tmp_path, device="cpu", dtype=None):
    """Three training forwards of a tiny CSGR Distiller in calibrated mode (warm-up 2) on
    ``device``, under autocast in ``dtype`` if given.

    Returns:
        (cfg, model, the CSGR terms of each forward, the EventStorage)
    """
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage
    from tiny_models import distill_cfg, random_batch

    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.DISTILL.LOSS_SCALE.MODE = "calibrated"
    cfg.MODEL.DISTILL.LOSS_SCALE.WARMUP_ITERS = 2
    torch.manual_seed(0)
    model = build_model(cfg).train()
    terms = []
    with EventStorage() as storage:
        for it in range(3):
            storage.iter = it
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                losses = model(random_batch(seed=it))
            assert all(torch.isfinite(v) for v in losses.values())
            terms.append({k: v for k, v in losses.items() if k.startswith("loss_csgr")})
            storage.step()
    return cfg, model, terms, storage


def test_distiller_calibrates_in_one_process_and_release_records_the_factors(tmp_path):
    from detectron2.modeling import build_model

    from csgr.release.export import loss_scale_record

    cfg, model, terms, storage = _calibrated_steps(tmp_path)
    assert all(v.item() == 0.0 for step in terms[:2] for v in step.values())  # measuring
    assert terms[2] and all(v.item() > 0 for v in terms[2].values())
    assert storage.history("loss_scale/CSGR").latest() == model.loss_scale.factors[0].item()
    record = loss_scale_record(cfg, model.state_dict())
    assert record == {"mode": "calibrated", "factors": model.loss_scale.factor_dict()}
    cfg.MODEL.DISTILL.LOSS_SCALE.MODE = "published"
    assert build_model(cfg).loss_scale is None  # published: no state, checkpoints unchanged


@pytest.mark.cuda
def test_distiller_calibrates_on_cuda_under_float16_autocast(tmp_path):
    """The float64 accumulators and factors live on the GPU; under float16 autocast the scaled
    terms stay finite float32 and the factors are fixed after the warm-up."""
    _, model, terms, _ = _calibrated_steps(tmp_path, "cuda", torch.float16)
    assert model.loss_scale.is_fixed and model.loss_scale.factors.device.type == "cuda"
    factors = model.loss_scale.factors
    assert factors.dtype == torch.float64
    assert torch.isfinite(factors).all() and (factors > 0).all()
    assert terms[2] and all(v.dtype == torch.float32 and v.item() > 0 for v in terms[2].values())
