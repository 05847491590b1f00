"""Training runs on a tiny generated shapes dataset, for the integration tests (kill and resume,
AMP, DDP, robustness): its fixtures and a tiny Distiller config on it.

Import the fixtures into a test module to use them (``one_torch_thread`` is autouse there).
"""

import os

import pytest
import torch
from tiny_models import distill_cfg, save_teacher

from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; on a loaded 2-core machine torch's default of one
    thread per core is an order of magnitude slower (spinning OpenMP threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    """A $DETECTRON2_DATASETS holding a tiny generated csgr_shapes (12 train, 4 val, 64 px)."""
    root = tmp_path_factory.mktemp("d2datasets")
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=12, num_val=4, image_size=64)
    return root


def shapes_distill_cfg(tmp_dir, max_iter=8, period=2):
    """A tiny R18-from-R34 Distiller (CSGR) config on csgr_shapes, deterministic on the CPU."""
    cfg = distill_cfg(str(tmp_dir), num_classes=len(SHAPES_CATEGORIES))
    config_path, weights_path, _ = save_teacher(str(tmp_dir), num_classes=len(SHAPES_CATEGORIES))
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_path
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights_path
    cfg.DATASETS.TRAIN = ("csgr_shapes_train",)
    cfg.DATASETS.TEST = ()
    cfg.SEED = 7
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.BASE_LR = 0.005
    cfg.SOLVER.WARMUP_ITERS = 2
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.CHECKPOINT_PERIOD = period
    cfg.OUTPUT_DIR = str(tmp_dir / "output")
    return cfg


def write_cfg(cfg, path):
    """Write ``cfg`` as YAML to ``path``; return the path as a string."""
    with open(path, "w") as f:
        f.write(cfg.dump())
    return str(path)


def subprocess_env(shapes_root):
    """The environment of a training subprocess on the dataset under ``shapes_root``, one OpenMP
    thread."""
    return dict(os.environ, DETECTRON2_DATASETS=str(shapes_root), OMP_NUM_THREADS="1")
