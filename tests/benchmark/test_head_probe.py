"""tools/probe_heads.py: RPN recall and the box classifier on the ground truth, known values."""

import json

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Boxes
from tiny_models import load_tool, save_teacher, tiny_cfg

from csgr.benchmark.head_probe import gt_recall_hits, plateau_trace, probe_heads
from csgr.data.datasets import generate_shapes_dataset
from csgr.modeling import build_detector


def test_gt_recall_hits_known_values():
    gt = Boxes(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]))
    proposals = Boxes(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 28], [0, 0, 5, 5]]))
    # IoUs of the best proposal: 1.0, 0.8, 0.0
    assert gt_recall_hits(gt, proposals, (0.5, 0.7, 0.9)) == {0.5: 2, 0.7: 2, 0.9: 1}
    assert gt_recall_hits(gt, Boxes(torch.zeros(0, 4)), (0.5,)) == {0.5: 0}


@pytest.fixture
def shapes(tmp_path, monkeypatch):
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=4, num_val=6, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    classes = MetadataCatalog.get("csgr_shapes_val").thing_classes
    gt = [a["category_id"] for d in DatasetCatalog.get("csgr_shapes_val") for a in d["annotations"]]
    return tmp_path, len(classes), gt


def _biased_classifier(detector, index):
    """Every ROI's scores: 0 except a large logit on ``index``."""
    cls_score = detector.roi_heads.box_predictor.cls_score
    with torch.no_grad():
        cls_score.weight.zero_()
        cls_score.bias.zero_()
        cls_score.bias[index] = 30.0


def test_probe_of_a_classifier_with_a_known_answer(shapes):
    _, num_classes, gt = shapes
    cfg = tiny_cfg(num_classes=num_classes)
    torch.manual_seed(0)
    detector = build_detector(cfg)
    _biased_classifier(detector, num_classes)  # background: the plateau
    probe = probe_heads(detector, cfg, "csgr_shapes_val", max_images=6, top_k=64)
    assert (probe.images, probe.objects) == (6, len(gt))
    summary = probe.summary()
    assert summary["accuracy"] == 0.0 and summary["background"] == 1.0
    assert summary["p_true"] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 <= summary["recall@0.7"] <= summary["recall@0.5"] <= 1.0

    _biased_classifier(detector, gt[0])  # always the first object's class
    summary = probe_heads(detector, cfg, "csgr_shapes_val", max_images=6).summary()
    share = sum(c == gt[0] for c in gt) / len(gt)
    assert summary["accuracy"] == pytest.approx(share) and summary["background"] == 0.0
    assert summary["p_true"] == pytest.approx(share, abs=1e-6)
    assert detector.training  # left in the mode it was in


def test_probe_needs_roi_heads(shapes):
    cfg = tiny_cfg("RetinaNet", num_classes=shapes[1])
    with pytest.raises(ValueError, match="Faster R-CNN.*RetinaNet"):
        probe_heads(build_detector(cfg), cfg, "csgr_shapes_val")


def test_plateau_trace_keeps_every_nth_and_the_last(tmp_path):
    rows = [
        {"iteration": i, "loss_cls": 1.0 / (i + 1), "fast_rcnn/false_negative": 1.0}
        for i in range(7)
    ]
    rows.insert(3, {"iteration": 2, "bbox/AP": 5.0})  # an evaluation line: no training metric
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    kept = plateau_trace(str(tmp_path), every=3)
    assert [r["iteration"] for r in kept] == [2, 5, 6]
    assert kept[0] == {"iteration": 2, "fast_rcnn/false_negative": 1.0, "loss_cls": 1.0 / 3}
    (tmp_path / "metrics.json").write_text(json.dumps({"iteration": 0, "bbox/AP": 1.0}))
    with pytest.raises(ValueError, match="metrics.json: no training metrics"):
        plateau_trace(str(tmp_path))


def test_tool_probes_a_distilled_run_folder(shapes, capsys):
    tmp_path, num_classes, gt = shapes
    cfg = tiny_cfg(num_classes=num_classes)
    config_path, weights_path, _ = save_teacher(str(tmp_path), num_classes=num_classes)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_path
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights_path
    run = tmp_path / "run"
    run.mkdir()
    model = build_model(cfg)
    _biased_classifier(model.student, num_classes)
    DetectionCheckpointer(model, save_dir=str(run)).save("model_final")
    (run / "config.yaml").write_text(cfg.dump())
    metrics = [{"iteration": i, "loss_cls": 0.5, "fast_rcnn/false_negative": 1.0} for i in range(4)]
    (run / "metrics.json").write_text("\n".join(json.dumps(m) for m in metrics))

    output = tmp_path / "probe.json"
    results = load_tool("probe_heads").main(
        [str(run), "--dataset", "csgr_shapes_val", "--every", "2", "--output", str(output)]
    )
    out = capsys.readouterr().out
    assert results[str(run)]["background"] == 1.0  # the student's weights were loaded
    assert f"{len(gt)} objects in 6 images of csgr_shapes_val" in out
    assert "    it 1  fast_rcnn/false_negative 1.000  loss_cls 0.500" in out
    assert "    it 3  " in out
    data = json.loads(output.read_text())
    assert data["provenance"]["command"].startswith("python tools/probe_heads.py ")
    probe, plateau = data["tables"]
    assert probe["columns"][:2] == ["run", "recall@0.5"]
    assert (
        probe["rows"][0][0] == str(run)
        and probe["rows"][0][probe["columns"].index("background")] == "1.000"
    )
    assert plateau["columns"] == ["run", "iteration", "fast_rcnn/false_negative", "loss_cls"]
    assert [r[1] for r in plateau["rows"]] == ["1", "3"]
