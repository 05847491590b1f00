"""Tiny runs of the benchmark tools: they run and their outputs have the expected structure.

Timing values are not checked (the CPU is shared); sizes, repeats and schedules are minimal.
"""

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import os

import pytest
from tiny_models import ROOT, distill_cfg, load_tool, two_test_set_study

from csgr.benchmark.accuracy_report import accuracy_goals, accuracy_table, aggregate
from csgr.benchmark.speed_report import SPEED_HEADERS
from csgr.data.datasets import generate_shapes_dataset


def _write_cfg(cfg, path):
    with open(path, "w") as f:
        f.write(cfg.dump())
    return str(path)


def _rows_by_case(rows):
    return {row["case"]: row for row in rows}


@pytest.mark.parametrize(
    "arch, methods, applicable, memory",
    [
        ("GeneralizedRCNN", ["CSGR", "PCD"], ["CSGR"], True),
        ("RetinaNet", ["CSGR", "PCD", "DKD"], ["CSGR", "PCD"], False),
    ],
)
def test_benchmark_distill_tiny(tmp_path, arch, methods, applicable, memory):
    cfg = distill_cfg(str(tmp_path), student_arch=arch, teacher_arch=arch)
    config_file = _write_cfg(cfg, tmp_path / "distill.yaml")
    output, json_path = tmp_path / "speed.md", tmp_path / "speed.json"
    argv = ["--config-file", config_file, "--device", "cpu", "--height", "64", "--width", "96"]
    argv += ["--batch", "2", "--repeats", "1", "--warmup", "0", "--methods", *methods]
    argv += ["--output", str(output), "--json", str(json_path)]
    argv += [] if memory else ["--no-memory"]
    with contextlib.redirect_stdout(io.StringIO()):
        result = load_tool("benchmark_distill").main(argv)

    assert list(result["results"]) == ["fp32"]
    rows = _rows_by_case(result["results"]["fp32"])
    assert {"(a) student step", "(b) teacher backbone+FPN", "(a)+(b)"} <= set(rows)
    timed = {"ms", "min_ms", "max_ms", "images_per_s", "state_mib"}
    timed |= {"peak_mib"} if memory else set()
    for case in ("(a) student step", "(b) teacher backbone+FPN"):
        assert timed <= set(rows[case])
    for method in methods:
        row = rows[f"(c) {method}"]
        if method in applicable:
            assert timed | {"ratio", "loss_ms", "loss_share", "residual_share"} <= set(row)
            assert row["ratio"] > 0 and row["loss_ms"] > 0
        else:
            assert "ms" not in row and row["note"]
    report = output.read_text()
    assert all(h in report for h in SPEED_HEADERS)
    assert "goal (c)/((a)+(b)) for CSGR <= 1.05" in report
    assert "64x96" in report
    assert json.loads(json_path.read_text())["settings"]["methods"] == methods


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_benchmark_criss_cross_tiny(dtype):
    # bfloat16 and float16 run the autocast paths of the CUDA configurations, on the CPU.
    out = io.StringIO()
    argv = ["--device", "cpu", "--levels", "p3", "p7", "--channels", "16", "--repeats", "1"]
    argv += ["--scale", "0.1", "--gemm-size", "64", "--no-memory", "--dtype", dtype]
    with contextlib.redirect_stdout(out):
        rows, pairs = load_tool("benchmark_criss_cross").main(argv)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("criss-cross attention, forward+backward")
    for header in ("GFLOP fwd", "GFLOP bwd", "GFLOP/s", "GEMM GFLOP/s", "of GEMM", "speed-up"):
        assert header in lines[1]
    assert [row["level"] for row in rows] == ["p3", "p7"] == [row["level"] for row in pairs]
    for row in rows:
        assert row["GFLOP bwd"] == 2 * row["GFLOP fwd"] > 0
        assert row["of GEMM"] == pytest.approx(row["GFLOP/s"] / row["GEMM GFLOP/s"])
        tolerance = 1e-5 if dtype == "float32" else 0.1  # bfloat16 has 8 bits of mantissa
        assert row["max |dy| prev"] < tolerance and row["max |dgrad| prev"] < 10 * tolerance
        assert row["max |dy| dense"] < tolerance and row["max |dgrad| dense"] < 10 * tolerance
    assert any(line.startswith("| p7") for line in lines)


def test_benchmark_accuracy_tiny(tmp_path, monkeypatch, capsys):
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=12, num_val=6, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    out = tmp_path / "bench"
    argv = ["--iters", "2", "--teacher-iters", "2", "--seeds", "1", "--jobs", "2"]
    argv += ["--methods", "CSGR", "PCD", "--output", str(out)]
    argv += ["SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]
    argv += ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    argv += ["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64"]
    tool = load_tool("benchmark_accuracy")
    agg = tool.main(argv)

    assert set(agg) == {"teacher", "baseline", "CSGR"}
    assert set(agg["CSGR"]["AP"]) == {"mean", "std", "min", "max", "n"}
    run_dir = out / "frcnn"
    for label in ("teacher", "baseline", "csgr"):
        assert (run_dir / label / "seed1" / "metrics.json").is_file()
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["results"]["baseline"]) == 1 and len(results["results"]["CSGR"]) == 1
    assert "PCD" in results["skipped"]
    report = (run_dir / "accuracy.md").read_text()
    assert "| model" in report and "| CSGR" in report and "| baseline" in report
    assert "CSGR AP >= baseline + 2" in report and "PCD: skipped" in report
    assert (run_dir / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --reuse trains nothing again
    capsys.readouterr()
    tool.main(["--reuse", *argv])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 3 and "done in" not in printed


def test_benchmark_accuracy_reports_each_of_several_test_sets(tmp_path, monkeypatch, capsys):
    """With two test sets every run evaluates both; --report-on ranks on either (the first by
    default), the second report reuses every run, and a test set the runs lack is refused."""
    out, argv = two_test_set_study(tmp_path, monkeypatch)
    tool = load_tool("benchmark_accuracy")

    def recorded(label, dataset):
        lines = (out / "frcnn" / label / "seed1" / "metrics.json").read_text().splitlines()
        last = [json.loads(x) for x in lines if f"{dataset}/bbox/AP" in x][-1]
        return last[f"{dataset}/bbox/AP"]

    first = tool.main(argv)  # the first test set
    assert (out / "frcnn" / "accuracy.md").is_file()
    for label, key in (("teacher", "teacher"), ("baseline", "baseline"), ("csgr", "CSGR")):
        assert first[key]["AP"]["mean"] == pytest.approx(recorded(label, "csgr_shapes_train"))
    capsys.readouterr()
    second = tool.main(["--reuse", "--report-on", "csgr_shapes_val", *argv])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 3 and "done in" not in printed
    for label, key in (("teacher", "teacher"), ("baseline", "baseline"), ("csgr", "CSGR")):
        assert second[key]["AP"]["mean"] == pytest.approx(recorded(label, "csgr_shapes_val"))
    results = json.loads((out / "frcnn" / "csgr_shapes_val" / "results.json").read_text())
    assert results["provenance"]["split"].startswith("csgr_shapes_val (of DATASETS.TEST")
    with pytest.raises(SystemExit, match=r"'coral_test' is not in its DATASETS.TEST"):
        tool.main(["--reuse", "--report-on", "coral_test", *argv])


def test_benchmark_accuracy_tiny_retinanet(tmp_path, monkeypatch):
    """The RetinaNet side by side runs PCD (RetinaNet only), FGD on all five head levels and IKD
    without its ROI logit term."""
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=12, num_val=6, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    out = tmp_path / "bench"
    argv = ["--detector", "retinanet", "--iters", "2", "--teacher-iters", "2", "--seeds", "1"]
    argv += ["--jobs", "2", "--methods", "PCD", "FGD", "IKD", "DKD", "--output", str(out)]
    argv += ["SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]
    argv += ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    argv += ["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64"]
    agg = load_tool("benchmark_accuracy").main(argv)

    assert set(agg) == {"teacher", "baseline", "PCD", "FGD", "IKD"}
    run_dir = out / "retinanet"
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["skipped"]) == ["DKD"]  # it distils ROI logits: Faster R-CNN only
    pcd = (run_dir / "pcd" / "seed1" / "metrics.json").read_text()
    assert '"loss_pcd_cls"' in pcd
    fgd_cfg = (run_dir / "fgd" / "seed1" / "config.yaml").read_text()
    assert "- p2" in fgd_cfg and "- p6" in fgd_cfg
    ikd = (run_dir / "ikd" / "seed1" / "metrics.json").read_text()
    assert '"loss_ikd_feat"' in ikd and '"loss_ikd_logit"' not in ikd


def test_run_main_tiny(tmp_path, monkeypatch, capsys):
    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=12, num_val=6, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    # the R34 -> R18 suite trained from scratch: no ImageNet weights needed at this size
    argv = ["--suite", "shapes", "--iters", "2", "--teacher-iters", "3"]
    argv += ["--output", str(tmp_path / "main")]
    argv += ["SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]
    argv += ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    argv += ["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64"]
    tool = load_tool("run_main")
    results = tool.main(argv)
    printed = capsys.readouterr().out
    assert set(results) == {"teacher", "baseline", "CSGR"}
    for label in ("teacher", "baseline", "csgr"):
        assert (tmp_path / "main" / "frcnn" / label / "seed1" / "model_final.pth").is_file()
    lines = [line for line in printed.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    assert header == ["model", "AP", "AP50", "AP75", "APs", "APm", "APl"]
    labels = [line.split("|")[1].strip() for line in lines[1:]]
    assert labels == ["teacher", "baseline", "CSGR", "CSGR - baseline"]
    diff = float(lines[-1].split("|")[2])
    assert diff == pytest.approx(results["CSGR"]["AP"] - results["baseline"]["AP"], abs=0.006)
    cfg = (tmp_path / "main" / "frcnn" / "csgr" / "seed1" / "config.yaml").read_text()
    assert "SEED: 1" in cfg and "MAX_ITER: 2" in cfg
    # progress (plain lines: not a terminal) of every run, ending with its AP
    for name, total in (("teacher", 3), ("baseline", 2), ("CSGR", 2)):
        assert f"[{name} seed 1] it 0/{total} (0%)" in printed
        ended = f"[{name} seed 1] it {total}/{total} (100%)"
        assert any(line.startswith(ended) and " AP " in line for line in printed.splitlines())
    # pictures at the end: the curves and CSGR's attention maps of the first val image
    pictures = tmp_path / "main" / "frcnn" / "pictures"
    assert (pictures / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (pictures / "attention" / "relation_p2.png").is_file()
    assert f"Pictures: curves {pictures / 'curves.png'}" in printed

    tool.main(argv)  # the teacher is reused, the students are trained again
    printed = capsys.readouterr().out
    assert "Reused the teacher" in printed and printed.count("done in") == 2
    wall = next(line for line in printed.splitlines() if line.startswith("Wall time"))
    assert "teacher" not in wall  # a reused teacher's old training time is not reported

    # the accuracy benchmark plans the same runs in the same layout: it reuses all three
    bench = ["--iters", "2", "--teacher-iters", "3", "--seeds", "1", "--methods", "CSGR"]
    bench += ["--reuse", "--output", str(tmp_path / "main"), *argv[8:]]
    load_tool("benchmark_accuracy").main(bench)
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 3 and "done in" not in printed

    tool.main(["--reuse-students", *argv])  # nothing trains: the wall time says so
    printed = capsys.readouterr().out
    assert "Wall time: every run reused; main job" in printed and "done in" not in printed


def test_accuracy_aggregate_over_seeds():
    runs = [
        {"AP": 10.0, "AP50": 20.0, "AP75": 8.0, "APs": 1.0, "APm": -1.0, "APl": float("nan")},
        {"AP": 12.0, "AP50": 22.0, "AP75": 9.0, "APs": 3.0, "APm": -1.0, "APl": float("nan")},
    ]
    csgr = [dict(r, AP=r["AP"] + 3) for r in runs]
    agg = aggregate({"baseline": runs, "CSGR": csgr, "FGD": runs[:1]})
    assert agg["baseline"]["AP"]["mean"] == 11.0 and agg["baseline"]["AP"]["min"] == 10.0
    assert agg["baseline"]["AP"]["std"] == pytest.approx(2**0.5)
    assert agg["baseline"]["APm"]["n"] == 0  # COCO's -1 (no objects of that size) is left out
    assert math.isnan(agg["FGD"]["AP"]["std"])
    table = accuracy_table(agg, {"baseline": 2, "CSGR": 2, "FGD": 1})
    assert "11.00 ± 1.41" in table and "10.00-12.00" in table and "+3.00" in table
    # failed runs: counted beside the finished ones; a label with none finished keeps its row
    rows = accuracy_table(agg, {"baseline": 2, "CSGR": 2, "FGD": 1}, {"FGD": 2, "MSE": 3})
    rows = {r.split("|")[1].strip(): r.split("|")[2].strip() for r in rows.splitlines()[2:]}
    assert rows == {"baseline": "2", "CSGR": "2", "FGD": "1 (2 failed)", "MSE": "0 (3 failed)"}
    assert accuracy_goals(agg) == [
        "- CSGR AP >= baseline + 2: 14.00 vs 13.00 (met)",
        "- CSGR AP >= FGD AP: 14.00 vs 10.00 (met)",
    ]
    calibrated = aggregate(
        {
            "baseline": runs,
            "CSGR-calibrated": runs[:1],
            "FGD-calibrated": csgr,
            "MSE-calibrated": csgr,
        }
    )
    assert accuracy_goals(calibrated) == [
        "- CSGR-calibrated AP >= FGD-calibrated AP: 10.00 vs 14.00 (NOT met)",
        "- no calibrated method below the baseline (11.00) or failing: 2 of 3 at or above "
        "(NOT met: CSGR-calibrated)",
    ]
    # failed runs (diverged): a method with none finished loses the comparison, a calibrated
    # one counts as below the baseline, partial failures are said
    fgd_diverged = aggregate({"baseline": runs, "CSGR": csgr, "FGD-calibrated": csgr})
    failed = {"FGD": 3, "CSGR": 1, "CSGR-calibrated": 3, "FGD-calibrated": 1}
    assert accuracy_goals(fgd_diverged, failed) == [
        "- CSGR AP >= baseline + 2: 14.00 vs 13.00 (met); CSGR: 1 failed run(s)",
        "- CSGR AP >= FGD AP: 14.00 vs none: every FGD run failed (3) (met); CSGR: 1 failed run(s)",
        "- CSGR-calibrated AP >= FGD-calibrated AP: none vs 14.00: every CSGR-calibrated run "
        "failed (3) (NOT met)",
        "- no calibrated method below the baseline (11.00) or failing: 0 of 2 at or above "
        "(NOT met: FGD-calibrated, CSGR-calibrated)",
    ]


def test_plan_runs_variants_and_calibrated_rows(tmp_path):
    """--variant and --calibrated add rows of one method with their own opts (after the opts of
    every run), stored under their own label; labels must be unique and words well formed."""
    from csgr.benchmark.accuracy_runs import Variant, parse_variant, plan_runs

    tool = load_tool("benchmark_accuracy")
    args = tool.parse_args(
        ["--methods", "CSGR", "FGD", "--calibrated", "--seeds", "1", "2", "--variant"]
        + ["CSGR-p3p6=CSGR", "MODEL.DISTILL.CSGR.REL_IN_FEATURES", "['p3','p4']"]
    )
    labels = [v.label for v in args.variants]
    assert labels == ["CSGR-p3p6", "CSGR-calibrated", "FGD-calibrated"]
    assert args.published == ["CSGR", "FGD"]
    _, students, _ = plan_runs(
        "frcnn",
        args.published,
        args.seeds,
        str(tmp_path),
        ".",
        extra_opts=("K", "V"),
        variants=tuple(args.variants),
    )
    runs = {(r.label, r.seed): r for r in students}
    assert len(runs) == 2 * 6  # baseline, 2 methods, 3 variants per seed
    p3p6 = runs[("CSGR-p3p6", 2)]
    assert p3p6.output_dir == str(tmp_path / "frcnn" / "csgr-p3p6" / "seed2")
    assert p3p6.opts[-4:] == ["K", "V", "MODEL.DISTILL.CSGR.REL_IN_FEATURES", "['p3','p4']"]
    assert runs[("FGD-calibrated", 1)].opts[-2:] == ["MODEL.DISTILL.LOSS_SCALE.MODE", "calibrated"]
    assert "LOSS_SCALE" not in " ".join(runs[("FGD", 1)].opts)

    with pytest.raises(ValueError, match="share a label"):
        plan_runs("frcnn", ["CSGR"], [1], str(tmp_path), ".", variants=(Variant("csgr", "CSGR"),))
    for words, message in (
        (["CSGR"], "LABEL=METHOD"),
        (["x=CSGR", "KEY"], "KEY VALUE pairs"),
        (["baseline=CSGR"], "reserved"),
        (["x=NOPE"], "NOPE"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_variant(words)
    with pytest.raises(SystemExit):
        tool.parse_args(["--variant", "CSGR"])

    # --methods alone: the baseline and the variants only; no --methods: every method
    bare = tool.parse_args(["--methods", "--variant", "CSGR-x=CSGR", "K", "V", "--seeds", "1"])
    assert bare.published == [] and [v.label for v in bare.variants] == ["CSGR-x"]
    assert len(tool.parse_args(["--seeds", "1"]).published) > 2

    # --calibrated only: the methods train calibrated, not at published weights.
    only = tool.parse_args(["--methods", "MSE", "PKD", "--calibrated", "only", "--seeds", "1"])
    assert only.published == []
    assert [v.label for v in only.variants] == ["MSE-calibrated", "PKD-calibrated"]
    _, students, _ = plan_runs(
        "frcnn", only.published, only.seeds, str(tmp_path), ".", variants=tuple(only.variants)
    )
    assert [r.label for r in students] == ["baseline", "MSE-calibrated", "PKD-calibrated"]
    with pytest.raises(SystemExit):
        tool.parse_args(["--calibrated", "always"])


def test_config_digest_of_a_key_added_later(tmp_path):
    """A key of KEYS_ADDED_LATER changes the digest only where its method runs and the key
    leaves the value with which the runs stamped before the key existed computed."""
    from csgr.benchmark.accuracy_runs import plan_runs
    from csgr.benchmark.run_digest import KEYS_ADDED_LATER, config_digest, config_digests

    key, (earlier, method) = next(iter(KEYS_ADDED_LATER.items()))
    assert (key, method) == ("MODEL.DISTILL.PCD.QUALITY_ANCHORS", "PCD")

    def runs(*opts):
        _, students, _ = plan_runs(
            "retinanet", ["CSGR", "PCD"], [1], str(tmp_path), ROOT, extra_opts=opts
        )
        return {r.label: r for r in students}

    teacher = tmp_path / "retinanet" / "teacher" / "seed1" / "model_final.pth"
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"the teacher's weights: part of every student's digest")

    default, before = runs(), runs(key, earlier)
    assert config_digest(default["PCD"]) != config_digest(before["PCD"])
    for label in ("baseline", "CSGR"):  # PCD's key does not reach them
        assert config_digest(default[label]) == config_digest(before[label])
    # the earlier value digests as the merged config without the key, as stamped back then
    assert _digest_before_later_keys(before["PCD"], teacher) == config_digests(before["PCD"])[1]


def test_config_digest_of_teacher_and_baseline_ignores_distillation_keys(tmp_path):
    """A teacher or baseline (not a Distiller: its config still holds MODEL.DISTILL's defaults,
    METHODS ["CSGR"] among them) keeps its digest whatever value a CSGR key added later takes;
    a CSGR student's digest follows it."""
    from csgr.benchmark.accuracy_runs import plan_runs
    from csgr.benchmark.run_digest import config_digest

    def runs(*opts):
        teacher, students, _ = plan_runs(
            "frcnn", ["CSGR"], [1], str(tmp_path), ROOT, extra_opts=opts
        )
        return {"teacher": teacher, **{r.label: r for r in students}}

    weights = tmp_path / "frcnn" / "teacher" / "seed1" / "model_final.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"the teacher's weights: part of every student's digest")
    earlier, later = runs(), runs("MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS", "20")
    assert earlier["teacher"].config_file != earlier["CSGR"].config_file
    for label in ("teacher", "baseline"):
        assert config_digest(earlier[label]) == config_digest(later[label])
    assert config_digest(earlier["CSGR"]) != config_digest(later["CSGR"])


def _digest_before_later_keys(run, teacher):
    """The digest ``run`` was stamped with before any key of KEYS_ADDED_LATER existed (and
    before the digest left out the run's location)."""
    from csgr.benchmark.run_digest import KEYS_ADDED_LATER
    from csgr.config import load_config

    cfg = load_config(run.config_file, ["OUTPUT_DIR", run.output_dir, *run.opts])
    for key in KEYS_ADDED_LATER:
        *parents, leaf = key.split(".")
        del functools.reduce(lambda node, name: node[name], parents, cfg)[leaf]
    del cfg.MODEL.DISTILL["SCHEDULE"]  # added with its keys
    digest = hashlib.sha256(cfg.dump().encode())
    digest.update(teacher.read_bytes())
    return digest.hexdigest()


def test_config_digest_of_csgr_category_attention(tmp_path):
    """CSGR runs stamped before CATEGORY_ATTENTION, CATEGORY_MIN_CELLS, REL_LEVEL_MEAN and
    FORMULATION existed (the published "learned", 0, False, "published") keep their digest when
    run with FORMULATION "published"; another attention or cell count, or the default formulation
    ("headinit"), is another run."""
    from csgr.benchmark.accuracy_runs import Variant, plan_runs
    from csgr.benchmark.run_digest import KEYS_ADDED_LATER, config_digest, config_digests

    key = "MODEL.DISTILL.CSGR.CATEGORY_ATTENTION"
    assert KEYS_ADDED_LATER[key] == ("learned", "CSGR")
    assert KEYS_ADDED_LATER["MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS"] == (0, "CSGR")
    assert KEYS_ADDED_LATER["MODEL.DISTILL.CSGR.REL_LEVEL_MEAN"] == (False, "CSGR")
    assert KEYS_ADDED_LATER["MODEL.DISTILL.CSGR.FORMULATION"] == ("published", "CSGR")
    cells = "MODEL.DISTILL.CSGR.CATEGORY_MIN_CELLS"
    variants = (Variant("CSGR-gt", "CSGR", (key, "gt")), Variant("CSGR-64", "CSGR", (cells, "64")))
    published = ("MODEL.DISTILL.CSGR.FORMULATION", "published")
    _, students, _ = plan_runs(
        "frcnn", ["CSGR"], [1], str(tmp_path), ROOT, variants=variants, extra_opts=published
    )
    runs = {r.label: r for r in students}
    teacher = tmp_path / "frcnn" / "teacher" / "seed1" / "model_final.pth"
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"the teacher's weights: part of every student's digest")
    assert _digest_before_later_keys(runs["CSGR"], teacher) == config_digests(runs["CSGR"])[1]
    default = dataclasses.replace(runs["CSGR"], opts=[o for o in runs["CSGR"].opts[:-2]])
    assert runs["CSGR"].opts[-2:] == list(published)
    assert config_digest(default) != config_digest(runs["CSGR"])
    gt = runs["CSGR-gt"]
    assert config_digest(gt) != config_digest(
        dataclasses.replace(gt, opts=[o for o in gt.opts if o not in (key, "gt")])
    )
    assert config_digest(runs["CSGR-64"]) not in (config_digest(runs["CSGR"]), config_digest(gt))


def test_a_moved_study_keeps_its_runs_and_earlier_stamps_still_match(tmp_path, monkeypatch):
    """The digest leaves out where a run lies (OUTPUT_DIR, the teacher's weights path; the
    weights' content stays in it): the same study under another folder (a moved repository,
    another checkout) has the same digests. A stamp of the earlier, location-bound digest is
    reused without training and restamped with today's."""
    from csgr.benchmark import runner
    from csgr.benchmark.accuracy_runs import plan_runs
    from csgr.benchmark.run_digest import config_digest, config_digests

    def study(folder):
        teacher, students, _ = plan_runs("frcnn", ["CSGR"], [1], str(folder), ROOT)
        weights = folder / "frcnn" / "teacher" / "seed1" / "model_final.pth"
        weights.parent.mkdir(parents=True)
        weights.write_bytes(b"the same teacher's weights")
        return {"teacher": teacher, **{r.label: r for r in students}}

    here, there = study(tmp_path / "a"), study(tmp_path / "b")
    for label in ("teacher", "baseline", "CSGR"):
        assert config_digest(here[label]) == config_digest(there[label])
        assert config_digests(here[label])[1] != config_digests(there[label])[1]
    (tmp_path / "b" / "frcnn" / "teacher" / "seed1" / "model_final.pth").write_bytes(b"another")
    assert config_digest(here["CSGR"]) != config_digest(there["CSGR"])

    run = here["baseline"]
    os.makedirs(run.output_dir)
    metrics = {"iteration": 399, **{f"bbox/{m}": 1.5 for m in ("AP", "AP50", "AP75")}}
    with open(os.path.join(run.output_dir, "metrics.json"), "w") as f:
        f.write(json.dumps(metrics) + "\n")
    stamp = os.path.join(run.output_dir, runner.STAMP)
    with open(stamp, "w") as f:
        json.dump({"config_sha256": config_digests(run)[1], "seconds": 60.0}, f)

    def no_training(*args, **kwargs):
        raise AssertionError("a stamped run trained again")

    monkeypatch.setattr(runner, "_train", no_training)
    got, seconds, reused = runner.run_or_reuse(run, True, log=lambda *_: None)
    assert reused and got["AP"] == 1.5 and seconds == 60.0
    assert json.loads(open(stamp).read())["config_sha256"] == config_digest(run)


def test_report_lists_the_factors_of_calibrated_runs(tmp_path):
    """A calibrated run's factors (its last ``loss_scale/<method>`` in metrics.json) come with its
    metrics and are listed per seed in the report; a run without evaluation has no metrics."""
    from csgr.benchmark.accuracy_report import loss_scale_lines
    from csgr.benchmark.runner import final_metrics

    def write(run_dir, records):
        run_dir.mkdir()
        (run_dir / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
        return str(run_dir)

    evaluation = {f"bbox/{m}": 10.0 + i for i, m in enumerate(["AP", "AP50", "AP75", "APs"])}
    seed1 = write(
        tmp_path / "s1",
        [{"iteration": 0, "loss_scale/FGD": 1.0}, {"iteration": 20, "loss_scale/FGD": 0.382}]
        + [{"iteration": 399, **evaluation}],
    )
    seed2 = write(tmp_path / "s2", [{"iteration": 20, "loss_scale/FGD": 0.405}, evaluation])
    published = write(tmp_path / "p", [evaluation])
    runs = [final_metrics(seed1), final_metrics(seed2)]
    assert runs[0]["AP"] == 10.0 and runs[0]["loss_scale/FGD"] == 0.382
    assert math.isnan(runs[0]["APl"]) and "loss_scale/FGD" not in final_metrics(published)
    assert final_metrics(write(tmp_path / "none", [{"loss_scale/FGD": 0.4}])) is None

    lines = loss_scale_lines({"FGD": [final_metrics(published)], "FGD-calibrated": runs})
    assert lines == ["- FGD-calibrated: loss_scale/FGD per seed 0.382, 0.405"]


def test_final_metrics_of_a_run_with_several_test_sets(tmp_path):
    """Detectron2 names each test set's metrics ``<dataset>/bbox/<metric>`` when there are
    several; the run's report reads the one asked for, or its first DATASETS.TEST."""
    from csgr.benchmark.accuracy_runs import Run
    from csgr.benchmark.runner import final_metrics, report_dataset

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    records = [{"iteration": 9, "a/bbox/AP": 10.0, "b/bbox/AP": 20.0, "b/bbox/AP50": 30.0}]
    (run_dir / "metrics.json").write_text("\n".join(json.dumps(r) for r in records))
    assert final_metrics(str(run_dir)) is None  # no test set named: nothing to report
    assert final_metrics(str(run_dir), "a")["AP"] == 10.0
    b = final_metrics(str(run_dir), "b")
    assert (b["AP"], b["AP50"]) == (20.0, 30.0)

    config = os.path.join(ROOT, "configs", "Shapes", "faster_rcnn_R_18_FPN.yaml")
    two = Run("baseline", 1, config, str(run_dir), ["DATASETS.TEST", "('b','a')"], cwd=ROOT)
    assert report_dataset(two) == "b" and report_dataset(two, "a") == "a"
    with pytest.raises(ValueError, match=r"'c' is not in its DATASETS.TEST \['b', 'a'\]"):
        report_dataset(two, "c")
    one = Run("baseline", 1, config, str(run_dir), [], cwd=ROOT)
    assert report_dataset(one) is None  # one test set: plain bbox/ keys


def test_a_given_teacher_is_reported_only_on_a_test_set_it_was_evaluated_on(tmp_path):
    """--teacher-weights: its folder's evaluation counts for a named test set only when its
    config.yaml evaluated that set (a plain bbox/AP of another set is not passed off as it)."""
    from csgr.benchmark.runner import given_teacher_metrics

    one, two = tmp_path / "one", tmp_path / "two"
    for folder, test, record in (
        (one, "[coral_val]", {"bbox/AP": 6.0}),
        (
            two,
            "[coral_choice, coral_test]",
            {"coral_choice/bbox/AP": 5.0, "coral_test/bbox/AP": 7.0},
        ),
    ):
        folder.mkdir()
        (folder / "config.yaml").write_text(f"DATASETS:\n  TEST: {test}\n")
        (folder / "metrics.json").write_text(json.dumps({"iteration": 9, **record}))
    assert given_teacher_metrics(str(one / "model_final.pth"))["AP"] == 6.0
    assert given_teacher_metrics(str(one / "model_final.pth"), "coral_val")["AP"] == 6.0
    assert given_teacher_metrics(str(one / "model_final.pth"), "coral_choice") is None
    assert given_teacher_metrics(str(two / "model_final.pth"), "coral_test")["AP"] == 7.0


def test_a_failed_student_run_is_counted_per_label_and_decides_the_goal(tmp_path):
    """A student run that fails (here: its teacher's weights do not exist) is recorded with its
    error and counted under its label; the goals use that count."""
    from csgr.benchmark.accuracy_runs import METRICS, Run
    from csgr.benchmark.experiment import run_experiment
    from tiny_models import ROOT

    config = os.path.join(ROOT, "configs", "Shapes", "fgd_frcnn_r18_r34.yaml")
    missing = str(tmp_path / "no_teacher.pth")
    opts = ["MODEL.DISTILL.TEACHER.WEIGHTS", missing]
    run = Run("FGD", 1, config, str(tmp_path / "fgd" / "seed1"), opts, cwd=ROOT)
    out = run_experiment(None, [run], False, False, log=lambda *_: None)
    assert out.failures == {"FGD": 1} and list(out.failed) == ["FGD seed 1"]
    assert "no_teacher.pth" in out.failed["FGD seed 1"]
    csgr = aggregate({"CSGR": [{m: 5.0 for m in METRICS}]})
    assert accuracy_goals(csgr, out.failures) == [
        "- CSGR AP >= FGD AP: 5.00 vs none: every FGD run failed (1) (met)"
    ]


def test_a_diverged_run_is_recorded_and_reused_without_training(tmp_path, monkeypatch):
    """A run that diverges (a real training, LR 1e6 without clipping) is stamped; ``--reuse``
    of the same config reports the divergence again without training, in the same words."""
    from csgr.benchmark.accuracy_runs import Run
    from csgr.benchmark.experiment import run_experiment
    from csgr.benchmark.runner import STAMP
    from tiny_models import ROOT

    data = tmp_path / "d2datasets"
    generate_shapes_dataset(str(data / "csgr_shapes"), num_train=4, num_val=2, image_size=64)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(data))
    config = os.path.join(ROOT, "configs", "Shapes", "faster_rcnn_R_18_FPN.yaml")
    opts = ["SOLVER.BASE_LR", "1e6", "SOLVER.WARMUP_ITERS", "0", "SOLVER.MAX_ITER", "4"]
    opts += ["SOLVER.CLIP_GRADIENTS.ENABLED", "False", "SOLVER.IMS_PER_BATCH", "2"]
    opts += ["DATALOADER.NUM_WORKERS", "0", "INPUT.MIN_SIZE_TRAIN", "(64,)"]
    opts += ["INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64"]
    run_dir = tmp_path / "baseline" / "seed1"
    run = Run("baseline", 1, config, str(run_dir), opts, cwd=ROOT)

    first = run_experiment(None, [run], False, True, log=lambda *_: None)
    assert first.failures == {"baseline": 1}
    assert "diverged (exit 3)" in first.failed["baseline seed 1"]
    assert "NonFiniteLossError" in first.failed["baseline seed 1"]
    assert "diverged" in json.loads((run_dir / STAMP).read_text())
    (run_dir / "stdout.log").write_text("marker")  # a new training would overwrite it

    printed = []
    again = run_experiment(None, [run], False, True, log=printed.append)
    assert again.failures == {"baseline": 1} and again.failed == first.failed
    assert any("reusing the recorded divergence" in line for line in printed)
    assert (run_dir / "stdout.log").read_text() == "marker"  # not trained again


def test_a_run_folder_another_process_trains_is_refused(tmp_path):
    """Two studies on the same folder (e.g. a runner left running after its shell was killed)
    would write one run's files at once: the second is refused while the first holds the lock."""
    import portalocker

    from csgr.benchmark.accuracy_runs import Run
    from csgr.benchmark.experiment import run_experiment

    config = os.path.join(ROOT, "configs", "Shapes", "faster_rcnn_R_18_FPN.yaml")
    run_dir = tmp_path / "baseline" / "seed1"
    run_dir.mkdir(parents=True)
    run = Run("baseline", 1, config, str(run_dir), [], cwd=ROOT)
    with portalocker.Lock(str(run_dir / ".csgr_run.lock"), "a", timeout=0):
        out = run_experiment(None, [run], False, False, log=lambda *_: None)
    assert out.failures == {"baseline": 1}
    assert "another process is training" in out.failed["baseline seed 1"]
    assert not (run_dir / "stdout.log").exists()  # nothing started


def test_teacher_weights_name_the_users_file_from_any_folder(tmp_path, monkeypatch):
    """A relative --teacher-weights names a file from the user's folder; the suite's runs start
    in the repository root, where the same relative path may hold another file (or none): there
    they get the absolute path. From the root itself the path stays as given (study identity)."""
    tool = load_tool("benchmark_accuracy")
    mine = tmp_path / "output" / "teacher" / "model_final.pth"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's teacher")
    monkeypatch.chdir(tmp_path)
    relative = os.path.join("output", "teacher", "model_final.pth")
    args = tool.parse_args(["--suite", "coral", "--teacher-weights", relative])
    assert args.teacher_weights == str(mine)
    assert tool.parse_args(["--suite", "coral"]).teacher_weights == ""
    monkeypatch.chdir(ROOT)
    assert tool.teacher_weights_for_runs(relative, ROOT) == relative
    assert tool.teacher_weights_for_runs(str(mine), ROOT) == str(mine)
    # the digest of a planned student reads the file its run loads, from the run's folder
    from csgr.benchmark.accuracy_runs import plan_runs

    _, students, _ = plan_runs(
        "frcnn", ["CSGR"], [1], str(tmp_path), ROOT, teacher_weights=relative
    )
    csgr = next(r for r in students if r.label == "CSGR")
    assert csgr.depends_on == os.path.join(ROOT, relative) and csgr.cwd == ROOT


def test_config_digest_of_the_distillation_schedule(tmp_path):
    """MODEL.DISTILL.SCHEDULE reaches every distilling run, whatever its method, and no teacher
    or baseline; at its default (distil from the first iteration) every run digests as before
    (CSGR's with the formulation it had then, "published")."""
    from csgr.benchmark.accuracy_runs import plan_runs
    from csgr.benchmark.run_digest import config_digest, config_digests

    def runs(*opts):
        teacher, students, _ = plan_runs(
            "frcnn", ["CSGR", "PKD"], [1], str(tmp_path), ROOT, extra_opts=opts
        )
        return {"teacher": teacher, **{r.label: r for r in students}}

    weights = tmp_path / "frcnn" / "teacher" / "seed1" / "model_final.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"the teacher's weights: part of every student's digest")
    published = ("MODEL.DISTILL.CSGR.FORMULATION", "published")
    default = runs(*published)
    late = runs(*published, "MODEL.DISTILL.SCHEDULE.START_ITER", "-1")
    for label in ("teacher", "baseline"):
        assert config_digest(default[label]) == config_digest(late[label])
    for label in ("CSGR", "PKD"):
        assert config_digest(default[label]) != config_digest(late[label])
        assert (
            _digest_before_later_keys(default[label], weights) == config_digests(default[label])[1]
        )
