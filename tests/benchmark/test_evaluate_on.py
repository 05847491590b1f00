"""``benchmark_accuracy.py --evaluate-on``: a trained study reported on another test set."""

import hashlib
import json

import pytest
from tiny_models import load_tool, two_test_set_study

from csgr.benchmark.evaluate_run import dataset_identity, evaluation_path


def test_a_trained_study_is_evaluated_on_another_test_set_and_reused(tmp_path, monkeypatch, capsys):
    """Every run (teacher, baseline, CSGR) is evaluated afterwards, in its own process, on the
    named test set: the metrics equal those the training's own evaluation recorded for that set,
    the report goes to <study>/<DATASET>/, and a second report trains and evaluates nothing."""
    out, argv = two_test_set_study(tmp_path, monkeypatch)
    tool = load_tool("benchmark_accuracy")
    tool.main(argv)  # trains, and records both test sets during training

    capsys.readouterr()
    agg = tool.main(["--reuse", "--evaluate-on", "csgr_shapes_val", *argv])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 3 and "done in" not in printed
    assert printed.count("evaluating") == 3
    runs = out / "frcnn"
    for folder, label in (("teacher", "teacher"), ("baseline", "baseline"), ("csgr", "CSGR")):
        run = runs / folder / "seed1"
        lines = (run / "metrics.json").read_text().splitlines()
        recorded = [json.loads(x) for x in lines if "csgr_shapes_val/bbox/AP" in x][-1]
        for metric in ("AP", "AP50", "AP75"):
            assert agg[label][metric]["mean"] == pytest.approx(
                recorded[f"csgr_shapes_val/bbox/{metric}"], rel=1e-6, abs=1e-9
            )
        kept = json.loads(open(evaluation_path(str(run), "csgr_shapes_val")).read())
        weights = (run / "model_final.pth").read_bytes()
        assert kept["weights_sha256"] == hashlib.sha256(weights).hexdigest()
        assert kept["dataset_files"] == dataset_identity("csgr_shapes_val")
        assert "instances_val.json" in kept["dataset_files"]
    results = json.loads((runs / "csgr_shapes_val" / "results.json").read_text())
    assert results["provenance"]["split"].startswith("csgr_shapes_val (evaluated after training")

    capsys.readouterr()
    tool.main(["--reuse", "--evaluate-on", "csgr_shapes_val", *argv])
    printed = capsys.readouterr().out
    assert printed.count("reusing its evaluation") == 3 and "evaluating" not in printed

    with pytest.raises(SystemExit):
        tool.main(["--reuse", "--evaluate-on", "csgr_shapes_val", "--report-on", "x", *argv])
    with pytest.raises(SystemExit):  # the screen would choose on the reported test set
        tool.main(["--reuse", "--evaluate-on", "csgr_shapes_val", "--screen", "0.5", *argv])
    with pytest.raises(SystemExit, match="'shapes_vall' is not a registered dataset"):
        tool.main(["--reuse", "--evaluate-on", "shapes_vall", *argv])
