"""Mixed precision with the Distiller: bfloat16 autocast on the CPU, float16 + GradScaler on CUDA."""

import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from detectron2.utils.events import EventStorage
from test_resume_kill import one_torch_thread, shapes_distill_cfg, shapes_root  # noqa: F401
from tiny_models import distill_cfg, random_batch

from csgr.config.reliability import add_reliability_config
from csgr.engine import Trainer
from csgr.engine.loop import GuardedTrainer, build_train_loop


class _Recorder(torch.nn.Module):
    """Wraps the model to keep the loss dict of the step."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.losses = {}

    def forward(self, batch):
        self.losses = self.model(batch)
        return self.losses


def _amp_cfg(tmp_path, device="cpu", precision="bfloat16"):
    cfg = distill_cfg(str(tmp_path))
    add_reliability_config(cfg)
    cfg.MODEL.DEVICE = device
    cfg.SOLVER.AMP.ENABLED = True
    cfg.SOLVER.AMP.PRECISION = precision
    return cfg


def _one_step(cfg, batch):
    model = build_model(cfg)
    feature_dtypes = []
    model.student.backbone.register_forward_hook(
        lambda m, i, out: feature_dtypes.append(out["p2"].dtype)
    )
    recorder = _Recorder(model)
    loop = build_train_loop(cfg, recorder, [batch], build_optimizer(cfg, model))
    with EventStorage(0):
        loop.iter = 0
        loop.run_step()
    return model, loop, recorder.losses, feature_dtypes


def test_bf16_autocast_step_on_cpu(tmp_path):
    cfg = _amp_cfg(tmp_path)
    model, loop, losses, feature_dtypes = _one_step(cfg, random_batch())
    assert isinstance(loop, GuardedTrainer) and loop.amp_dtype == torch.bfloat16
    assert loop.grad_scaler is None  # bfloat16 needs no loss scaling
    assert feature_dtypes == [torch.bfloat16]  # the forward ran in reduced precision
    assert {"loss_csgr_cat", "loss_csgr_rel", "loss_cls", "loss_rpn_cls"} <= set(losses)
    for k, v in losses.items():
        assert v.dtype == torch.float32, (k, v.dtype)
        assert math.isfinite(v.item()), k
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_fp16_on_cpu_is_an_error_naming_the_key(tmp_path):
    cfg = _amp_cfg(tmp_path, precision="float16")
    with pytest.raises(ValueError, match=r"SOLVER\.AMP\.PRECISION.*bfloat16"):
        build_train_loop(cfg, torch.nn.Linear(1, 1), [], None)
    cfg.SOLVER.AMP.PRECISION = "float8"
    with pytest.raises(ValueError, match="SOLVER.AMP.PRECISION must be one of"):
        build_train_loop(cfg, torch.nn.Linear(1, 1), [], None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_with_grad_scaler_on_cuda(tmp_path):
    cfg = _amp_cfg(tmp_path, device="cuda", precision="float16")
    batch = [dict(b, image=b["image"].cuda()) for b in random_batch()]
    model, loop, losses, feature_dtypes = _one_step(cfg, batch)
    assert loop.grad_scaler is not None and "grad_scaler" in loop.state_dict()
    assert feature_dtypes == [torch.float16]
    assert all(v.dtype == torch.float32 and math.isfinite(v.item()) for v in losses.values())


def test_trainer_trains_with_bf16_from_the_config(
    tmp_path, shapes_root, monkeypatch, restore_catalogs  # noqa: F811
):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    cfg = shapes_distill_cfg(tmp_path, max_iter=2, period=100)
    add_reliability_config(cfg)
    cfg.SOLVER.AMP.ENABLED = True
    cfg.SOLVER.AMP.PRECISION = "bfloat16"
    trainer = Trainer(cfg)
    assert trainer._trainer.amp_dtype == torch.bfloat16
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = trainer.storage.history("total_loss").values()
    assert len(losses) == 2 and all(math.isfinite(v) for v, _ in losses)
    assert (tmp_path / "output" / "model_final.pth").exists()
