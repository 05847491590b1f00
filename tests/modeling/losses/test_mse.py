"""MSE: the loss's known value and its builder's defaults."""

import pytest
from loss_inputs import (
    ALL_LEVELS,
    F64,
    SIZES,
    batch,
    build_published,
    check_only_minus_one_means_published,
    features,
    make_loss,
)
from method_lists import ARCHS


def test_mse_known_value():
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    expected = 0.0
    for k in SIZES:
        diffs = (student[k] - teacher[k]).flatten().tolist()
        expected += sum(d * d for d in diffs) / len(diffs)
    out = make_loss("MSE", weight=3.0).double()(batch(student, teacher))
    assert out["loss_mse"].item() == pytest.approx(3.0 * expected, rel=1e-10)


@pytest.mark.parametrize("arch", ARCHS)
def test_mse_builder_has_no_published_values(arch):
    mse = build_published("MSE", arch)
    assert mse.weight == 1.0
    assert mse.in_features == ALL_LEVELS  # [] = every common level (no publication)


def test_mse_only_minus_one_means_published():
    check_only_minus_one_means_published("MSE", "WEIGHT")
