"""Mixed precision with the Distiller: bfloat16 autocast on the CPU; on CUDA float16 with the
GradScaler and bfloat16, for every method."""

import itertools
import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from detectron2.utils.events import EventStorage
from shapes_runs import one_torch_thread, shapes_distill_cfg, shapes_root  # noqa: F401
from tiny_models import distill_cfg, random_batch

from csgr.config.reliability import add_reliability_config
from csgr.engine import Trainer
from csgr.engine.loop import GuardedTrainer, build_train_loop
from csgr.modeling.losses import method_names


class _Recorder(torch.nn.Module):
    """Wraps the model to keep the loss dict of the step."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.losses = {}

    def forward(self, batch):
        self.losses = self.model(batch)
        return self.losses


def _amp_cfg(tmp_path, device="cpu", precision="bfloat16", arch="GeneralizedRCNN"):
    cfg = distill_cfg(str(tmp_path), student_arch=arch, teacher_arch=arch)
    add_reliability_config(cfg)
    cfg.MODEL.DEVICE = device
    cfg.SOLVER.AMP.ENABLED = True
    cfg.SOLVER.AMP.PRECISION = precision
    return cfg


def _one_step(cfg, batch, model=None):
    """One step of the trainer's loop on ``batch`` (repeated for further ``run_step`` calls).

    Returns:
        (model, loop, the step's losses, the dtypes of the student's first FPN level)
    """
    model = model if model is not None else build_model(cfg)
    feature_dtypes = []
    model.student.backbone.register_forward_hook(
        lambda m, i, out: feature_dtypes.append(next(iter(out.values())).dtype)
    )
    recorder = _Recorder(model)
    optimizer = build_optimizer(cfg, model)
    loop = build_train_loop(cfg, recorder, itertools.repeat(batch), optimizer)
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


def _cuda_batch():
    return [dict(b, image=b["image"].cuda()) for b in random_batch()]


@pytest.mark.cuda
def test_fp16_with_grad_scaler_on_cuda(tmp_path):
    cfg = _amp_cfg(tmp_path, device="cuda", precision="float16")
    model, loop, losses, feature_dtypes = _one_step(cfg, _cuda_batch())
    assert loop.grad_scaler is not None and "grad_scaler" in loop.state_dict()
    assert feature_dtypes == [torch.float16]
    assert all(v.dtype == torch.float32 and math.isfinite(v.item()) for v in losses.values())
    # The scaler skips a step whose scaled gradients overflowed and halves its scale; it keeps
    # the scale after a step it applied. Within a few steps one is applied.
    before = [p.detach().clone() for p in model.student.parameters()]
    applied = False
    with EventStorage(1):
        for it in range(1, 20):
            scale = loop.grad_scaler.get_scale()
            loop.iter = it
            loop.run_step()
            if loop.grad_scaler.get_scale() >= scale:
                applied = True
                break
    assert applied, f"every step overflowed; scale now {loop.grad_scaler.get_scale()}"
    after = list(model.student.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _method_model(cfg, method):
    """The Distiller of ``cfg`` with ``method`` alone, or None if the method does not apply to
    this detector type."""
    cfg.MODEL.DISTILL.METHODS = [method]
    try:
        return build_model(cfg)
    except ValueError as e:
        assert "RetinaNet" in str(e) or "GeneralizedRCNN" in str(e) or "ROI" in str(e), e
        return None


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("method", method_names())
def test_every_method_steps_under_cuda_autocast(tmp_path, method, precision):
    """The trainer's step on CUDA in float16 (GradScaler) and bfloat16: the forward runs in
    reduced precision, every loss is a finite float32, no weight becomes non-finite."""
    ran = []
    for arch in ("GeneralizedRCNN", "RetinaNet"):
        cfg = _amp_cfg(tmp_path, device="cuda", precision=precision, arch=arch)
        model = _method_model(cfg, method)
        if model is None:
            continue
        _, loop, losses, feature_dtypes = _one_step(cfg, _cuda_batch(), model)
        assert (loop.grad_scaler is not None) == (precision == "float16")
        assert feature_dtypes == [getattr(torch, precision)]
        assert any(k.startswith(f"loss_{method.lower()}") for k in losses), sorted(losses)
        for k, v in losses.items():
            assert v.dtype == torch.float32 and math.isfinite(v.item()), (arch, k, v)
        for name, p in model.named_parameters():
            assert torch.isfinite(p).all(), (arch, name)
        ran.append(arch)
    assert ran, f"{method} builds with neither a Faster R-CNN nor a RetinaNet student"


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
