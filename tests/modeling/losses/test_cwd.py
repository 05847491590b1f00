"""CWD: the loss's known value and its builder's published defaults."""

import math

import pytest
from loss_inputs import F64, SIZES, batch, build_published, features, make_loss


def test_cwd_known_value():
    student, teacher = features(8, seed=1, dtype=F64), features(8, seed=2, dtype=F64)
    tau, expected = 2.0, 0.0
    for k in SIZES:
        for n in range(2):
            for c in range(8):
                s = [v / tau for v in student[k][n, c].flatten().tolist()]
                t = [v / tau for v in teacher[k][n, c].flatten().tolist()]
                zs, zt = sum(math.exp(v) for v in s), sum(math.exp(v) for v in t)
                for vs, vt in zip(s, t):
                    p, q = math.exp(vt) / zt, math.exp(vs) / zs
                    expected += p * math.log(p / q) * tau**2 / (2 * 8)
    out = make_loss("CWD", weight=5.0, tau=tau).double()(batch(student, teacher))
    assert out["loss_cwd"].item() == pytest.approx(5.0 * expected, rel=1e-10)


@pytest.mark.parametrize(
    "arch, levels",
    [
        ("RetinaNet", ["p3", "p4", "p5", "p6", "p7"]),
        ("GeneralizedRCNN", ["p2", "p3", "p4", "p5", "p6"]),
    ],
)
def test_cwd_builder_takes_published_defaults_per_student_type(arch, levels):
    cwd = build_published("CWD", arch)
    assert cwd.weight == 10 and cwd.tau == 1.0 and cwd.in_features == levels
