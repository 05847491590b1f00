"""The rendered documentation: every results table of README.md, BENCHMARKS.md and docs/ equals
what tools/render_docs.py renders from docs/results/*.json and the method registry."""

import glob
import json
import os
import re
import shutil

import pytest
from tiny_models import ROOT

from csgr.benchmark.accuracy_report import write_accuracy_report
from csgr.benchmark.experiment import ExperimentResult
from csgr.docs_render import check_files, doc_files, render_file
from csgr.docs_render.accuracy_tables import full_table
from csgr.docs_render.citations import PAPERS
from csgr.docs_render.markers import find_blocks, stale_blocks
from csgr.docs_render.render import render_spec
from csgr.docs_render.results import AccuracyResults
from csgr.modeling.losses import method_names

README = os.path.join(ROOT, "README.md")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_every_rendered_block_is_current():
    stale = check_files(ROOT, doc_files(ROOT))
    assert not stale, f"run `python tools/render_docs.py`; stale blocks: {stale}"


def test_a_hand_edited_table_is_stale():
    text = _read(README)
    block = next(b for b in find_blocks(text) if b.spec.startswith("make_main"))
    content = text[block.start : block.end]
    edited = text[: block.start] + content.replace("|", "| 99.99", 1) + text[block.end :]

    def render(spec):
        return render_spec(ROOT, spec, README)

    assert stale_blocks(text, render) == []
    assert stale_blocks(edited, render) == [(block.line, block.spec)]


def test_changing_a_results_file_changes_the_rendered_table(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    source = os.path.join(ROOT, "docs", "results", "make_main.json")
    target = tmp_path / "docs" / "results" / "make_main.json"
    shutil.copy(source, target)
    doc = tmp_path / "README.md"
    doc.write_text(
        "# x\n<!-- results:make_main:make_main start -->\n<!-- results:make_main:make_main end -->\n"
    )
    assert render_file(str(tmp_path), str(doc))
    data = json.loads(target.read_text())
    recorded = f"| {data['results']['CSGR'][0]['AP']:.2f} "
    assert recorded in doc.read_text()
    data["results"]["CSGR"][0]["AP"] = 99.25
    target.write_text(json.dumps(data))
    assert check_files(str(tmp_path), [str(doc)]) == [("README.md", 2, "make_main:make_main")]
    assert render_file(str(tmp_path), str(doc))
    assert "| 99.25 " in doc.read_text() and recorded not in doc.read_text()
    assert not render_file(str(tmp_path), str(doc))  # rendering again changes nothing


def test_a_block_without_its_end_marker_names_the_file_and_line():
    with pytest.raises(ValueError, match=r"x.md:2: no '<!-- results:a end -->'"):
        find_blocks("# t\n<!-- results:a start -->\n", "x.md")


def _outside_blocks_and_code(text):
    for block in reversed(find_blocks(text)):
        text = text[: block.start] + text[block.end :]
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_readme_is_short_and_its_figures_are_rendered():
    text = _read(README)
    assert text.count("\n") <= 220
    rest = _outside_blocks_and_code(text)
    figures = re.findall(r"[-+]?\b\d+\.\d\d\b", rest)
    assert not figures, f"figures outside rendered blocks: {figures}"
    numeric_cell = re.compile(r"\|\s*[-+]?\d+(\.\d+)?( ± \d+(\.\d+)?)?\s*(?=\|)")
    rows = [
        line for line in rest.splitlines() if line.startswith("|") and numeric_cell.search(line)
    ]
    assert not rows, f"table rows with figures outside rendered blocks: {rows}"


def test_reference_docs_and_code_name_no_issue_or_work_period():
    """How a result came to be lives in docs/notes/ (the dated log); the reference docs and the
    code say what is."""
    paths = [p for p in doc_files(ROOT) if os.sep + "notes" + os.sep not in p]
    for folder, ext in (
        ("projects", ".py"),
        ("tools", ".py"),
        ("tools", ".sh"),
        ("configs", ".yaml"),
    ):
        paths += glob.glob(os.path.join(ROOT, folder, "**", "*" + ext), recursive=True)
    pattern = re.compile(r"issue [0-9]|\bsession\b", re.I)
    found = [
        f"{os.path.relpath(p, ROOT)}:{n}"
        for p in paths
        for n, line in enumerate(_read(p).splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found


def test_every_method_has_a_paper_and_a_page():
    for name in method_names():
        assert name in PAPERS, f"{name}: no entry in csgr/docs_render/citations.py"
        assert PAPERS[name].bibtex.startswith("@") and PAPERS[name].short
        page = os.path.join(ROOT, "docs", "methods", name.lower() + ".md")
        assert os.path.isfile(page), f"no method page {page}"


def test_methods_table_gives_csgr_defaults_as_the_built_loss_uses_them():
    """The default formulation sets the relation term's keys: the table shows what trains."""
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec

    from csgr.config import add_csgr_config
    from csgr.docs_render.methods import methods_table
    from csgr.modeling.losses import get_method

    row = next(r for r in methods_table().splitlines() if r.startswith("| [CSGR]"))
    frcnn, retina = [c.strip() for c in row.split("|")[3:5]]
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = "GeneralizedRCNN"
    shapes = {f"p{i}": ShapeSpec(channels=8, stride=2**i) for i in range(2, 7)}
    loss = get_method("CSGR").build(cfg, shapes, shapes)
    assert (loss.rel_features, loss.rel_weight, loss.rel_level_mean) == (
        ["p2", "p3", "p4", "p5"],
        3.0,
        True,
    )
    assert frcnn.startswith("formulation headinit (pkd-levels-headinit), rel_in_features p2-p5, ")
    assert "rel_weight 3, rel_level_mean True, cat_weight 0.0005" in frcnn
    assert retina.startswith("formulation headinit (published-headinit), cat_weight 0.0005, ")
    assert "rel_weight 1e-05" in retina


def test_accuracy_report_writes_a_file_the_renderer_takes(tmp_path):
    experiment = ExperimentResult()
    metrics = dict(AP=10.0, AP50=20.0, AP75=9.0, APs=8.0, APm=12.0, APl=float("nan"))
    experiment.add("teacher", {**metrics, "AP": 20.0}, 60.0, False)
    for seed, ap in ((1, 5.0), (2, 7.0)):
        experiment.add("baseline", {**metrics, "AP": ap}, 60.0, False)
        experiment.add("CSGR", {**metrics, "AP": ap + 3}, 60.0, False)
    experiment.failed["FGD seed 1"] = "[FGD seed 1] diverged (exit 3) ... at iteration 31"
    experiment.failed["FGD seed 2"] = "[FGD seed 2] diverged (exit 3) ... at iteration 12"
    experiment.failures["FGD"] = 2
    facts = {"command": "python tools/benchmark_accuracy.py", "commit": "abc", "teacher_seed": 1}
    write_accuracy_report(
        str(tmp_path), "t", "s", [1, 2], "cmd", experiment, {"PCD": "RetinaNet only"}, "0", facts
    )
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["provenance"]["commit"] == "abc" and data["provenance"]["seeds"] == [1, 2]
    assert data["seeds"] == {"teacher": [1], "baseline": [1, 2], "CSGR": [1, 2]}
    table = full_table(AccuracyResults(data))
    assert "| 9.00 ± 1.41 " in table and "| 8.00, 10.00 " in table and "+3.00" in table
    assert "diverged on every seed (iterations 31, 12)" in table
    assert "- PCD: not run (RetinaNet only)" in table


def test_per_seed_values_are_in_seed_order_past_nine():
    # Seeds 9, 10, 11 in run order 10, 11, 9: the cell lists them 9, 10, 11 (not as strings,
    # where "10" < "9"), a diverged seed in its place.
    metrics = dict(AP50=1.0, AP75=1.0, APs=1.0, APm=1.0, APl=1.0)
    data = {
        "results": {
            "baseline": [{**metrics, "AP": ap} for ap in (10.0, 11.0, 9.0)],
            "CSGR": [{**metrics, "AP": ap} for ap in (20.0, 19.0)],
        },
        "seeds": {"baseline": [10, 11, 9], "CSGR": [11, 9]},
        "failed": {"CSGR seed 10": "[CSGR seed 10] diverged (exit 3) ... at iteration 7"},
        "provenance": {"seeds": [9, 10, 11]},
    }
    rows = {
        line.split("|")[1].strip(): line for line in full_table(AccuracyResults(data)).splitlines()
    }
    assert "| 9.00, 10.00, 11.00 " in rows["baseline"]
    assert "| 19.00, diverged at it 7, 20.00 " in rows["CSGR"]


def test_compact_table_says_which_methods_do_not_apply_to_a_detector(tmp_path):
    from csgr.docs_render.accuracy_tables import compact_table

    files = []
    for detector, methods in (("frcnn", ("DKD", "PKD")), ("retinanet", ("PCD",))):
        experiment = ExperimentResult()
        for ap in (5.0, 7.0):
            for label in ("baseline", *methods):
                metrics = dict.fromkeys(("AP50", "AP75", "APs", "APm", "APl"), 1.0)
                experiment.add(label, {**metrics, "AP": ap + len(label)}, 60.0, False)
        facts = {"command": "cmd", "commit": "abc", "detector": detector}
        folder = tmp_path / detector
        write_accuracy_report(str(folder), "t", "s", [1, 2], "cmd", experiment, {}, "0", facts)
        files.append(AccuracyResults(json.loads((folder / "results.json").read_text())))
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
        for line in compact_table(files, ["Faster R-CNN", "RetinaNet"]).splitlines()
        if line.startswith("| ") and not line.startswith("| student")
    }
    assert rows["DKD"] == ["9.00 ± 1.41 (-5.00)", "n/a"]  # ROI logits: no RetinaNet
    assert rows["PCD"] == ["n/a", "9.00 ± 1.41 (-5.00)"]  # RetinaNet head: no Faster R-CNN
    assert rows["PKD"] == ["9.00 ± 1.41 (-5.00)", "not run"]  # applies, was not run
    # no published CSGR row in either file: no "where CSGR loses" sentence with empty clauses
    assert "Where CSGR loses" not in compact_table(files, ["Faster R-CNN", "RetinaNet"])
    # a row named differently by the two files carries both names
    files[0].display["labels"] = {"baseline": "baseline R18"}
    files[1].display["labels"] = {"baseline": "baseline R50"}
    table = compact_table(files, ["Faster R-CNN", "RetinaNet"])
    assert "| baseline R18 / baseline R50 " in table


def test_where_csgr_loses_names_other_methods_variants_but_not_its_own_settings(tmp_path):
    """A variant of another method (PKD with an init, a baseline with one) is a rival student;
    a CSGR setting (CSGR-<variant>) is CSGR's own row with its own goal lines."""
    from csgr.docs_render.accuracy_tables import compact_table

    experiment = ExperimentResult()
    means = {"baseline": 5.0, "CSGR": 7.0, "PKD-headinit": 8.0, "CSGR-other": 9.0, "PKD": 6.0}
    for label, ap in means.items():
        for seed_offset in (-1.0, 1.0):
            metrics = dict.fromkeys(("AP50", "AP75", "APs", "APm", "APl"), 1.0)
            experiment.add(label, {**metrics, "AP": ap + seed_offset}, 60.0, False)
    facts = {"command": "cmd", "commit": "abc", "detector": "retinanet"}
    write_accuracy_report(str(tmp_path), "t", "s", [1, 2], "cmd", experiment, {}, "0", facts)
    res = AccuracyResults(json.loads((tmp_path / "results.json").read_text()))
    line = compact_table([res], ["RetinaNet"]).split("Where CSGR loses (mean AP): ")[1]
    assert line.startswith("RetinaNet: published 7.00, below PKD-headinit 8.00.")
    # a file whose default ran as a CSGR setting says where that row loses, first
    res.display["default"] = "CSGR-other"
    line = compact_table([res], ["RetinaNet"]).split("Where CSGR loses (mean AP): ")[1]
    assert line.startswith("RetinaNet: default 9.00, best; published 7.00, below PKD-headinit")
    # the default's row comes right after the baseline's, whatever the file's order
    students = [
        line.split("|")[1].strip()
        for line in compact_table([res], ["RetinaNet"]).splitlines()
        if line.startswith("| ") and not line.startswith("| student")
    ]
    assert students[:3] == ["baseline", "CSGR-other", "CSGR"]
    res.display["default"] = "PKD"  # a default below the baseline's rivals names them
    line = compact_table([res], ["RetinaNet"]).split("Where CSGR loses (mean AP): ")[1]
    assert line.startswith("RetinaNet: default 6.00, below PKD-headinit 8.00; published 7.00")
    # with no CSGR row to judge, the methods not run start a paragraph of their own
    del res.display["default"]
    for label in ("CSGR", "CSGR-other"):
        del res.results[label]
        res.data["aggregate"].pop(label, None)
    table = compact_table([res], ["RetinaNet"])
    assert "Where CSGR loses" not in table and "|\n\nNot run yet: RetinaNet: " in table


def test_generic_tables_render_their_lines():
    from csgr.docs_render.tables import generic_tables

    data = {
        "tables": [
            {"title": "T", "columns": ["a", "b"], "rows": [[1, 2]], "lines": ["- x (met)"]},
            {"columns": ["c"], "rows": [[3]]},
        ]
    }
    text = generic_tables(data)
    assert text.startswith("*T*\n\n| a   | b   |")
    assert "| 1   | 2   |\n\n- x (met)\n\n| c   |" in text


def test_goals_view_prints_each_csgr_rows_seed_goals(tmp_path):
    """``results:<name>:goals``: per CSGR row, above the baseline seed by seed and best or within
    one std of the best, from the results file's per-seed values."""
    (tmp_path / "docs" / "results").mkdir(parents=True)
    ap = lambda *values: [{"AP": v} for v in values]  # noqa: E731
    data = {
        "results": {"baseline": ap(5.0, 7.0), "CSGR": ap(6.0, 6.5), "PKD": ap(9.0, 11.0)},
        "seeds": {"baseline": [4, 5], "CSGR": [4, 5], "PKD": [4, 5]},
    }
    (tmp_path / "docs" / "results" / "x.json").write_text(json.dumps(data))
    text = render_spec(str(tmp_path), "x:goals", str(tmp_path / "BENCHMARKS.md"))
    assert text.splitlines() == [
        "- CSGR AP above the baseline on every seed: 1 of 2 (seed 4 +1.00, seed 5 -0.50) (NOT met)",
        "- CSGR best or within one std of the best (PKD 10.00 ± 1.41): 6.25 (NOT met)",
    ]
