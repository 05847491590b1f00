"""Which method for my data: tools/benchmark_accuracy.py on a user's own teacher and student
configs (``--teacher-config``, ``--student-config``, ``--register``), end to end on a tiny
labelme-shaped dataset, both detector types; the study's planning, recommendation and screen as
pure functions.

The data are the four images of ``labelme_data`` (COCO json, and VOC for a test set evaluated
as PASCAL VOC); the configs are tiny R18-FPN detectors of a few iterations, so the figures mean
nothing: the tests check what is trained, where it goes, what is reused and what is said.
"""

import json
import math
import os

import pytest
from labelme_data import CLASSES, write_labelme_coco, write_labelme_voc
from tiny_models import ROOT, load_tool, tiny_cfg

from csgr.benchmark.accuracy_report import aggregate
from csgr.benchmark.accuracy_runs import METRICS, plan_runs, plan_study
from csgr.benchmark.recommend import divergence_cause, divergence_iteration, recommend
from csgr.benchmark.run_digest import config_digest
from csgr.benchmark.screening import screen_schedule, select_screened
from csgr.benchmark.study_specs import UserStudy, applicable_methods

REGISTER = """from csgr.data import register_coco_dataset, register_voc_dataset

register_coco_dataset("mydata_coco", {json!r}, {coco!r})
register_voc_dataset("mydata_voc", {voc!r}, "train")
"""


def _configs(folder, arch, test="mydata_coco", iters=3, steps=(2,)):
    """teacher.yaml and student.yaml of ``arch`` on the user's data, as a user writes them."""
    for role in ("teacher", "student"):
        cfg = tiny_cfg(arch, num_classes=len(CLASSES))
        cfg.MODEL.META_ARCHITECTURE = arch
        cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("mydata_coco",), (test,)
        cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.STEPS = iters, 1, steps
        (folder / f"{role}.yaml").write_text(cfg.dump())


@pytest.fixture
def own_data(tmp_path, monkeypatch, restore_catalogs):
    """The user's folder (the working directory): labelme's COCO and VOC output and
    my_datasets.py registering them."""
    coco = write_labelme_coco(str(tmp_path / "coco"))
    voc = write_labelme_voc(str(tmp_path / "voc"))
    text = REGISTER.format(json=coco, coco=os.path.dirname(coco), voc=voc)
    (tmp_path / "my_datasets.py").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


OWN = ["--register", "my_datasets.py", "--teacher-config", "teacher.yaml"]
OWN += ["--student-config", "student.yaml"]


def _mtimes(folder):
    return {p: os.path.getmtime(p) for p in folder.rglob("*") if p.name == "metrics.json"}


def test_own_data_study_trains_reports_and_reuses(own_data, capsys):
    """Faster R-CNN on COCO json: teacher, baseline and two methods over two seeds in one
    command; MSE at an absurd weight diverges on both seeds, the study goes on and the
    recommendation names it with its term; --reuse trains nothing."""
    _configs(own_data, "GeneralizedRCNN")
    argv = [*OWN, "--methods", "CSGR", "MSE", "--seeds", "1", "2", "--jobs", "2"]
    argv += ["MODEL.DISTILL.MSE.WEIGHT", "1e12"]  # after an option of one value: opts
    tool = load_tool("benchmark_accuracy")
    agg = tool.main(argv)

    out = own_data / "output" / "compare_student"
    assert set(agg) == {"teacher", "baseline", "CSGR"}  # every MSE run diverged
    for run in ("teacher/seed1", "baseline/seed2", "csgr/seed1", "csgr/seed2", "mse/seed2"):
        assert (out / run / "stdout.log").is_file(), run
    cfg = (out / "csgr" / "seed2" / "config.yaml").read_text()
    assert "META_ARCHITECTURE: Distiller" in cfg and "STUDENT_META_ARCHITECTURE: GeneralizedRCNN"
    assert f"CONFIG_FILE: {own_data / 'teacher.yaml'}" in cfg and "- CSGR" in cfg
    assert "SEED: 2" in cfg
    assert (
        "--register"
        in json.loads((out / "csgr/seed1/csgr_benchmark_stamp.json").read_text())["command"]
    )

    results = json.loads((out / "results.json").read_text())
    assert results["metric"] == "AP" and sorted(results["failed"]) == ["MSE seed 1", "MSE seed 2"]
    assert results["provenance"]["split"] == "mydata_coco"
    recommendation = results["recommendation"]
    assert recommendation[0].startswith(("- Use CSGR", "- No method beats"))
    (mse,) = [line for line in recommendation if line.startswith("- MSE")]
    assert mse.startswith("- MSE diverged on 2 of 2 seed(s) (at iterations ")
    assert ": loss_mse dominated the detection terms from the start" in mse
    report = (out / "accuracy.md").read_text()
    assert "| CSGR" in report and "Recommendation:" in report and mse in report
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mse in capsys.readouterr().out

    before = _mtimes(out)
    tool.main(["--reuse", *argv])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 7 and "done in" not in printed
    assert _mtimes(out) == before


def test_own_data_screen_retinanet_voc(own_data):
    """RetinaNet, a test set evaluated as PASCAL VOC (ranked by AP50): the screen trains the
    baseline and both methods on half the schedule, and only the best goes on."""
    _configs(own_data, "RetinaNet", test="mydata_voc", iters=4, steps=(3,))
    argv = [*OWN, "--methods", "CSGR", "PCD", "--seeds", "1", "--screen", "0.5", "--keep", "1"]
    argv += ["--jobs", "2"]
    tool = load_tool("benchmark_accuracy")
    agg = tool.main(argv)

    out = own_data / "output" / "compare_student"
    results = json.loads((out / "results.json").read_text())
    screen = results["screen"]
    assert results["metric"] == "AP50" and screen["iters"] == 2
    assert set(screen["scores"]) == {"baseline", "CSGR", "PCD"} and len(screen["kept"]) == 1
    (kept,), (dropped,) = screen["kept"], screen["dropped"]
    assert set(agg) == {"teacher", "baseline", kept}
    for label in ("baseline", "csgr", "pcd"):
        assert "MAX_ITER: 2" in (out / "screen" / label / "seed1" / "config.yaml").read_text()
    assert "MAX_ITER: 4" in (out / kept.lower() / "seed1" / "config.yaml").read_text()
    assert not (out / dropped.lower()).exists()
    assert (out / "screen" / "accuracy.md").is_file()
    line = results["recommendation"][-1]
    assert line.startswith("- Screen (0.5 of the schedule, 2 iterations, seed 1; baseline AP50 ")
    assert f"kept {kept} " in line and f"screened out {dropped} " in line

    # --screen-only: the screen's report carries the recommendation; nothing trains again
    before = _mtimes(out)
    agg = tool.main(["--reuse", "--screen-only", *argv])
    assert set(agg) == {"teacher", "baseline", "CSGR", "PCD"} and _mtimes(out) == before
    screened = json.loads((out / "screen" / "results.json").read_text())
    assert screened["recommendation"][-1] == line and screened["screen"]["kept"] == [kept]


def test_user_study_derives_the_distillation_configs(tmp_path):
    """Each method's run is the student config plus the Distiller opts; the baseline is the
    student config; methods that do not apply are skipped; --register and --num-gpus reach the
    command; the register file is part of the digest."""
    _configs(tmp_path, "RetinaNet")
    register = tmp_path / "my_datasets.py"
    register.write_text("# registers nothing\n")
    spec = UserStudy(
        str(tmp_path / "teacher.yaml"), str(tmp_path / "student.yaml"), (str(register),)
    )
    assert applicable_methods(spec.arch) == [m for m in applicable_methods("RetinaNet")]
    assert "DKD" not in applicable_methods("RetinaNet") and "PCD" not in applicable_methods(
        "GeneralizedRCNN"
    )
    teacher, students, skipped = plan_study(
        spec, ["CSGR", "DKD"], [1], str(tmp_path / "out"), ROOT, num_gpus=2
    )
    assert list(skipped) == ["DKD"] and [r.label for r in students] == ["baseline", "CSGR"]
    baseline, csgr = students
    assert baseline.config_file == csgr.config_file == str(tmp_path / "student.yaml")
    assert "Distiller" not in baseline.opts and baseline.depends_on == ""
    opts = dict(zip(csgr.opts[::2], csgr.opts[1::2]))
    assert opts["MODEL.META_ARCHITECTURE"] == "Distiller"
    assert opts["MODEL.DISTILL.STUDENT_META_ARCHITECTURE"] == "RetinaNet"
    assert opts["MODEL.DISTILL.METHODS"] == "['CSGR']"
    assert opts["MODEL.DISTILL.TEACHER.CONFIG_FILE"] == str(tmp_path / "teacher.yaml")
    assert opts["MODEL.DISTILL.TEACHER.WEIGHTS"] == teacher.output_dir + "/model_final.pth"
    command = csgr.command()
    assert command[1] == os.path.join(ROOT, "tools", "train_net.py") and csgr.cwd == os.getcwd()
    assert command[2:6] == ["--register", str(register), "--num-gpus", "2"]
    digest = config_digest(baseline)
    register.write_text("# registers other data\n")
    assert config_digest(baseline) != digest

    # a distillation config as the student config: its student is the baseline
    distiller = tmp_path / "distill.yaml"
    distiller.write_text(
        f'_BASE_: "student.yaml"\nMODEL:\n  META_ARCHITECTURE: "Distiller"\n'
        f'  DISTILL:\n    STUDENT_META_ARCHITECTURE: "RetinaNet"\n'
    )
    spec = UserStudy(str(tmp_path / "teacher.yaml"), str(distiller))
    assert spec.arch == "RetinaNet"
    assert spec.baseline_config() == (str(distiller), ("MODEL.META_ARCHITECTURE", "RetinaNet"))


def test_suite_runs_keep_their_command(tmp_path):
    """A built-in suite's runs have no --register and one GPU: the command as before."""
    _, students, _ = plan_runs("frcnn", ["CSGR"], [1], str(tmp_path), ROOT)
    run = students[1]
    assert run.register == () and run.cwd == ROOT
    assert run.command()[1:4] == [
        os.path.join(ROOT, "tools/train_net.py"),
        "--config-file",
        run.config_file,
    ]


def test_tool_arguments_of_a_user_study(tmp_path):
    tool = load_tool("benchmark_accuracy")
    _configs(tmp_path, "GeneralizedRCNN")
    own = ["--teacher-config", str(tmp_path / "teacher.yaml")]
    own += ["--student-config", str(tmp_path / "student.yaml")]
    args = tool.parse_args(own)
    assert args.methods == applicable_methods("GeneralizedRCNN") and "PCD" not in args.methods
    assert args.out_dir == os.path.abspath(os.path.join("output", "compare_student"))
    for bad in (
        own + ["--suite", "coral"],
        own[:2],
        own + ["--screen", "1.5"],
        own + ["--screen-only"],
    ):
        with pytest.raises(SystemExit):
            tool.parse_args(bad)
    assert tool.parse_args([]).out_dir == os.path.join(ROOT, "output", "shapes", "frcnn")


def _runs(*aps):
    return [{m: (ap if m == "AP" else 2 * ap) for m in METRICS} for ap in aps]


def test_recommendation_lines():
    agg = aggregate(
        {
            "teacher": _runs(20.0),
            "baseline": _runs(10.0, 11.0),
            "CSGR": _runs(13.0, 13.5),
            "MSE": _runs(11.5, 11.0),
            "FGD": _runs(30.0),
        }
    )
    error = (
        "[FGD seed 2] diverged (exit 3); end of log:\nNonFiniteLossError: Non-finite loss at "
        "iteration 7: loss_cls=nan (other terms: loss_fgd_fg=3e+09). Largest growth: loss_fgd_fg "
        "from 0.5 (iteration 0) to 3e+09 (x6e+09)."
    )
    lines = recommend(agg, "AP", {"FGD seed 2": error})
    assert lines[:3] == [
        "- Use CSGR: AP 13.25 ± 0.35 over 2 seeds, +2.75 over the baseline student (10.50 ± 0.71).",
        "- The gain is resolved by the seeds: +2.75 is larger than the baseline's seed spread "
        "(1.00, AP 10.00-11.00).",
        "- Next: MSE 11.25 ± 0.35 (+0.75).",  # FGD diverged on a seed: not recommended
    ]
    assert lines[3] == (
        "- FGD diverged on 1 of 2 seed(s) (at iteration 7): loss_fgd_fg grew most; AP 30.00 on "
        "the seeds that finished."
    )
    assert lines[4].startswith("  A distillation term that grows") and len(lines) == 5

    close = aggregate({"baseline": _runs(10.0, 12.0), "MSE": _runs(11.5, 12.0)})
    assert "NOT resolved" in recommend(close, "AP")[1]
    one_seed = aggregate({"baseline": _runs(10.0), "MSE": _runs(11.0)})
    assert "one baseline seed has no spread" in recommend(one_seed, "AP")[1]
    assert recommend(one_seed, "AP")[-1].startswith("- The teacher's AP is unknown (no evaluation")
    worse = aggregate({"teacher": _runs(9.0), "baseline": _runs(10.0), "MSE": _runs(9.5)})
    lines = recommend(worse, "AP50")
    assert lines[0].startswith("- No method beats the baseline student (AP50 20.00)")
    assert lines[-1].startswith("- The teacher (AP50 18.00) scores no better than the baseline")
    assert "trained too short" in lines[-1] and "check_teacher" in lines[-1]
    crashed = recommend(one_seed, "AP", {"CWD seed 1": "[CWD seed 1] failed (exit 1): ..."})
    assert crashed[-2] == "- CWD failed on 1 of 1 seed(s) (see the FAILED lines)."


def test_divergence_cause_reads_the_nan_guard_message():
    forward = (
        "Training diverged at iteration 2: Predicted boxes or scores contain Inf/NaN. ... "
        "Largest growth: loss_box_reg from 0.1 (iteration 0) to 6e+23 (x6e+24). At the start "
        "loss_mse was 2.2e+14 (iteration 0), 1.14e+14x the detection terms together (1.9)."
    )
    assert divergence_cause(forward) == (
        "loss_mse dominated the detection terms from the start, then loss_box_reg grew most"
    )
    assert divergence_iteration(forward) == 2
    non_finite = "Non-finite loss at iteration 4: loss_cls=nan (other terms: none)."
    assert divergence_cause(non_finite) == "loss_cls became non-finite"
    assert divergence_iteration(non_finite) == 4
    assert divergence_cause("Killed") == "" and divergence_iteration("Killed") is None


def test_screen_schedule_and_selection():
    assert screen_schedule(300, (200, 270), 0.25) == [
        "SOLVER.MAX_ITER", "75", "SOLVER.STEPS", "(50, 68)"
    ]  # fmt: skip
    assert screen_schedule(4, (3,), 0.5) == ["SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "()"]
    with pytest.raises(ValueError):
        screen_schedule(300, (), 0)
    scores = {"baseline": 5.0, "A": 3.0, "B": None, "C": 7.0, "D": math.nan, "E": 3.0}
    errors = {"B": "[B seed 1] diverged ... Largest growth: loss_mgd from 1 (iteration 0) to 99"}
    kept, dropped = select_screened(scores, 2, errors)
    assert kept == ["C", "A"]  # ties keep table order
    assert dropped == {"E": "3.00", "D": "no detection", "B": "diverged (loss_mgd grew most)"}
    assert select_screened(scores, 9)[0] == ["C", "A", "E", "D"]
    with pytest.raises(ValueError):
        select_screened(scores, 0)


def test_screen_versus_the_full_coral_study(tmp_path):
    """tools/screen_versus_full.py on a screen's results file (made up here) and the recorded full
    coral study: ranks, kept or not, and the student iterations of each plan (a diverged run
    counts up to its divergence)."""
    full = os.path.join(ROOT, "docs", "results", "coral_frcnn.json")
    scores = {"baseline": 1.0, "CSGR": 2.0, "FGD": None, "PKD": 3.0, "DKD": 1.5, "CWD": 0.5}
    scores.update({"MSE": None, "MGD": None, "IKD": None})
    screen = {
        "provenance": {"command": "python tools/benchmark_accuracy.py --screen 0.25", "seeds": [1]},
        "results": {k: _runs(v) for k, v in scores.items() if v is not None},
        "failed": {
            f"{k} seed 1": "diverged at iteration 20" for k, v in scores.items() if v is None
        },
        "screen": {
            **dict(fraction=0.25, iters=75, seed=1, metric="AP", keep=3, scores=scores),
            "kept": ["PKD", "CSGR", "DKD"],
            "dropped": {"CWD": "0.50", **{k: "diverged" for k in ("FGD", "MSE", "MGD", "IKD")}},
            "seconds": {"baseline": [60.0], "CSGR": [90.0]},
        },
    }
    (tmp_path / "screen.json").write_text(json.dumps(screen))
    out = tmp_path / "check.json"
    argv = [str(tmp_path / "screen.json"), full, "--output", str(out)]
    data = load_tool("screen_versus_full").main(argv)
    assert json.loads(out.read_text()) == data
    ranks, cost = data["tables"]
    assert "kept 2 of the full study's top 3 (PKD, CSGR, CWD)" in ranks["title"]
    rows = {row[0]: row[1:] for row in ranks["rows"]}
    assert rows["PKD"] == ["3.00", 1, "6.55 ± 0.72", 1, "kept"]
    assert rows["CWD"] == ["0.50", 4, "3.28 ± 0.93", 3, "out"]
    assert rows["FGD"][2:] == ["diverged (3 of 3)", 5, "out"]
    # full: 5 labels x 3 seeds x 300 + the diverged runs' iterations (FGD 85, MSE 75, MGD 184,
    # IKD 165); screen: 5 x 75 + 4 x 20; the kept three and the baseline: 4 x 3 x 300
    assert [row[1] for row in cost["rows"]] == [4500 + 509, 375 + 80, 455 + 3600]
    assert cost["rows"][1][2] == "2.5 min measured"
    assert data["provenance"]["command"].endswith("--output " + str(out))
