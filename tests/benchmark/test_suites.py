"""The experiment suites of the accuracy runner (``SUITES``: shapes from scratch, shapes and coral
with ImageNet-initialised backbones): every planned config exists and loads, and the students of a
suite compare on equal terms (their merged configs differ only in the method, its own settings
and the output folder)."""

import os

import pytest
from tiny_models import ROOT, config_from_file, load_tool

from csgr.benchmark.accuracy_runs import SUITES, plan_runs
from csgr.modeling.losses import method_names

CASES = [(suite, detector) for suite in sorted(SUITES) for detector in sorted(SUITES[suite])]
REQUIRED = {"coral": method_names(), "shapes": method_names(), "shapes-pretrained": ["CSGR", "FGD"]}


def _flat(cfg, prefix=""):
    """{dotted key: value} of a CfgNode."""
    out = {}
    for k, v in cfg.items():
        if hasattr(v, "items"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@pytest.mark.parametrize("suite,detector", CASES)
def test_suite_configs_compare_on_equal_terms(tmp_path, suite, detector):
    teacher, students, skipped = plan_runs(
        detector, method_names(), [1], str(tmp_path), ROOT, suite=suite
    )
    spec = SUITES[suite][detector]
    assert all(f"configs/{spec.folder}/" in r.config_file for r in [teacher, *students])
    planned = {r.label for r in students}
    # every method that applies to the detector has a config in the suites that need all of them
    missing = [m for m in REQUIRED[suite] if m not in planned and "only" not in skipped[m]]
    assert not missing, {m: skipped[m] for m in missing}

    teacher_cfg = config_from_file(teacher.config_file)
    baseline = next(r for r in students if r.label == "baseline")
    baseline_cfg = _flat(config_from_file(baseline.config_file))
    distilled = [config_from_file(r.config_file) for r in students if r.label != "baseline"]
    assert distilled
    reference = _flat(distilled[0])
    for run, cfg in zip([r for r in students if r.label != "baseline"], distilled):
        assert list(cfg.MODEL.DISTILL.METHODS) == [run.label]
        assert cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE.endswith(
            os.path.relpath(teacher.config_file, ROOT)
        )
        flat = _flat(cfg)
        differ = {k for k in flat if flat[k] != reference.get(k)}
        differ = {k for k in differ if not k.startswith(f"MODEL.DISTILL.{run.label}.")}
        assert differ <= {"MODEL.DISTILL.METHODS", "OUTPUT_DIR"}, (run.label, differ)
        # the distilled student is the baseline student: same data, schedule, model and seed
        own = ("MODEL.META_ARCHITECTURE", "MODEL.DISTILL.", "OUTPUT_DIR")
        same = [k for k in baseline_cfg if not k.startswith(own)]
        assert {k for k in same if flat.get(k) != baseline_cfg[k]} == set(), run.label
    assert teacher_cfg.DATASETS.TRAIN == distilled[0].DATASETS.TRAIN


@pytest.mark.parametrize("tool_name", ["benchmark_accuracy", "run_main"])
def test_tools_take_a_suite(tool_name):
    """``--suite`` picks the suite; runs go to output/<suite> unless --output says otherwise."""
    tool = load_tool(tool_name)
    default = {"benchmark_accuracy": "shapes", "run_main": "shapes-pretrained"}[tool_name]
    assert tool.parse_args([]).output == os.path.join(ROOT, "output", default)
    args = tool.parse_args(["--suite", "coral", "--detector", "retinanet"])
    assert (args.suite, args.output) == ("coral", os.path.join(ROOT, "output", "coral"))
    assert tool.parse_args(["--suite", "coral", "--output", "x"]).output == "x"
    with pytest.raises(SystemExit):
        tool.parse_args(["--suite", "voc"])
