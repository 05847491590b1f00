"""The GPU check (tools/gpu_check.py): its dry run on the CPU runs every part's code on tiny sizes
and reports each; parts stopped at their limit keep what they finished; the renderer shows every
status, and says what to run while nothing is measured.

Timings are not checked (the CPU is shared).
"""

import contextlib
import io
import json
import math
import os

import pytest
from tiny_models import load_tool

from csgr.benchmark.gpu_check import PARTS, GpuCheckSettings, run_part, part_plans
from csgr.benchmark.gpu_check_record import PART_STATUSES, PartRecord, part_status
from csgr.benchmark.gpu_check_report import COMMAND, render_gpu_section


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """``tools/gpu_check.py --device cpu --quick``: (results, JSON file, printed report)."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    output = tmp / "results.json"
    argv = ["--device", "cpu", "--quick", "--work-dir", str(tmp / "work"), "--output", str(output)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        results = load_tool("gpu_check").main(argv)
    return results, output, printed.getvalue()


def _units(results, part):
    return {u["name"]: u for u in results["parts"][part]["units"]}


def test_dry_run_reports_every_part_with_a_status(dry_run):
    results, output, printed = dry_run
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    assert list(results["parts"]) == list(PARTS)
    for name, part in results["parts"].items():
        assert part["status"] == "done", (name, part.get("error"), part.get("log_tail"))
        assert part["units"] and all(u["status"] in ("done", "skipped") for u in part["units"])
        assert 0 < part["wall_s"] <= part["limit_s"] + 5
    provenance = results["provenance"]
    assert provenance["device"] == "cpu" and provenance["torch"] and provenance["commit"]
    assert provenance["command"].startswith("python tools/gpu_check.py --device cpu --quick")
    assert printed.startswith("**Dry run on the CPU**") and printed == render_gpu_section(results)
    for part in PARTS.values():
        assert f"**{part.title}**: done" in printed


def test_dry_run_cuda_tests_skip_without_cuda(dry_run):
    units = dry_run[0]["parts"]["tests"]["units"]
    assert any("test_fp16_with_grad_scaler_on_cuda" in u["name"] for u in units)
    assert any("under_nccl" in u["name"] for u in units)
    assert all(u["status"] == "skipped" and "needs" in u["note"] for u in units)


def test_dry_run_speed_measures_fp32_and_bf16_and_skips_fp16(dry_run):
    units = _units(dry_run[0], "speed")
    assert units["Faster R-CNN AMP float16"]["status"] == "skipped"
    assert "needs a CUDA device" in units["Faster R-CNN AMP float16"]["note"]
    for name in ("Faster R-CNN fp32", "RetinaNet AMP bfloat16"):
        unit = units[name]
        assert unit["status"] == "done" and unit["csgr_ratio"] > 0
        rows = {row["case"]: row for row in unit["rows"]}
        assert {"(a) student step", "(b) teacher backbone+FPN", "(c) CSGR"} <= set(rows)
        assert rows["(c) CSGR"]["peak_mib"] > 0
    assert "CSGR step / (student step + teacher forward) = " in dry_run[2]


def test_dry_run_criss_cross_matches_dense_at_every_level(dry_run):
    units = _units(dry_run[0], "criss_cross")
    levels = part_plans(GpuCheckSettings(device="cpu", quick=True))["criss_cross"]["levels"]
    assert set(units) == {
        f"{level} {dtype}" for level in levels for dtype in ("float32", "float16")
    }
    for unit in units.values():
        row = unit["row"]
        tolerance = 1e-4 if unit["dtype"] == "float32" else 0.1
        assert row["max |dy| dense"] < tolerance and row["max |dgrad| dense"] < 10 * tolerance
        assert row["cc ms"] > 0 and row["dense peak MiB"] > 0


def test_dry_run_two_gloo_processes_train(dry_run):
    (unit,) = dry_run[0]["parts"]["nccl"]["units"]
    assert unit["backend"] == "gloo" and unit["exit_status"] == 0 and unit["iterations"] == 2
    assert {"loss_cls", "loss_csgr_cat", "loss_csgr_rel"} <= set(unit["losses"])
    assert all(math.isfinite(v) for v in unit["losses"].values())
    assert "--num-gpus 2" in unit["command"]


def test_a_part_killed_at_its_limit_is_reported_as_timeout(tmp_path):
    plan = part_plans(GpuCheckSettings(device="cpu", quick=True))["criss_cross"]
    part = run_part("criss_cross", plan, 0.5, str(tmp_path))
    assert part["status"] == "timeout" and "limit of 0.5 s" in part["error"]
    assert all(u["status"] in ("done", "timeout") for u in part["units"])
    results = {"provenance": {}, "settings": {}, "parts": {"criss_cross": part}}
    assert "**Criss-cross attention**: timeout" in render_gpu_section(_complete(results))


def test_units_that_do_not_fit_are_not_run_and_the_part_is_partial(tmp_path):
    record = PartRecord(str(tmp_path / "part.json"), limit_s=60, margin_s=0)
    with record.unit("first") as unit:
        unit["value"] = 1
    assert record.fits("second", 1.0)
    assert not record.fits("third", 3600.0)
    with record.unit("fourth"):
        raise RuntimeError("out of memory")
    record.finish()
    saved = json.loads((tmp_path / "part.json").read_text())
    assert [u["status"] for u in saved["units"]] == ["done", "not run", "error"]
    assert "out of time" in saved["units"][1]["note"]
    assert saved["units"][2]["error"].startswith("RuntimeError: out of memory")
    assert saved["status"] == "failed"  # an error outranks units left out of time
    assert part_status({"units": saved["units"][:2]}) == "partial"


def test_test_outcomes_are_recorded_per_test(tmp_path):
    (tmp_path / "test_outcomes.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def broken():\n"
        "    raise OSError('no device')\n\n"
        "@pytest.mark.cuda\n"
        "def test_passes():\n"
        "    pass\n\n"
        "@pytest.mark.cuda\n"
        "def test_fails():\n"
        "    assert 1 == 2, 'one is not two'\n\n"
        "@pytest.mark.cuda\n"
        "def test_skips():\n"
        "    pytest.skip('not here')\n\n"
        "@pytest.mark.cuda\n"
        "def test_setup_error(broken):\n"
        "    pass\n\n"
        "def test_not_marked():\n"
        "    pass\n"
    )
    plan = {"marker": "cuda", "paths": [str(tmp_path / "test_outcomes.py")], "device": "cpu"}
    part = run_part("tests", plan, 120, str(tmp_path / "work"))
    outcomes = {u["name"].split("::")[-1]: u for u in part["units"]}
    assert {k: u["status"] for k, u in outcomes.items()} == {
        "test_passes": "passed",
        "test_fails": "failed",
        "test_skips": "skipped",
        "test_setup_error": "error",
    }
    assert "one is not two" in outcomes["test_fails"]["note"]
    assert "assert 1 == 2" in outcomes["test_fails"]["error"]
    assert outcomes["test_skips"]["note"] == "not here"
    assert "no device" in outcomes["test_setup_error"]["note"]
    assert part["status"] == "failed" and part["exit_code"] == 1


def _complete(results):
    """Fill the provenance and settings a synthetic results dict leaves out."""
    provenance = dict.fromkeys(["driver", "cuda", "cudnn", "gpu_memory_gib", "capability"])
    provenance.update(device="NVIDIA H100 80GB HBM3", gpu_count=1, cpu="x", cpu_count=16)
    provenance.update(torch="2.14.1", detectron2="0.7.2", python="3.11", commit="abc1234" * 6)
    provenance.update(date="2026-12-06 10:00 UTC", command=COMMAND)
    results["provenance"] = {**provenance, **results["provenance"]}
    results["settings"] = {"budget_s": 480.0, **results["settings"]}
    return results


def test_render_every_status_and_the_gpu_provenance():
    skipped = {"status": "skipped", "reason": "needs 2 CUDA devices, this machine has 1"}
    error = {"status": "error", "units": [], "error": "ImportError: no module", "log_tail": "x\n"}
    partial = {
        "status": "partial",
        "units": [{"name": "p2 float32", "status": "not run", "note": "out of time: 3 s left"}],
        "plan": {"channels": 256, "scale": 1.0, "repeats": 5},
    }
    parts = {
        "tests": dict(error, title="CUDA tests", wall_s=1, limit_s=120),
        "criss_cross": dict(partial, title="Criss-cross attention", wall_s=70, limit_s=72),
        "nccl": dict(skipped, title="Two-process launch", wall_s=2, limit_s=72),
    }
    text = render_gpu_section(_complete({"provenance": {}, "settings": {}, "parts": parts}))
    assert text.startswith("Measured on **NVIDIA H100 80GB HBM3** (1 GPU")
    assert f"```\n{COMMAND}\n```" in text
    assert "**CUDA tests**: error" in text and "ImportError: no module" in text
    assert "**Criss-cross attention**: partial" in text and "p2 float32: not run" in text
    assert "**Two-process launch**: skipped" in text and "this machine has 1" in text
    assert set(PART_STATUSES) >= {p["status"] for p in parts.values()}


def test_render_without_results_names_the_command():
    text = render_gpu_section(None)
    assert text.startswith("**Not measured on a GPU yet.**")
    assert f"`{COMMAND}`" in text and "docs/results/gpu_check.json" in text


def test_help_states_the_budget_and_the_parts(capsys):
    with pytest.raises(SystemExit):
        load_tool("gpu_check").parse_args(["--help"])
    text = capsys.readouterr().out
    assert "about 8 minutes" in text and "default budget 480 s" in text
    assert all(name in text for name in PARTS)
    assert "--device cpu --quick" in text and "--budget-s" in text


def test_the_full_run_writes_the_docs_results_file():
    settings = GpuCheckSettings(device="cuda")
    assert settings.output_path().endswith(os.path.join("docs", "results", "gpu_check.json"))
    assert GpuCheckSettings(device="cuda", quick=True).output_path().startswith("output")
    speed = part_plans(settings)["speed"]
    assert (speed["height"], speed["width"], speed["batch"]) == (800, 1333, 2)
    assert {r["precision"] for r in speed["runs"]} == {"fp32", "float16"}
    assert {r["detector"] for r in speed["runs"]} == {"Faster R-CNN", "RetinaNet"}
