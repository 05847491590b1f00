"""docs/WORKFLOW.md section 2 end to end on labelme's output, in both formats, as a user runs it.

The registration file is the labelme template of docs/WORKFLOW.md 2.1, taken from the page
itself; the data are written as labelme's converters write them (``labelme_data``). The tools run
as the user runs them (subprocesses): check the datasets, train a teacher, distil a student,
release it and run the demo. Fed back as predictions, the ground truth scores AP 100 in both
formats, and no tool prints a warning a user cannot act on.
"""

import glob
import os
import re
import subprocess
import sys

import pytest
from detectron2.data import DatasetCatalog
from labelme_data import CLASSES, ground_truth_as_predictions, write_labelme_coco, write_labelme_voc
from tiny_models import ROOT, tiny_cfg

import csgr  # noqa: F401
from csgr.engine.user_modules import import_user_module
from csgr.evaluation import build_evaluator


def _labelme_template() -> str:
    """The python block of docs/WORKFLOW.md that registers labelme's output."""
    with open(os.path.join(ROOT, "docs", "WORKFLOW.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    (block,) = [b for b in blocks if "COCO_DIR =" in b and "VOC_DIR =" in b]
    return block


def _run(tool, *args, cwd):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", tool), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{tool} failed:\n{output[-3000:]}"
    return output


def _unactionable_warnings(output: str):
    """Every warning line: the data and configs here give a user nothing to act on."""
    return [line for line in output.splitlines() if re.search(r"warn", line, re.I)]


def _write_config(cfg, path):
    with open(path, "w") as f:
        f.write(cfg.dump())
    return str(path)


@pytest.fixture
def labelme_project(tmp_path, restore_catalogs):
    """The user's folder: labelme's COCO and VOC output and the registration file."""
    coco_dir, voc_dir = tmp_path / "labelme_coco", tmp_path / "labelme_voc"
    write_labelme_coco(str(coco_dir))
    write_labelme_voc(str(voc_dir))
    template = _labelme_template()
    template = re.sub(r'COCO_DIR = ".*?"', f"COCO_DIR = {str(coco_dir)!r}", template)
    template = re.sub(r'VOC_DIR = ".*?"', f"VOC_DIR = {str(voc_dir)!r}", template)
    (tmp_path / "my_datasets.py").write_text(template)
    return tmp_path


def test_ground_truth_scores_100_in_both_formats(labelme_project):
    import_user_module(str(labelme_project / "my_datasets.py"))
    for name, metric in (("mydata_coco", "AP"), ("mydata_voc", "AP50")):
        evaluator = build_evaluator(None, name, str(labelme_project / "eval" / name))
        evaluator.reset()
        evaluator.process(*ground_truth_as_predictions(DatasetCatalog.get(name)))
        results = evaluator.evaluate()["bbox"]
        assert results[metric] == pytest.approx(100.0), (name, results)


def test_section_2_runs_on_labelme_output_without_noise(labelme_project):
    cwd = labelme_project
    register = ["--register", "my_datasets.py"]
    out = _run("check_dataset.py", *register, "mydata_coco", "mydata_voc", cwd=cwd)
    assert "2 of 2 dataset(s) OK" in out and "_background_" not in out
    assert f"boxes per class: {CLASSES[0]}: 4, {CLASSES[1]}: 3" in out

    cfg = tiny_cfg(num_classes=len(CLASSES))
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("mydata_coco",), ("mydata_voc",)
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.IMS_PER_BATCH = 2, 1, 2
    cfg.SOLVER.STEPS = (1,)
    cfg.OUTPUT_DIR = str(cwd / "output" / "teacher")
    teacher_yaml = _write_config(cfg, cwd / "teacher.yaml")
    logs = [_run("train_net.py", *register, "--config-file", teacher_yaml, cwd=cwd)]

    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.METHODS = ["CSGR"]
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = teacher_yaml
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = str(cwd / "output" / "teacher" / "model_final.pth")
    cfg.DATASETS.TEST = ("mydata_coco",)
    cfg.OUTPUT_DIR = str(cwd / "output" / "csgr")
    student_yaml = _write_config(cfg, cwd / "csgr.yaml")
    logs.append(_run("train_net.py", *register, "--config-file", student_yaml, cwd=cwd))
    assert "bbox/AP" in open(cwd / "output" / "csgr" / "metrics.json").read()

    logs.append(_run("release_student.py", cwd / "output" / "csgr", "--name", "tiny", cwd=cwd))
    (released,) = glob.glob(str(cwd / "output" / "csgr" / "release" / "tiny_*.yaml"))
    logs.append(
        _run(
            "demo.py",
            *register,
            "--config-file",
            released,
            "--input",
            cwd / "labelme_coco" / "JPEGImages",
            "--output",
            cwd / "demo",
            cwd=cwd,
        )
    )
    assert len(os.listdir(cwd / "demo")) == 4
    noise = {
        tool: _unactionable_warnings(log)
        for tool, log in zip(("train_net teacher", "train_net CSGR", "release", "demo"), logs)
    }
    assert not any(noise.values()), noise
