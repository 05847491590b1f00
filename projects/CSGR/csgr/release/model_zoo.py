"""A model-zoo markdown table from run folders (config.yaml + metrics.json [+ a release]).

One row per run: config name, student, teacher, dataset, schedule, box AP (AP50 for PASCAL VOC
test sets), gain over the baseline student among the same runs, median time per iteration, and
links to the released files (see :mod:`csgr.release.export`).
"""

import glob
import json
import logging
import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

from detectron2.config import CfgNode
from tabulate import tabulate

from ..config import detector_meta_arch, load_config
from ..evaluation import evaluator_type, last_evaluation, read_metrics
from ..modeling.teacher import get_teacher_cfg
from .student_config import is_distiller

__all__ = [
    "RunInfo",
    "run_evaluator_type",
    "final_eval",
    "describe_detector",
    "schedule",
    "read_run",
    "model_zoo_table",
    "replace_section",
    "START_MARKER",
    "END_MARKER",
]

logger = logging.getLogger(__name__)

START_MARKER = "<!-- model-zoo:start -->"
END_MARKER = "<!-- model-zoo:end -->"
ARCH_NAMES = {"GeneralizedRCNN": "Faster R-CNN", "RetinaNet": "RetinaNet"}
ONE_X_IMAGES = 90000 * 16  # Detectron2's "1x": 90k iterations at 16 images per batch


@dataclass
class RunInfo:
    """What the table says about one run folder."""

    name: str
    path: str
    student: str
    student_key: tuple  # (meta-architecture, depth, backbone) to match a baseline
    teacher: Optional[str]
    datasets: tuple  # (DATASETS.TRAIN, DATASETS.TEST)
    dataset: str
    schedule: str
    metric: str  # "AP" or "AP50"
    value: float
    time_per_iter: Optional[float]
    release: Dict[str, Optional[str]] = field(default_factory=dict)


def run_evaluator_type(dataset_name: str, records: Sequence[dict] = ()) -> str:
    """The evaluator type of a run's test set ("coco" or "pascal_voc"): its registered metadata's
    (import the module that registers it: ``--register`` / ``$CSGR_REGISTER``); else what the
    run's metrics show (COCOEvaluator writes ``bbox/APs``, the VOC evaluator only ``bbox/AP``,
    ``AP50`` and ``AP75``); else guessed from the name (:func:`csgr.evaluation.evaluator_type`)."""
    registered = evaluator_type(dataset_name)
    if registered:
        return registered
    keys = {k for r in records for k in r}
    prefixes = ("bbox/", f"{dataset_name}/bbox/")
    if any(p + m in keys for p in prefixes for m in ("APs", "APm", "APl")):
        return "coco"
    if any(p + "AP50" in keys and p + "AP75" in keys for p in prefixes):
        return "pascal_voc"
    return evaluator_type(dataset_name, guess=True)


def final_eval(records: Sequence[dict], dataset_name: str, metric: str) -> float:
    """``metric`` of the last evaluation in metrics records (NaN if none), with one test set or
    many (``<dataset>/bbox/<metric>``)."""
    return last_evaluation(records, dataset_name).get(metric, float("nan"))


def describe_detector(cfg: CfgNode) -> str:
    """E.g. "Faster R-CNN R50-FPN", "RetinaNet X101-32x8d-FPN"."""
    arch = detector_meta_arch(cfg)
    res = cfg.MODEL.RESNETS
    backbone = cfg.MODEL.BACKBONE.NAME
    if "resnet" in backbone:
        body = f"R{res.DEPTH}" if res.NUM_GROUPS == 1 else f"X{res.DEPTH}"
        if res.NUM_GROUPS > 1:
            body += f"-{res.NUM_GROUPS}x{res.WIDTH_PER_GROUP}d"
        body += "-FPN" if "fpn" in backbone else ""
    else:
        body = backbone
    return f"{ARCH_NAMES.get(arch, arch)} {body}"


def schedule(cfg: CfgNode) -> str:
    """The schedule: "1x", "2x", "3x" when MAX_ITER x IMS_PER_BATCH matches Detectron2's (90k x
    16 images for 1x), else "<MAX_ITER> x <IMS_PER_BATCH>"."""
    images = cfg.SOLVER.MAX_ITER * cfg.SOLVER.IMS_PER_BATCH
    for mult in (1, 2, 3):
        if images == mult * ONE_X_IMAGES:
            return f"{mult}x"
    return f"{cfg.SOLVER.MAX_ITER} x {cfg.SOLVER.IMS_PER_BATCH}"


def _teacher(cfg: CfgNode, source: str) -> str:
    try:
        return describe_detector(get_teacher_cfg(cfg))
    except (OSError, KeyError, ValueError) as e:
        logger.warning(f"{source}: cannot read the teacher config ({e})")
        return os.path.splitext(os.path.basename(cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE))[0]


def _release(path: str) -> Dict[str, Optional[str]]:
    manifests = glob.glob(os.path.join(path, "release", "*_manifest.json"))
    manifests += glob.glob(os.path.join(path, "*_manifest.json"))
    if not manifests:
        return {}
    with open(max(manifests, key=os.path.getmtime)) as f:
        manifest = json.load(f)
    return dict(manifest.get("files", {}), name=manifest.get("name"))


def read_run(path: str, name: Optional[str] = None) -> RunInfo:
    """Read a run folder.

    Args:
        path: folder with ``config.yaml`` and ``metrics.json`` (and maybe ``release/``).
        name: the row's config name; default the release name, else the folder's name.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    for required in ("config.yaml", "metrics.json"):
        if not os.path.isfile(os.path.join(path, required)):
            raise FileNotFoundError(f"run folder {path} has no {required}")
    cfg = load_config(os.path.join(path, "config.yaml"))
    records = read_metrics(os.path.join(path, "metrics.json"))
    test = tuple(cfg.DATASETS.TEST)
    dataset = test[0] if test else ""
    metric = "AP50" if run_evaluator_type(dataset, records) == "pascal_voc" else "AP"
    times = [r["time"] for r in records if "time" in r]
    release = _release(path)
    return RunInfo(
        name=name or release.get("name") or os.path.basename(os.path.normpath(path)),
        path=path,
        student=describe_detector(cfg),
        student_key=(detector_meta_arch(cfg), cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.BACKBONE.NAME),
        teacher=_teacher(cfg, path) if is_distiller(cfg) else None,
        datasets=(tuple(cfg.DATASETS.TRAIN), test),
        dataset=", ".join(test),
        schedule=schedule(cfg),
        metric=metric,
        value=final_eval(records, dataset, metric),
        time_per_iter=statistics.median(times) if times else None,
        release=release,
    )


def _baseline(run: RunInfo, runs: Sequence[RunInfo]) -> Optional[RunInfo]:
    candidates = [
        r
        for r in runs
        if r.teacher is None and r.student_key == run.student_key and r.datasets == run.datasets
    ]
    same_schedule = [r for r in candidates if r.schedule == run.schedule]
    return (same_schedule or candidates or [None])[0]


def _fmt(value: Optional[float], fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def _links(run: RunInfo, url_prefix: str) -> str:
    prefix = url_prefix.rstrip("/") + "/" if url_prefix else ""
    links = [
        f"[{label}]({prefix}{run.release[key]})"
        for key, label in (("model", "model"), ("config", "config"), ("metrics", "metrics"))
        if run.release.get(key)
    ]
    return " \\| ".join(links) if links else "-"


def model_zoo_table(runs: Sequence[RunInfo], url_prefix: str = "") -> str:
    """The markdown (GitHub) table of runs, in the given order."""
    rows = []
    for run in runs:
        base = _baseline(run, runs) if run.teacher is not None else None
        gain = run.value - base.value if base is not None else None
        value = _fmt(run.value, ".2f")
        rows.append(
            [
                run.name,
                run.student,
                run.teacher or "-",
                run.dataset,
                run.schedule,
                value if run.metric == "AP" or value == "-" else f"{value} ({run.metric})",
                _fmt(gain, "+.2f"),
                _fmt(run.time_per_iter, ".3f"),
                _links(run, url_prefix),
            ]
        )
    headers = [
        "config",
        "student",
        "teacher",
        "dataset",
        "schedule",
        "box AP",
        "gain",
        "train time (s/iter)",
        "download",
    ]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def replace_section(text: str, section: str, source: str = "README") -> str:
    """``text`` with what lies between :data:`START_MARKER` and :data:`END_MARKER` replaced.

    Raises:
        ValueError: naming ``source`` when the markers are missing or out of order.
    """
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < 0 or end < start:
        raise ValueError(
            f"{source} needs the lines {START_MARKER} and {END_MARKER} (in this order) around "
            "the model-zoo table"
        )
    head = text[: start + len(START_MARKER)]
    return head + "\n" + section.rstrip("\n") + "\n" + text[end:]
