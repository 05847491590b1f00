"""Tiny detector configs, teachers on disk and random batches for CPU tests."""

import importlib.util
import os

import torch
from detectron2.config import get_cfg
from detectron2.structures import Boxes, Instances

from csgr.config import add_csgr_config, load_config
from csgr.modeling import build_detector

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASES = {
    "GeneralizedRCNN": os.path.join(ROOT, "configs", "Base-RCNN-FPN.yaml"),
    "RetinaNet": os.path.join(ROOT, "configs", "Base-RetinaNet.yaml"),
}


def load_script(path):
    """Import a script of the repository (e.g. ``tools/train_net.py``) as a module.

    Args:
        path: relative to the repository root.
    """
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name):
    """``tools/<name>.py`` as a module."""
    return load_script(os.path.join("tools", name + ".py"))


def config_from_file(path):
    """A CSGR config (every method's keys) merged from the YAML at ``path``."""
    return load_config(path)


def tiny_cfg(arch="GeneralizedRCNN", depth=18, fpn_channels=32, num_classes=3, size=64, base=None):
    """A detector config small enough to train a step in well under a second on the CPU.

    ``base`` is the YAML to start from (default: ``configs/Base-<arch>.yaml``)."""
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.merge_from_file(base or BASES[arch])
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.RESNETS.DEPTH = depth
    if depth < 50:
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.FPN.OUT_CHANNELS = fpn_channels
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.RETINANET.NUM_CLASSES = num_classes
    cfg.MODEL.RETINANET.NUM_CONVS = 1
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 64
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 64
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[s] for s in (8, 16, 32, 64, 128)]
    cfg.INPUT.MIN_SIZE_TRAIN = (size,)
    cfg.INPUT.MAX_SIZE_TRAIN = size
    cfg.INPUT.MIN_SIZE_TEST = size
    cfg.INPUT.MAX_SIZE_TEST = size
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # an untrained model still predicts boxes
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = 0.0
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


# backbone name -> (bottom-up config node, variant or None)
MOBILE_BACKBONES = {
    "mobilenet_v2": ("MOBILENET_V2", None),
    "efficientnet_lite": ("EFFICIENTNET_LITE", "lite0"),
}


def mobile_cfg(arch="GeneralizedRCNN", backbone="mobilenet_v2", variant=None, fpn_channels=32):
    """A tiny detector config on a mobile backbone, from random weights.

    Args:
        arch: the meta-architecture.
        backbone: a key of :data:`MOBILE_BACKBONES`.
        variant: the EfficientNet-Lite variant (default: the backbone's).
        fpn_channels: ``MODEL.FPN.OUT_CHANNELS``.
    """
    cfg = tiny_cfg(arch, fpn_channels=fpn_channels, size=64)
    node, default_variant = MOBILE_BACKBONES[backbone]
    retina = arch == "RetinaNet"
    cfg.MODEL.BACKBONE.NAME = f"build_{'retinanet_' if retina else ''}{backbone}_fpn_backbone"
    features = ["res3", "res4", "res5"] if retina else ["res2", "res3", "res4", "res5"]
    cfg.MODEL[node].OUT_FEATURES = features
    cfg.MODEL[node].NORM = "FrozenBN"
    cfg.MODEL.FPN.IN_FEATURES = features
    if variant or default_variant:
        cfg.MODEL.EFFICIENTNET_LITE.VARIANT = variant or default_variant
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    cfg.INPUT.FORMAT = "RGB"
    return cfg


def save_teacher(
    tmp_dir,
    arch="GeneralizedRCNN",
    depth=34,
    fpn_channels=64,
    num_classes=3,
    base=None,
    anchor_sizes=None,
):
    """Build a random teacher, write its YAML and weights under ``tmp_dir``.

    ``anchor_sizes`` is its ``MODEL.ANCHOR_GENERATOR.SIZES`` (default: :func:`tiny_cfg`'s).

    Returns:
        (config path, weights path, the teacher model)
    """
    cfg = tiny_cfg(arch, depth=depth, fpn_channels=fpn_channels, num_classes=num_classes, base=base)
    cfg.MODEL.META_ARCHITECTURE = arch
    if anchor_sizes is not None:
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = anchor_sizes
    torch.manual_seed(123)
    model = build_detector(cfg)
    config_path = os.path.join(tmp_dir, f"teacher_{arch}_{depth}.yaml")
    weights_path = os.path.join(tmp_dir, f"teacher_{arch}_{depth}.pth")
    with open(config_path, "w") as f:
        f.write(cfg.dump())
    torch.save({"model": model.state_dict()}, weights_path)
    return config_path, weights_path, model


def distill_cfg(tmp_dir, student_arch="GeneralizedRCNN", teacher_arch="GeneralizedRCNN", **kw):
    """A Distiller config with a tiny R18 student and a freshly saved tiny R34 teacher."""
    cfg = tiny_cfg(student_arch, **kw)
    config_path, weights_path, _ = save_teacher(tmp_dir, teacher_arch)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = student_arch
    cfg.MODEL.DISTILL.METHODS = ["CSGR"]
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_path
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights_path
    return cfg


def random_batch(num_images=2, size=64, num_classes=3, boxes_per_image=3, seed=0):
    """Detectron2 ``DatasetMapper``-style training inputs with random images and boxes."""
    g = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(num_images):
        inst = Instances((size, size))
        xy = torch.rand(boxes_per_image, 2, generator=g) * size * 0.6
        wh = 6 + torch.rand(boxes_per_image, 2, generator=g) * size * 0.35
        inst.gt_boxes = Boxes(torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1))
        inst.gt_classes = torch.randint(0, num_classes, (boxes_per_image,), generator=g)
        image = torch.rand(3, size, size, generator=g) * 255
        batch.append({"image": image, "instances": inst, "height": size, "width": size})
    return batch


def two_test_set_study(tmp_path, monkeypatch):
    """(output folder, argv) of a tiny benchmark_accuracy study (teacher, baseline, CSGR; 2
    iterations, 64 px shapes written under ``tmp_path``) whose runs evaluate two test sets."""
    from csgr.data.datasets import generate_shapes_dataset

    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=8, num_val=4, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    out = tmp_path / "bench"
    argv = ["--iters", "2", "--teacher-iters", "2", "--seeds", "1", "--methods", "CSGR"]
    argv += ["--output", str(out), "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]
    argv += ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    argv += ["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64"]
    argv += ["DATASETS.TEST", "('csgr_shapes_train','csgr_shapes_val')"]
    return out, argv
