"""Releasing the student of a distillation run as a plain Detectron2 model, model-zoo style.

A Distiller checkpoint holds ``student.*`` and ``distill_losses.*`` weights (the teacher is never
saved) plus the optimizer, the scheduler and the iteration. The release keeps the student alone::

    <output>/<name>_<hash>.pth            {"model": student state_dict, "__author__": ...}
    <output>/<name>_<hash>.yaml           plain Detectron2 config, MODEL.WEIGHTS = the .pth
    <output>/<name>_<hash>_metrics.json   the run's metrics.json
    <output>/<name>_<hash>_manifest.json  what was released from where

``<hash>`` is the first 8 hex digits of the sha256 of the written ``.pth`` file, as in
Detectron2's model zoo. Vanilla Detectron2 loads the result with no ``csgr`` import::

    cfg = get_cfg(); cfg.merge_from_file("<name>_<hash>.yaml"); DefaultPredictor(cfg)
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from ..config import load_config
from .run_state import require_finished
from .student_config import check_vanilla_cfg, is_distiller, student_cfg

__all__ = [
    "HASH_LENGTH",
    "find_checkpoint",
    "student_state_dict",
    "file_sha256",
    "release_student",
]

logger = logging.getLogger(__name__)

HASH_LENGTH = 8
AUTHOR = "CSGR release (csgr.release.export)"


def find_checkpoint(run: str) -> str:
    """The checkpoint of a run: ``run`` itself if a file, else ``model_final.pth`` in the folder,
    else the file its ``last_checkpoint`` names.

    Raises:
        FileNotFoundError: naming the folder and what was looked for.
    """
    if os.path.isfile(run):
        return run
    if not os.path.isdir(run):
        raise FileNotFoundError(f"no such run folder or checkpoint {run!r}")
    final = os.path.join(run, "model_final.pth")
    if os.path.isfile(final):
        return final
    last = os.path.join(run, "last_checkpoint")
    if os.path.isfile(last):
        with open(last) as f:
            path = os.path.join(run, f.read().strip())
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{run} has no model_final.pth and no last_checkpoint naming a file")


def student_state_dict(
    model: Dict[str, torch.Tensor], distiller: bool, source: str = "checkpoint"
) -> Tuple["OrderedDict[str, torch.Tensor]", List[str]]:
    """The student's weights in a checkpoint's ``model`` dict.

    Args:
        model: the checkpoint's state dict.
        distiller: whether it is a Distiller's (``student.*`` / ``distill_losses.*`` keys) or a
            plain detector's (kept as is).
        source: the file, for error messages.

    Returns:
        (student state dict with the ``student.`` prefix stripped, the dropped keys)

    Raises:
        ValueError: naming the file and the keys that are neither student nor distillation
            weights (e.g. a teacher saved by mistake), or when there is no student weight.
    """
    if not distiller:
        if any(k.startswith(("student.", "distill_losses.")) for k in model):
            raise ValueError(
                f"{source} holds student.*/distill_losses.* keys but its config's "
                "MODEL.META_ARCHITECTURE is not 'Distiller': is config.yaml the run's config?"
            )
        return OrderedDict((k, v.detach().cpu().clone()) for k, v in model.items()), []
    student, dropped, unknown = OrderedDict(), [], []
    for k, v in model.items():
        if k.startswith("student."):
            student[k[len("student.") :]] = v.detach().cpu().clone()
        elif k.startswith(("distill_losses.", "loss_scale.")):
            dropped.append(k)
        else:
            unknown.append(k)
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise ValueError(
            f"{source}: {len(unknown)} keys are neither student.* nor distillation state "
            "(distill_losses.*, loss_scale.*) "
            f"(a teacher must never be saved with the student): {shown}"
        )
    if not student:
        raise ValueError(f"{source} holds no student.* weight")
    return student, dropped


def loss_scale_record(cfg, model: Dict[str, torch.Tensor]) -> Dict[str, object]:
    """The loss scale a distillation run trained with: its mode and, when calibrated, the
    factor of each method as saved in the checkpoint (``loss_scale.factors``)."""
    if not is_distiller(cfg):
        return {"mode": None}
    record = {"mode": cfg.MODEL.DISTILL.LOSS_SCALE.MODE}
    factors = model.get("loss_scale.factors")
    if factors is not None:
        methods = list(cfg.MODEL.DISTILL.METHODS)
        record["factors"] = dict(zip(methods, (float(f) for f in factors.tolist())))
    return record


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_name(name: str) -> str:
    if not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"release name must be a plain file name, got {name!r}")
    return name


def release_student(
    run: str,
    output_dir: Optional[str] = None,
    name: Optional[str] = None,
    config_file: Optional[str] = None,
    url_prefix: str = "",
    allow_unfinished: bool = False,
) -> dict:
    """Write the student of a run as a plain Detectron2 checkpoint + config + metrics.

    Args:
        run: a run folder (OUTPUT_DIR of a training) or a checkpoint file in one.
        output_dir: where to write; default ``<run folder>/release``.
        name: file name stem; default the run folder's name.
        config_file: the run's config; default ``config.yaml`` next to the checkpoint.
        url_prefix: if given, MODEL.WEIGHTS in the YAML is ``<url_prefix>/<name>_<hash>.pth``;
            otherwise the bare file name (resolve it against the YAML's folder, or run from it).
        allow_unfinished: release a checkpoint written before the end of training (else an
            :class:`~csgr.errors.UnfinishedRunError`; see :mod:`.run_state`).

    Returns:
        The manifest (also written): name, sha256, file names, source paths, ...
    """
    checkpoint_path = find_checkpoint(run)
    run_dir = os.path.dirname(os.path.abspath(checkpoint_path))
    config_file = config_file or os.path.join(run_dir, "config.yaml")
    name = _check_name(name or os.path.basename(run_dir))
    output_dir = output_dir or os.path.join(run_dir, "release")
    os.makedirs(output_dir, exist_ok=True)

    cfg = load_config(config_file)
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{checkpoint_path} is not a Detectron2 checkpoint (no 'model' entry)")
    iteration = checkpoint.get("iteration")
    finished = require_finished(checkpoint_path, iteration, cfg.SOLVER.MAX_ITER, allow_unfinished)
    state, dropped = student_state_dict(checkpoint["model"], is_distiller(cfg), checkpoint_path)

    fd, tmp = tempfile.mkstemp(suffix=".pth", dir=output_dir)
    os.close(fd)
    try:
        torch.save({"model": state, "__author__": AUTHOR}, tmp)
        sha256 = file_sha256(tmp)
        stem = f"{name}_{sha256[:HASH_LENGTH]}"
        weights_name = stem + ".pth"
        os.replace(tmp, os.path.join(output_dir, weights_name))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    weights = f"{url_prefix.rstrip('/')}/{weights_name}" if url_prefix else weights_name
    scfg, removed = student_cfg(cfg, weights)
    yaml_name = stem + ".yaml"
    yaml_path = os.path.join(output_dir, yaml_name)
    with open(yaml_path, "w") as f:
        f.write(scfg.dump())
    check_vanilla_cfg(yaml_path)

    metrics_src = os.path.join(run_dir, "metrics.json")
    metrics_name = None
    if os.path.isfile(metrics_src):
        metrics_name = stem + "_metrics.json"
        shutil.copyfile(metrics_src, os.path.join(output_dir, metrics_name))
    else:
        logger.warning(f"{metrics_src} does not exist: releasing without metrics")

    manifest = {
        "name": name,
        "sha256": sha256,
        "files": {"model": weights_name, "config": yaml_name, "metrics": metrics_name},
        "model_weights": weights,
        "meta_architecture": scfg.MODEL.META_ARCHITECTURE,
        "distilled": is_distiller(cfg),
        "distill_methods": list(cfg.MODEL.DISTILL.METHODS) if is_distiller(cfg) else [],
        "teacher_config": cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE if is_distiller(cfg) else None,
        "source_checkpoint": os.path.abspath(checkpoint_path),
        "source_config": os.path.abspath(config_file),
        "iteration": iteration,
        "max_iter": cfg.SOLVER.MAX_ITER,
        "finished": finished,
        "num_student_tensors": len(state),
        "num_parameters": int(sum(v.numel() for v in state.values())),
        "dropped_distill_keys": len(dropped),
        "loss_scale": loss_scale_record(cfg, checkpoint["model"]),
        "removed_config_keys": removed,
    }
    manifest_name = stem + "_manifest.json"
    with open(os.path.join(output_dir, manifest_name), "w") as f:
        json.dump(manifest, f, indent=2)
    logger.info(
        f"Released {len(state)} student tensors of {checkpoint_path} as "
        f"{os.path.join(output_dir, weights_name)} (dropped {len(dropped)} distillation tensors, "
        "the optimizer, the scheduler and the iteration)"
    )
    return dict(manifest, output_dir=os.path.abspath(output_dir), manifest=manifest_name)
