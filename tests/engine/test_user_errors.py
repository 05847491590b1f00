"""Messages a user can act on, and tools that never misreport.

csgr.* messages in log.txt; the skipped-image count says what it counts; unfinished runs are not
released silently; the model-zoo table reads a user dataset's evaluator type; the demo skips
unreadable images; METHODS [] skips the teacher; --resume after changing METHODS, a full disk
and missing teacher weights are each one clear message.
"""

import builtins
import errno
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import namedtuple

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from detectron2.utils.events import EventStorage
from run_folders import make_distill_run, write_metrics
from tiny_models import ROOT, distill_cfg, load_tool, random_batch, tiny_cfg

import csgr  # noqa: F401
from csgr.config import load_config
from csgr.config.reliability import add_reliability_config
from csgr.data.box_checks import sanitize_boxes
from csgr.data.mapper import CheckedDatasetMapper
from csgr.engine import argument_parser, setup_cfg
from csgr.engine import checkpoint as checkpoint_module
from csgr.engine.checkpoint import AtomicCheckpointer, atomic_write
from csgr.errors import (
    ConfigChangedError,
    ConfigTypeError,
    NoSpaceLeftError,
    UnfinishedRunError,
    UnknownConfigKeyError,
)
from csgr.modeling.teacher_missing import train_teacher_command
from csgr.release import release_student

SHAPES = os.path.join(ROOT, "configs", "Shapes")


def test_csgr_messages_reach_log_txt_with_timestamps(tmp_path):
    args = argument_parser().parse_args(
        ["--config-file", os.path.join(SHAPES, "faster_rcnn_R_18_FPN.yaml")]
        + ["OUTPUT_DIR", str(tmp_path)]
    )
    setup_cfg(args)
    logger = logging.getLogger("csgr.data.box_checks")
    assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)
    bad = {"bbox": [5, 5, 1, 1], "bbox_mode": 0, "category_id": 0}  # XYXY, x1 < x0
    sanitize_boxes([{"file_name": "x.jpg", "annotations": [bad]}], ["probe_train"])
    logger.info("probe info message")
    log_file = str(tmp_path / "log.txt")
    for handler in logging.getLogger("csgr").handlers:
        if getattr(getattr(handler, "stream", None), "name", None) == log_file:
            handler.flush()
    log = (tmp_path / "log.txt").read_text()
    stamp = r"\[\d\d/\d\d \d\d:\d\d:\d\d\] csgr\.data\.box_checks"
    assert re.search(stamp + r" WARNING: Training set \['probe_train'\]: of 1 boxes", log), log
    assert re.search(stamp + " INFO: probe info message", log)


def test_skipped_image_count_says_what_it_counts(tmp_path, caplog):
    cfg = tiny_cfg()
    add_reliability_config(cfg)
    cfg.DATALOADER.SKIP_BAD_IMAGES = True
    record = {"file_name": str(tmp_path / "missing.jpg"), "height": 8, "width": 8}
    with caplog.at_level(logging.WARNING, logger="csgr.data.mapper"):
        assert CheckedDatasetMapper(cfg, True)(dict(record)) is None
        assert CheckedDatasetMapper(cfg, False)(dict(record)) is None
    train, test = [r.getMessage() for r in caplog.records]
    assert "1 bad image(s) skipped so far by the training data loader in the main process" in train
    assert "skipped so far by the test data loader (this evaluation)" in test


def _unfinished_run(tmp_path):
    run_dir, cfg, _ = make_distill_run(tmp_path)  # saved at iteration 3 of cfg.SOLVER.MAX_ITER
    os.replace(os.path.join(run_dir, "model_final.pth"), os.path.join(run_dir, "model_0000003.pth"))
    with open(os.path.join(run_dir, "last_checkpoint"), "w") as f:
        f.write("model_0000003.pth")
    return run_dir, cfg


def test_release_refuses_an_unfinished_run(tmp_path):
    run_dir, cfg = _unfinished_run(tmp_path)
    tool = load_tool("release_student")
    for run in (run_dir, os.path.join(run_dir, "model_0000003.pth")):
        with pytest.raises(UnfinishedRunError) as e:
            tool.main([run, "--output", str(tmp_path / "release")])
        message = str(e.value)
        assert "model_0000003.pth" in message and "--allow-unfinished" in message
        assert f"iteration 4 of SOLVER.MAX_ITER {cfg.SOLVER.MAX_ITER}" in message
    assert not (tmp_path / "release").exists() or not list((tmp_path / "release").iterdir())

    manifest = tool.main([run_dir, "--output", str(tmp_path / "release"), "--allow-unfinished"])
    assert (manifest["iteration"], manifest["finished"]) == (3, False)
    assert manifest["max_iter"] == cfg.SOLVER.MAX_ITER
    os.replace(os.path.join(run_dir, "model_0000003.pth"), os.path.join(run_dir, "model_final.pth"))
    assert release_student(run_dir, str(tmp_path / "final"))["finished"] is True


def _zoo_run(tmp_path, dataset, metrics):
    run_dir = tmp_path / dataset
    run_dir.mkdir()
    cfg = tiny_cfg()
    cfg.DATASETS.TEST = (dataset,)
    (run_dir / "config.yaml").write_text(cfg.dump())
    write_metrics(str(run_dir), [dict(metrics, iteration=9)])
    return str(run_dir)


def _register_module(path, name, evaluator_type):
    path.write_text(
        "from detectron2.data import DatasetCatalog, MetadataCatalog\n"
        f"DatasetCatalog.register({name!r}, lambda: [])\n"
        f"MetadataCatalog.get({name!r}).evaluator_type = {evaluator_type!r}\n"
    )
    return str(path)


def test_model_zoo_table_reads_the_evaluator_type(tmp_path, monkeypatch, restore_catalogs):
    table = load_tool("model_zoo_table").main
    ambiguous = {"bbox/AP": 40.0, "bbox/AP50": 70.0}  # no AP75/APs to tell the evaluator by
    flag = _zoo_run(tmp_path, "mydata_test_flag", ambiguous)
    env = _zoo_run(tmp_path, "mydata_test_env", ambiguous)
    assert "| 40.00 " in table([flag])  # unregistered: box AP
    module = _register_module(tmp_path / "reg_flag.py", "mydata_test_flag", "pascal_voc")
    assert "| 70.00 (AP50) " in table([flag, "--register", module])
    module = _register_module(tmp_path / "reg_env.py", "mydata_test_env", "pascal_voc")
    monkeypatch.setenv("CSGR_REGISTER", module)
    assert "| 70.00 (AP50) " in table([env])
    # unregistered, the metrics tell: the VOC evaluator writes AP, AP50, AP75 only
    voc = _zoo_run(tmp_path, "other_voc_like", dict(ambiguous, **{"bbox/AP75": 41.0}))
    coco = _zoo_run(tmp_path, "other_coco", dict(ambiguous, **{"bbox/AP75": 41.0, "bbox/APs": 1}))
    assert "| 70.00 (AP50) " in table([voc]) and "| 40.00 " in table([coco])


def test_demo_skips_and_counts_unreadable_images(tmp_path, caplog):
    run_dir, _, _ = make_distill_run(tmp_path)
    manifest = release_student(run_dir, str(tmp_path / "release"), "tiny")
    config = os.path.join(manifest["output_dir"], manifest["files"]["config"])
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), np.full((40, 50, 3), 128, np.uint8))
    (images / "b.jpg").write_bytes(b"")
    (images / "c.jpg").write_bytes(b"not an image")
    argv = ["--config-file", config, "--input", str(images), "--output", str(tmp_path / "out")]
    with caplog.at_level(logging.WARNING, logger="csgr.visualization.demo"):
        written = load_tool("demo").main(argv)
    assert [os.path.basename(p) for p in written] == ["a.jpg"]
    assert "Skipped 2 of 3 input images" in caplog.text
    assert str(images / "b.jpg") in caplog.text and str(images / "c.jpg") in caplog.text


def test_empty_methods_skip_the_teacher(tmp_path, caplog):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.METHODS = []
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = str(tmp_path / "never_trained.pth")
    with caplog.at_level(logging.WARNING, logger="csgr.modeling.meta_arch.distiller"):
        model = build_model(cfg)
    assert "MODEL.DISTILL.METHODS is empty" in caplog.text
    assert model.teacher is None and not list(model.distill_losses.parameters())
    model.train()
    with EventStorage():
        losses = model(random_batch())
    assert losses and not [k for k in losses if k.startswith(("loss_csgr", "loss_distill"))]


@pytest.mark.parametrize(
    "before, after",
    [(["CSGR"], []), (["CSGR"], ["CSGR", "PKD"]), (["CSGR"], ["PKD"]), (["PKD"], ["CSGR"])],
)
def test_resume_after_changing_methods_says_the_config_changed(tmp_path, before, after):
    """Any change of the methods is refused before anything is loaded, naming both lists, also
    where the optimizer state would fit (PKD has no parameters)."""

    def build(methods):
        cfg = distill_cfg(str(tmp_path))
        cfg.MODEL.DISTILL.METHODS = methods
        model = build_model(cfg)
        optimizer = build_optimizer(cfg, model)
        return AtomicCheckpointer(model, str(tmp_path / "run"), optimizer=optimizer)

    build(before).save("model_0000001", iteration=1)
    resumed = build(after)
    weights = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    with pytest.raises(ConfigChangedError) as e:
        resumed.resume_or_load("", resume=True)
    message = str(e.value)
    assert "the config changed since the checkpoint" in message and "model_0000001.pth" in message
    assert f"trained with the methods {before}" in message
    assert f"MODEL.DISTILL.METHODS is {after}" in message
    state = resumed.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())  # nothing was loaded
    assert build(before).resume_or_load("", resume=True)["iteration"] == 1  # same: resumes


def test_resume_of_an_older_checkpoint_compares_the_modules(tmp_path):
    """A checkpoint that does not store its methods is compared by its distillation weights."""
    cfg = distill_cfg(str(tmp_path))
    model = build_model(cfg)
    torch.save({"model": model.state_dict(), "iteration": 1}, tmp_path / "model_0000001.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    cfg.MODEL.DISTILL.METHODS = ["PKD"]
    with pytest.raises(
        ConfigChangedError,
        match=r"modules of \['CSGR'\], the config's MODEL.DISTILL.METHODS is \['PKD'\]",
    ):
        AtomicCheckpointer(build_model(cfg), str(tmp_path)).resume_or_load("", resume=True)


def test_full_disk_names_the_path(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    run = tmp_path / "run"
    checkpointer = AtomicCheckpointer(model, str(run))
    checkpointer.save("model_0000000")
    # a device that is full: every write to /dev/full fails with ENOSPC
    monkeypatch.setattr(
        checkpoint_module, "open", lambda *a: builtins.open("/dev/full", "wb"), raising=False
    )
    with pytest.raises(NoSpaceLeftError) as e:
        checkpointer.save("model_0000001")
    assert e.value.errno == errno.ENOSPC
    assert "no space left on device" in str(e.value)
    assert str(run / "model_0000001.pth") in str(e.value)
    monkeypatch.undo()
    assert (run / "last_checkpoint").read_text() == "model_0000000.pth"
    assert sorted(os.listdir(run)) == ["last_checkpoint", "model_0000000.pth"]

    # torch's own writer reports it as "file write failed" (inline_container.cc)
    def torch_writer_failure(f):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(NoSpaceLeftError, match="no space left on device .* free in"):
        atomic_write(str(tmp_path / "x.pth"), torch_writer_failure)
    with pytest.raises(ValueError, match="unrelated"):  # other errors pass unchanged
        atomic_write(
            str(tmp_path / "x.pth"), lambda f: (_ for _ in ()).throw(ValueError("unrelated"))
        )


def test_full_disk_while_writing_metrics_names_the_file(tmp_path):
    """metrics.json on a full device: NoSpaceLeftError naming it (train_net prints it on one
    line), not a bare OSError from inside a hook; other writer errors pass unchanged."""
    from detectron2.utils.events import CommonMetricPrinter, JSONWriter

    from csgr.engine.writers import DiskFullAwareWriter, guard_writers

    metrics = tmp_path / "metrics.json"
    printer = CommonMetricPrinter(10)
    writers = guard_writers([printer, JSONWriter(str(metrics))], str(tmp_path))
    assert writers[0] is printer and isinstance(writers[1], DiskFullAwareWriter)
    json_writer = writers[1]
    with EventStorage(0) as storage:
        storage.put_scalar("total_loss", 1.0)
        json_writer.write()
        assert '"total_loss": 1.0' in metrics.read_text()
        storage.iter = 1
        storage.put_scalar("total_loss", 0.5)
        json_writer.writer._file_handle = open("/dev/full", "w")  # every write: ENOSPC
        with pytest.raises(NoSpaceLeftError) as e:
            json_writer.write()
        assert e.value.errno == errno.ENOSPC
        assert str(e.value).endswith(f"no space left on device: cannot write {metrics}")

        def permission_denied():
            raise PermissionError(errno.EACCES, "denied")

        json_writer.writer.write = permission_denied
        with pytest.raises(PermissionError):
            json_writer.write()


@pytest.mark.parametrize("num_gpus", [1, 2])
def test_missing_teacher_weights_is_one_line_with_the_command(tmp_path, num_gpus):
    """The headline command on a fresh machine (no teacher trained yet), in one process and in
    two (Detectron2's launch through torch.multiprocessing, gloo on the CPU); the command it
    prints has the user's --register, so it runs as pasted."""
    (tmp_path / "my_data.py").write_text("")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--register", "my_data.py"]
        + ["--config-file", os.path.join(ROOT, "configs", "csgr_frcnn_r50.yaml")]
        + ["--num-gpus", str(num_gpus), "OUTPUT_DIR", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),  # gloo on the CPU, also on a GPU machine
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: MODEL.DISTILL.TEACHER.WEIGHTS: no such file")
    assert last.endswith(
        "Train the teacher first: python tools/train_net.py --register my_data.py --config-file "
        "configs/SODA10M/faster_rcnn_R_101_FPN_1x.yaml OUTPUT_DIR output/SODA10M/"
        "faster_rcnn_R_101_FPN_1x"
    )


@pytest.mark.parametrize(
    "opts, expected",
    [
        (
            ["MODEL.DISTILL.METHOD", "[]"],
            "MODEL.DISTILL.METHOD (neither Detectron2 nor CSGR has "
            "it); did you mean MODEL.DISTILL.METHODS?",
        ),
        (["MODEL.DISTILL.CSGR.CAT_WEIGTH", "1.0"], "did you mean MODEL.DISTILL.CSGR.CAT_WEIGHT?"),
        (
            ["MODEL.DISTILL.TEACHER.CONFIG_FILE", "nowhere.yaml"],
            "MODEL.DISTILL.TEACHER.CONFIG_FILE: " "no such file 'nowhere.yaml'",
        ),
    ],
)
def test_a_misspelled_key_or_a_missing_teacher_config_is_one_line(tmp_path, opts, expected):
    """A key neither Detectron2 nor CSGR has is one ERROR line naming it, where it came from and
    the closest keys; so is a teacher config path (given on the command line) that resolves to
    no file."""
    weights = tmp_path / "teacher.pth"
    weights.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py")]
        + ["--config-file", os.path.join(ROOT, "configs", "Shapes", "csgr_frcnn_r18_r34.yaml")]
        + ["MODEL.DISTILL.TEACHER.WEIGHTS", str(weights), "OUTPUT_DIR", str(tmp_path / "out")]
        + opts,
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: ") and expected in last, last


def test_a_misspelled_key_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f'_BASE_: "{os.path.join(ROOT, "configs", "csgr_frcnn_r50.yaml")}"\n'
        "MODEL:\n  DISTILL:\n    METHOD: []\n"
    )
    with pytest.raises(UnknownConfigKeyError) as e:
        load_config(str(bad))
    assert str(e.value) == (
        f"{bad}: unknown config key MODEL.DISTILL.METHOD (neither Detectron2 nor CSGR has it); "
        "did you mean MODEL.DISTILL.METHODS?"
    )


def _worker_error(error: Exception) -> "torch.multiprocessing.ProcessRaisedException":
    """What the parent of a multi-process launch receives when a worker raised ``error``."""
    import traceback

    try:
        raise error
    except Exception:
        text = traceback.format_exc()
    message = "\n\n-- Process 1 terminated with the following error:\n" + text
    return torch.multiprocessing.ProcessRaisedException(message, 1, 4242)


def test_worker_user_error_is_one_line(capsys):
    """A worker's UserInputError (multi-line message included) is one ERROR message with exit
    status 1; any other worker error keeps its traceback."""
    from csgr.errors import MissingTeacherWeightsError, one_line_errors, user_error_in_worker

    error = _worker_error(MissingTeacherWeightsError("no such file 'x.pth'.\nTrain it first."))
    assert user_error_in_worker(error) == "no such file 'x.pth'.\nTrain it first."
    with pytest.raises(SystemExit) as exit_info, one_line_errors():
        raise error
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "ERROR: no such file 'x.pth'.\nTrain it first.\n"

    other = _worker_error(ValueError("csgr.errors.Nope: not a user error"))
    assert user_error_in_worker(other) is None
    with pytest.raises(torch.multiprocessing.ProcessRaisedException), one_line_errors():
        raise other


def test_divergence_exits_with_its_own_status(capsys):
    """A divergence, in this process or in a worker, keeps its text and exits with
    DIVERGED_EXIT_STATUS (not 1), so that the benchmark runner tells it from other failures."""
    from csgr.engine.nan_guard import NonFiniteLossError
    from csgr.errors import DIVERGED_EXIT_STATUS, one_line_errors

    assert DIVERGED_EXIT_STATUS not in (0, 1)
    message = "Non-finite loss at iteration 7: loss_cls=nan"
    for error in (NonFiniteLossError(message), _worker_error(NonFiniteLossError(message))):
        with pytest.raises(SystemExit) as exit_info, one_line_errors():
            raise error
        assert exit_info.value.code == DIVERGED_EXIT_STATUS
        assert f"NonFiniteLossError: {message}" in capsys.readouterr().err


def test_train_teacher_command_keeps_the_teacher_opts(tmp_path):
    cfg = distill_cfg(str(tmp_path))
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = "configs/my teacher.yaml"
    cfg.MODEL.DISTILL.TEACHER.OPTS = ["MODEL.RESNETS.DEPTH", "34"]
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = "output/t/model_final.pth"
    assert train_teacher_command(cfg, register=[]) == (
        "python tools/train_net.py --config-file 'configs/my teacher.yaml' "
        "MODEL.RESNETS.DEPTH 34 OUTPUT_DIR output/t"
    )
    assert train_teacher_command(cfg, register=["my data.py"]).startswith(
        "python tools/train_net.py --register 'my data.py' --config-file"
    )


def test_an_int_for_a_float_key_is_one_line_with_the_fix(tmp_path):
    """yacs's type check names the key; the error also says where the value came from and, for
    the usual slip (``0`` for a float key), how to write it."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py")]
        + ["--config-file", os.path.join(ROOT, "configs", "csgr_frcnn_r50.yaml")]
        + ["MODEL.DISTILL.CSGR.REL_WEIGHT", "0"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: the command line's KEY VALUE opts: Type mismatch")
    assert "MODEL.DISTILL.CSGR.REL_WEIGHT" in last and "e.g. 0.0" in last


def test_a_wrong_type_in_a_config_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f'_BASE_: "{os.path.join(ROOT, "configs", "csgr_frcnn_r50.yaml")}"\n'
        "SOLVER:\n  MAX_ITER: 'long'\n"
    )
    with pytest.raises(ConfigTypeError, match=r"bad\.yaml: Type mismatch .* SOLVER\.MAX_ITER$"):
        load_config(str(bad))
