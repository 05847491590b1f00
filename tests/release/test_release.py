"""Student release (round trip, vanilla Detectron2 load), model-zoo table, teacher check."""

import io
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.engine import DefaultPredictor
from run_folders import make_distill_run, write_metrics
from tiny_models import load_tool, save_teacher, tiny_cfg

import csgr  # noqa: F401
from csgr.data.datasets import SHAPES_CATEGORIES, generate_shapes_dataset
from csgr.engine.user_modules import ENV_VAR, import_user_modules
from csgr.release import file_sha256, release_student, replace_section, student_state_dict


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(64, 64, 3), (48, 80, 3)]]


def _distiller_instances(model, cfg, image):
    """The Distiller's outputs on the input DefaultPredictor builds from ``image`` (BGR)."""
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    x = aug.get_transform(image).apply_image(image)
    inputs = {"image": torch.as_tensor(x.astype("float32").transpose(2, 0, 1))}
    with torch.no_grad():
        return model([dict(inputs, height=image.shape[0], width=image.shape[1])])[0]["instances"]


def _assert_same(a, b):
    assert len(a) == len(b) > 0
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-4)
    assert torch.equal(a.pred_classes, b.pred_classes)


@pytest.mark.parametrize("student_arch", ["GeneralizedRCNN", "RetinaNet"])
def test_release_round_trip(tmp_path, monkeypatch, student_arch):
    run_dir, cfg, model = make_distill_run(tmp_path, student_arch)
    out = tmp_path / "release"
    load_tool("release_student").main([run_dir, "--output", str(out), "--name", "tiny"])
    (manifest_file,) = out.glob("tiny_*_manifest.json")
    manifest = json.loads(manifest_file.read_text())
    files = manifest["files"]
    weights = out / files["model"]
    sha = file_sha256(str(weights))
    assert manifest["sha256"] == sha
    for key, suffix in (("model", ".pth"), ("config", ".yaml"), ("metrics", "_metrics.json")):
        assert files[key] == f"tiny_{sha[:8]}{suffix}"
    assert (out / files["metrics"]).read_bytes() == (tmp_path / "run" / "metrics.json").read_bytes()

    # only the student: no distillation, teacher, optimizer, scheduler or iteration
    saved = torch.load(weights, weights_only=True)
    assert set(saved) == {"model", "__author__"}
    keys = list(saved["model"])
    assert not [k for k in keys if k.startswith(("student.", "distill_losses", "teacher"))]
    assert set(keys) == set(model.student.state_dict())
    buffer = io.BytesIO()
    torch.save({"model": model.student.state_dict()}, buffer)
    assert abs(weights.stat().st_size - buffer.tell()) < 0.01 * buffer.tell()

    # a plain Detectron2 config, loaded next to the weights by their file name
    text = (out / files["config"]).read_text()
    assert "DISTILL" not in text and "Distiller" not in text
    monkeypatch.chdir(out)
    vanilla = get_cfg()
    vanilla.merge_from_file(files["config"])
    assert vanilla.MODEL.META_ARCHITECTURE == student_arch
    assert vanilla.MODEL.WEIGHTS == files["model"]
    assert vanilla.DATASETS.TEST == cfg.DATASETS.TEST
    predictor = DefaultPredictor(vanilla)
    for image in _images():
        _assert_same(predictor(image)["instances"], _distiller_instances(model, cfg, image))


def test_vanilla_detectron2_loads_release_without_csgr(tmp_path):
    run_dir, cfg, model = make_distill_run(tmp_path)
    cfg.DATASETS.TEST = ("csgr_shapes_val",)  # registered by csgr only
    (tmp_path / "run" / "config.yaml").write_text(cfg.dump())
    manifest = release_student(run_dir, str(tmp_path / "release"), "tiny")
    image = _images()[1]
    np.save(tmp_path / "image.npy", image)
    script = textwrap.dedent("""
        import json, sys
        sys.modules["csgr"] = None  # any import of csgr now fails
        import numpy as np
        from detectron2.config import get_cfg
        from detectron2.engine import DefaultPredictor
        cfg = get_cfg()
        cfg.merge_from_file(sys.argv[1])
        out = DefaultPredictor(cfg)(np.load(sys.argv[2]))["instances"]
        loaded = sorted(m for m in sys.modules if m.startswith("csgr."))
        json.dump({"boxes": out.pred_boxes.tensor.tolist(), "scores": out.scores.tolist(),
                   "classes": out.pred_classes.tolist(), "csgr_modules": loaded},
                  open(sys.argv[3], "w"))
        """)
    (tmp_path / "vanilla.py").write_text(script)
    result_file = tmp_path / "result.json"
    args = [str(tmp_path / "vanilla.py"), manifest["files"]["config"], str(tmp_path / "image.npy")]
    subprocess.run(
        [sys.executable, *args, str(result_file)], cwd=manifest["output_dir"], check=True
    )
    result = json.loads(result_file.read_text())
    assert result["csgr_modules"] == []
    expected = _distiller_instances(model, cfg, image)
    assert len(result["boxes"]) == len(expected) > 0
    boxes = torch.tensor(result["boxes"])
    torch.testing.assert_close(boxes, expected.pred_boxes.tensor, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(result["scores"]), expected.scores, atol=1e-5, rtol=0)
    assert result["classes"] == expected.pred_classes.tolist()


def test_student_state_dict_rejects_foreign_keys():
    weights = {"student.a": torch.zeros(1), "distill_losses.b": torch.zeros(1)}
    student, dropped = student_state_dict(weights, distiller=True)
    assert list(student) == ["a"] and dropped == ["distill_losses.b"]
    with pytest.raises(ValueError, match="teacher.backbone.x"):
        student_state_dict(dict(weights, **{"teacher.backbone.x": torch.zeros(1)}), True, "f.pth")
    with pytest.raises(ValueError, match="not 'Distiller'"):
        student_state_dict(weights, distiller=False)


def _fixture_run(root, name, cfg, ap, times=(0.2, 0.4, 0.3), ap_key="bbox/AP", extra=None):
    run_dir = root / name
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(cfg.dump())
    records = [
        {"iteration": i, "total_loss": 1.0 / (i + 1), "time": t} for i, t in enumerate(times)
    ]
    records.append(dict({"iteration": len(times) - 1, ap_key: ap}, **(extra or {})))
    write_metrics(run_dir, records)
    return run_dir


def test_model_zoo_table(tmp_path):
    def shapes(cfg, max_iter=1200, batch=8):
        cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("csgr_shapes_train",), ("csgr_shapes_val",)
        cfg.SOLVER.MAX_ITER, cfg.SOLVER.IMS_PER_BATCH = max_iter, batch
        return cfg

    teacher = _fixture_run(tmp_path, "teacher", shapes(tiny_cfg(depth=50)), 60.0)
    baseline = _fixture_run(tmp_path, "baseline", shapes(tiny_cfg(depth=18)), 40.0)
    distilled_cfg = shapes(tiny_cfg(depth=18))
    distilled_cfg.MODEL.META_ARCHITECTURE = "Distiller"
    distilled_cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = str(teacher / "config.yaml")
    distilled = _fixture_run(tmp_path, "csgr", distilled_cfg, 42.5, times=(0.5, 0.7, 0.6, 9.0))
    (distilled / "release").mkdir()
    files = {"model": "csgr_r18_0123abcd.pth", "config": "csgr_r18_0123abcd.yaml", "metrics": None}
    manifest = {"name": "csgr_r18", "files": files}
    (distilled / "release" / "csgr_r18_0123abcd_manifest.json").write_text(json.dumps(manifest))
    voc_cfg = tiny_cfg(arch="RetinaNet", depth=50)
    voc_cfg.DATASETS.TRAIN, voc_cfg.DATASETS.TEST = ("voc_2007_trainval",), ("voc_2007_test",)
    voc_cfg.SOLVER.MAX_ITER, voc_cfg.SOLVER.IMS_PER_BATCH = 90000, 16
    voc = _fixture_run(tmp_path, "voc", voc_cfg, 75.0, ap_key="bbox/AP50", extra={"bbox/AP": 50})

    output = tmp_path / "zoo.md"
    runs = [str(teacher), str(baseline), str(distilled), f"my_voc={voc}"]
    tool = load_tool("model_zoo_table")
    tool.main([*runs, "--url-prefix", "https://host/zoo/", "--output", str(output)])
    lines = output.read_text().splitlines()
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    assert cells[0][:6] == ["config", "student", "teacher", "dataset", "schedule", "box AP"]
    assert len(lines) == 6
    rows = {row[0]: row[1:] for row in cells[2:]}
    shapes_r50, shapes_r18 = "Faster R-CNN R50-FPN", "Faster R-CNN R18-FPN"
    assert rows["teacher"][:6] == [shapes_r50, "-", "csgr_shapes_val", "1200 x 8", "60.00", "-"]
    assert rows["baseline"][:6] == [shapes_r18, "-", "csgr_shapes_val", "1200 x 8", "40.00", "-"]
    # gain over the baseline, median time, links with the prefix
    assert rows["csgr_r18"][:7] == [
        shapes_r18,
        shapes_r50,
        "csgr_shapes_val",
        "1200 x 8",
        "42.50",
        "+2.50",
        "0.650",
    ]
    model_link = "[model](https://host/zoo/csgr_r18_0123abcd.pth)"
    assert (
        rows["csgr_r18"][7] == model_link + " \\| [config](https://host/zoo/csgr_r18_0123abcd.yaml)"
    )
    assert rows["baseline"][7] == "-"
    assert rows["my_voc"][0] == "RetinaNet R50-FPN"
    assert rows["my_voc"][3:5] == ["1x", "75.00 (AP50)"]

    readme = tmp_path / "README.md"
    readme.write_text("# Zoo\nintro\n<!-- model-zoo:start -->\nold\n<!-- model-zoo:end -->\nend\n")
    tool.main([*runs, "--readme", str(readme)])
    tool.main([*runs, "--readme", str(readme)])  # idempotent
    text = readme.read_text()
    assert text.startswith("# Zoo\nintro\n<!-- model-zoo:start -->\n| config")
    assert text.endswith("|\n<!-- model-zoo:end -->\nend\n") and "old" not in text
    assert text.count("model-zoo:start") == 1 and text.count("\n| csgr_r18 ") == 1
    with pytest.raises(ValueError, match="NOTES.md"):
        replace_section("no markers", "table", source="NOTES.md")


@pytest.fixture
def shapes_env(tmp_path, monkeypatch, restore_catalogs):
    root = tmp_path / "d2datasets"
    generate_shapes_dataset(str(root / "csgr_shapes"), num_train=2, num_val=3, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    return root


def test_check_teacher_fails_on_random_teacher(tmp_path, shapes_env, capsys):
    num_classes = len(SHAPES_CATEGORIES)
    cfg = tiny_cfg(num_classes=num_classes)
    config_path, weights_path, _ = save_teacher(str(tmp_path), num_classes=num_classes)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_path
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = "set/on/the/command/line.pth"
    cfg.DATASETS.TEST = ("csgr_shapes_val",)
    (tmp_path / "distill.yaml").write_text(cfg.dump())
    argv = ["--config-file", str(tmp_path / "distill.yaml")]
    opts = ["MODEL.DISTILL.TEACHER.WEIGHTS", weights_path]
    tool = load_tool("check_teacher")

    assert tool.main([*argv, *opts]) == 1  # random weights: AP ~ 0 < 1.0
    out = capsys.readouterr().out
    assert "FAIL: teacher AP on csgr_shapes_val" in out and "did not load" in out
    assert weights_path in out
    assert tool.main([*argv, "--min-ap", "-1", *opts]) == 0
    assert "OK: teacher AP on csgr_shapes_val" in capsys.readouterr().out

    # a user's own COCO-format dataset, registered by a module given with --register
    module = tmp_path / "my_datasets.py"
    shapes = shapes_env / "csgr_shapes"
    module.write_text(
        "from detectron2.data.datasets import register_coco_instances\n"
        f"register_coco_instances('my_val', {{}}, '{shapes}/annotations/instances_val.json', "
        f"'{shapes}/val')\n"
    )
    test_set = ["DATASETS.TEST", "('my_val',)"]
    assert tool.main([*argv, "--min-ap", "-1", "--register", str(module), *opts, *test_set]) == 0
    assert "OK: teacher AP on my_val" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="command/line.pth"):
        tool.main(argv)


def test_import_user_modules(tmp_path, monkeypatch):
    first, second, log = tmp_path / "first.py", tmp_path / "second.py", tmp_path / "imports.log"
    first.write_text(f"open({str(log)!r}, 'a').write('first\\n')\n")
    second.write_text("VALUE = 2\n")
    monkeypatch.setenv(ENV_VAR, str(first))  # $CSGR_REGISTER, then the --register modules
    modules = import_user_modules([str(second)])
    assert [m.__name__ for m in modules] == ["csgr_user_first", "csgr_user_second"]
    assert modules[1].VALUE == 2
    import_user_modules([str(second)])
    assert log.read_text() == "first\n"  # once per process
    with pytest.raises(FileNotFoundError, match="missing.py"):
        import_user_modules([str(tmp_path / "missing.py")])
