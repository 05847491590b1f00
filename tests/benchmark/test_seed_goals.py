"""The per-seed goals of a CSGR row: above the same seed's baseline on every seed, and best or
within one std of the best student."""

from csgr.benchmark.seed_goals import csgr_seed_goals


def _runs(*values):
    return [{"AP": v} for v in values]


def test_a_row_that_loses_one_seed_and_one_that_holds():
    results = {
        "teacher": _runs(50.0),
        "baseline": _runs(10.0, 12.0, 14.0),
        "CSGR": _runs(11.0, 15.0, 13.0),
        "CSGR-gt-level": _runs(12.0, 13.0, 15.0),
        "PKD": _runs(13.0, 14.0, 15.0),
    }
    seeds = {"teacher": [1], **{k: [1, 2, 3] for k in results if k != "teacher"}}
    assert csgr_seed_goals(results, seeds) == [
        "- CSGR AP above the baseline on every seed: 2 of 3 (seed 1 +1.00, seed 2 +3.00, "
        "seed 3 -1.00) (NOT met)",
        "- CSGR best or within one std of the best (PKD 14.00 ± 1.00): 13.00 (met)",
        "- CSGR-gt-level AP above the baseline on every seed: 3 of 3 (seed 1 +2.00, seed 2 "
        "+1.00, seed 3 +1.00) (met)",
        "- CSGR-gt-level best or within one std of the best (PKD 14.00 ± 1.00): 13.33 (met)",
    ]


def test_a_failed_seed_counts_as_below_and_pairs_by_seed():
    results = {"baseline": _runs(10.0, 12.0, 14.0), "CSGR": _runs(20.0, 11.0)}
    seeds = {"baseline": [1, 2, 3], "CSGR": [1, 3]}  # seed 2 diverged
    lines = csgr_seed_goals(results, seeds)
    assert lines[0] == (
        "- CSGR AP above the baseline on every seed: 1 of 3 (seed 1 +10.00, seed 2 failed, "
        "seed 3 -3.00) (NOT met)"
    )
    assert lines[1] == "- CSGR best or within one std of the best (CSGR 15.50 ± 6.36): 15.50 (met)"
    assert csgr_seed_goals({"CSGR": _runs(1.0)}, {"CSGR": [1]}) == []


def test_the_default_row_comes_first_and_is_named():
    results = {"baseline": _runs(10.0, 12.0), "CSGR": _runs(9.0, 13.0), "CSGR-x": _runs(11.0, 14.0)}
    seeds = {k: [1, 2] for k in results}
    lines = csgr_seed_goals(results, seeds, default="CSGR-x")
    assert lines[0].startswith("- the default (CSGR-x) AP above the baseline on every seed: 2 of 2")
    assert lines[1].startswith("- the default (CSGR-x) best or within one std of the best")
    assert lines[2].startswith("- CSGR AP above the baseline on every seed: 1 of 2")
