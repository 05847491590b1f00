"""Pictures (attention maps, training curves, demo) and the logging of a tiny distillation run."""

import glob
import json
import math
import os

import cv2
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import default_argument_parser
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_models import load_tool, save_teacher, tiny_cfg

import csgr  # noqa: F401
from csgr.config import add_csgr_config
from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset
from csgr.layers import CrissCrossAttention, criss_cross_aggregate
from csgr.release import release_student
from csgr.visualization.attention import category_attention, criss_cross_relation
from csgr.visualization.curves import figure_size
from csgr.visualization.job_pictures import first_test_image, write_job_pictures

SIZE = 64
ITERS = 4


@pytest.fixture(scope="module")
def distill_run(tmp_path_factory):
    """A 4-iteration CSGR run of tools/train_net.py on generated shapes.

    Returns:
        (run folder, folder of the validation images)
    """
    tmp = tmp_path_factory.mktemp("distill_run")
    root = tmp / "d2datasets"
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=8, num_val=3, image_size=SIZE)
    datasets = dict(DatasetCatalog)
    metadata = {name: dict(meta.__dict__) for name, meta in MetadataCatalog.items()}
    num_classes = len(SHAPES_CATEGORIES)
    cfg = tiny_cfg(num_classes=num_classes, size=SIZE)
    teacher_config, teacher_weights, _ = save_teacher(str(tmp), num_classes=num_classes)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = teacher_config
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = teacher_weights
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("csgr_shapes_train",), ("csgr_shapes_val",)
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.CHECKPOINT_PERIOD = ITERS, 1, 1000
    cfg.SOLVER.BASE_LR = 0.001  # keeps the BN statistics sane: the student still detects
    cfg.OUTPUT_DIR = str(tmp / "run")
    (tmp / "distill.yaml").write_text(cfg.dump())
    argv = ["--config-file", str(tmp / "distill.yaml")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DETECTRON2_DATASETS", str(root))
        load_tool("train_net").main(default_argument_parser().parse_args(argv))
        yield cfg.OUTPUT_DIR, str(root / "csgr_shapes" / "val")
    DatasetCatalog.clear()  # as conftest.restore_catalogs, for the whole module
    DatasetCatalog.update(datasets)
    for name in list(MetadataCatalog.keys()):
        if name not in metadata:
            MetadataCatalog.remove(name)
    for name, saved in metadata.items():
        MetadataCatalog.get(name).__dict__.clear()
        MetadataCatalog.get(name).__dict__.update(saved)


def _read_png(path, shape):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None and os.path.getsize(path) > 0, path
    assert image.shape == shape, (path, image.shape, shape)
    assert image.std() > 0, path  # not a blank picture
    return image


def test_distillation_terms_logged_with_eta(distill_run):
    run_dir, _ = distill_run
    with open(os.path.join(run_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if "total_loss" in r]
    assert train and all({"loss_csgr_cat", "loss_csgr_rel", "loss_cls"} <= set(r) for r in train)
    assert train[-1]["iteration"] == ITERS - 1
    assert "eta_seconds" in train[-1] and "time" in train[-1]  # CommonMetricPrinter's ETA
    (final,) = [r for r in records if "bbox/AP" in r]
    assert math.isfinite(final["bbox/AP"])
    with open(os.path.join(run_dir, "log.txt")) as f:
        log = f.read()
    assert "eta: " in log and "loss_csgr_cat: " in log and "loss_csgr_rel: " in log
    (events,) = glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))
    tags = EventAccumulator(events).Reload().Tags()["scalars"]
    assert {"loss_csgr_cat", "loss_csgr_rel", "total_loss", "bbox/AP"} <= set(tags)


def test_plot_curves(distill_run, tmp_path):
    run_dir, _ = distill_run
    baseline = tmp_path / "baseline.json"
    lines = [
        {"iteration": i, "total_loss": 2.0 - i / 4, "loss_cls": 1.0, "time": 0.1} for i in range(4)
    ]
    lines.append({"iteration": 3, "bbox/AP": 1.5})
    baseline.write_text("".join(json.dumps(r) + "\n" for r in lines))
    output = tmp_path / "curves.png"
    keys = load_tool("plot_curves").main(
        [f"baseline={baseline}", f"csgr={run_dir}", "--output", str(output), "--smooth", "2"]
    )
    assert keys[0] == "total_loss" and keys[-1] == "bbox/AP"
    assert {"loss_csgr_cat", "loss_csgr_rel", "loss_cls"} <= set(keys)
    _read_png(output, (*figure_size(len(keys)), 3))


def test_criss_cross_relation_matches_the_layer():
    torch.manual_seed(0)
    module = CrissCrossAttention(16, reduction=4, recurrence=2)
    x = torch.randn(1, 16, 5, 7)
    for step in (0, 1):
        y = (
            x
            if step == 0
            else module.residual(
                x,
                criss_cross_aggregate(
                    module.query_conv(x), module.key_conv(x), module.value_conv(x)
                ),
            )
        )
        expected = criss_cross_aggregate(
            module.query_conv(y), module.key_conv(y), module.value_conv(y)
        )
        with torch.no_grad():
            relation = criss_cross_relation(module, x, 2, 3, step)
            value = module.value_conv(y)[0]
        assert relation.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert (relation != 0).sum() <= 5 + 7 - 1 and relation[0, 0] == 0
        aggregated = (value * relation).sum(dim=(1, 2))
        torch.testing.assert_close(aggregated, expected[0, :, 2, 3].detach(), atol=1e-5, rtol=1e-4)
    attention = category_attention(torch.nn.Conv2d(16, 3, 1), x)
    assert attention.shape == (3, 5, 7)
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(3))


def test_visualize_attention(distill_run, tmp_path):
    run_dir, val_dir = distill_run
    image = sorted(glob.glob(os.path.join(val_dir, "*.jpg")))[0]
    output = tmp_path / "attention"
    argv = ["--config-file", os.path.join(run_dir, "config.yaml")]
    argv += ["--weights", os.path.join(run_dir, "model_final.pth"), "--input", image]
    argv += ["--output", str(output), "--levels", "p2", "p3", "--pixel", "10", "50"]
    written = load_tool("visualize_attention").main(argv)
    names = [c["name"] for c in SHAPES_CATEGORIES]
    expected = [
        f"category_{lvl}_{k:02d}_{n}.png" for lvl in ("p2", "p3") for k, n in enumerate(names)
    ]
    expected += ["relation_p2.png", "relation_p3.png"]
    assert sorted(os.path.basename(p) for p in written) == sorted(expected)
    for path in written:
        _read_png(path, (SIZE, 3 * SIZE, 3))


def test_visualize_attention_of_box_attention_draws_the_relations(distill_run, tmp_path):
    # CATEGORY_ATTENTION "gt" has no classifier: its attention is the boxes, not drawn here
    run_dir, val_dir = distill_run
    image = sorted(glob.glob(os.path.join(val_dir, "*.jpg")))[0]
    state = torch.load(os.path.join(run_dir, "model_final.pth"), weights_only=True)["model"]
    weights = tmp_path / "gt.pth"
    torch.save({"model": {k: v for k, v in state.items() if ".classifiers." not in k}}, weights)
    argv = ["--config-file", os.path.join(run_dir, "config.yaml"), "--weights", str(weights)]
    argv += ["--input", image, "--output", str(tmp_path / "attention")]  # the finest level
    argv += ["MODEL.DISTILL.CSGR.CATEGORY_ATTENTION", "gt"]
    written = load_tool("visualize_attention").main(argv)
    assert [os.path.basename(p) for p in written] == ["relation_p2.png"]


def test_demo_one_image_per_input(distill_run, tmp_path):
    run_dir, val_dir = distill_run
    manifest = release_student(run_dir, str(tmp_path / "release"), "tiny")
    config = os.path.join(manifest["output_dir"], manifest["files"]["config"])
    inputs = sorted(glob.glob(os.path.join(val_dir, "*.jpg")))
    demo = load_tool("demo")

    def run(output, threshold, *images):
        argv = ["--config-file", config, "--output", str(tmp_path / output)]
        return demo.main([*argv, "--confidence-threshold", str(threshold), "--input", *images])

    written = run("demo", 0.0, val_dir)
    assert [os.path.basename(p) for p in written] == [os.path.basename(p) for p in inputs]
    empty = run("nothing_drawn", 1.01, val_dir)
    for src, drawn, plain in zip(inputs, written, empty):
        shape = cv2.imread(src).shape
        assert (_read_png(drawn, shape) != _read_png(plain, shape)).any()  # boxes were drawn
    pattern = os.path.join(val_dir, "*1.jpg")
    single = run("single", 0.5, inputs[0], pattern)
    assert len(single) == 1 + len(glob.glob(pattern)) == 2


def test_job_pictures_curves_and_attention_of_the_first_val_image(distill_run, tmp_path):
    run_dir, val_dir = distill_run
    written = write_job_pictures(str(tmp_path / "pics"), {"CSGR": run_dir}, distill_run=run_dir)
    assert written[0] == str(tmp_path / "pics" / "curves.png")
    assert cv2.imread(written[0]) is not None
    names = [c["name"] for c in SHAPES_CATEGORIES]
    expected = [f"category_p2_{k:02d}_{n}.png" for k, n in enumerate(names)] + ["relation_p2.png"]
    assert sorted(os.path.basename(p) for p in written[1:]) == sorted(expected)
    for path in written[1:]:  # the first val image, as written by the generator
        _read_png(path, (SIZE, 3 * SIZE, 3))
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.merge_from_file(os.path.join(run_dir, "config.yaml"))
    assert os.path.dirname(first_test_image(cfg)) == val_dir
