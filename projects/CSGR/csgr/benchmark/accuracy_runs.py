"""Planning the training runs of the offline experiments, for ``make main`` (tools/run_main.py, a
preset: the teacher, the baseline and the CSGR student of one seed) and the accuracy benchmark
(tools/benchmark_accuracy.py: every method over several seeds); :mod:`.runner` runs them.

Every run is ``tools/train_net.py`` in a fresh process, as a user would run it, on the configs of
one suite (:data:`SUITES`: the shapes from scratch, the shapes or the coral photographs with
ImageNet-initialised backbones): the teacher once, then per seed the baseline student and one
student per method, all students on the same schedule (``SOLVER.MAX_ITER``/``STEPS``),
augmentation (the suite's shared base config) and ``SEED``. Only ``MODEL.DISTILL.METHODS``
differs between students. Runs go to ``<output>/<detector>/<label>/seed<k>`` whichever tool plans
them, so a teacher (or a student) trained by one is reused by the other.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..modeling.losses import get_method

__all__ = [
    "METRICS",
    "SUITES",
    "DETECTORS",
    "SuiteDetector",
    "Run",
    "Variant",
    "parse_variant",
    "schedule_opts",
    "plan_runs",
]

METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]


@dataclass(frozen=True)
class SuiteDetector:
    """A detector type of one experiment suite: its student meta-architecture and the names
    (in ``configs/<folder>/``) of the teacher, the baseline student and a distilled student."""

    arch: str
    teacher: str
    baseline: str
    distilled: str  # with "{method}", the method's name in lower case
    folder: str = "Shapes"

    def config_file(self, root: str, name: str) -> str:
        """``<root>/configs/<folder>/<name>.yaml`` (root: the repository root)."""
        return os.path.join(os.path.abspath(root), "configs", self.folder, name + ".yaml")

    def method_config(self, root: str, method: str) -> Tuple[Optional[str], str]:
        """The config of a distillation method for this detector in this suite.

        Returns:
            (config path, "") or, for a method that does not apply to ``arch``
            (``DistillMethod.APPLIES_TO``) or has no config, (None, why).
        """
        method_cls = get_method(method)
        if not method_cls.applies_to(self.arch):
            only = "/".join(method_cls.APPLIES_TO)
            return None, f"{method_cls.NOT_APPLICABLE_REASON}: {only} only"
        path = self.config_file(root, self.distilled.format(method=method.lower()))
        if not os.path.isfile(path):
            return None, f"no config {os.path.relpath(path, os.path.abspath(root))}"
        return path, ""


def _pretrained(folder: str, suffix: str = "") -> Dict[str, SuiteDetector]:
    """EfficientNet-Lite2-FPN teacher, MobileNetV2-FPN student, both ImageNet-initialised."""
    return {
        key: SuiteDetector(
            arch,
            f"{prefix}_EffLite2_FPN{suffix}",
            f"{prefix}_MNv2_FPN{suffix}",
            f"{{method}}_{key}_mnv2_efflite2{suffix}",
            folder,
        )
        for key, arch, prefix in (
            ("frcnn", "GeneralizedRCNN", "faster_rcnn"),
            ("retinanet", "RetinaNet", "retinanet"),
        )
    }


SUITES: Dict[str, Dict[str, SuiteDetector]] = {
    # generated shapes, ResNet-FPN students and teachers trained from scratch
    "shapes": {
        "frcnn": SuiteDetector(
            "GeneralizedRCNN",
            "faster_rcnn_R_34_FPN",
            "faster_rcnn_R_18_FPN",
            "{method}_frcnn_r18_r34",
        ),
        "retinanet": SuiteDetector(
            "RetinaNet", "retinanet_R_34_FPN", "retinanet_R_18_FPN", "{method}_retinanet_r18_r34"
        ),
    },
    # the same shapes, ImageNet-initialised mobile backbones (configs/Shapes/*_pretrained.yaml)
    "shapes-pretrained": _pretrained("Shapes", "_pretrained"),
    # real underwater photographs (coral tiles), ImageNet-initialised mobile backbones
    "coral": _pretrained("Coral"),
}
DETECTORS = SUITES["shapes"]


@dataclass
class Run:
    """One training run: ``label`` (teacher, baseline or a method), ``seed`` and its command,
    run from ``cwd`` (the repository root, where ``tools/train_net.py`` is and from where the
    configs' relative paths resolve).

    ``depends_on`` names a file (the teacher's weights) whose content is part of the run's
    identity for ``--reuse``: a retrained teacher invalidates its students.
    """

    label: str
    seed: int
    config_file: str
    output_dir: str
    opts: List[str] = field(default_factory=list)
    depends_on: str = ""
    cwd: str = "."

    @property
    def name(self) -> str:
        return f"{self.label} seed {self.seed}"

    def command(self) -> List[str]:
        cmd = [sys.executable, os.path.join(self.cwd, "tools", "train_net.py")]
        return cmd + ["--config-file", self.config_file, "OUTPUT_DIR", self.output_dir, *self.opts]


@dataclass(frozen=True)
class Variant:
    """A method trained with extra opts, reported as its own row ``label`` beside the plain
    method (e.g. CSGR with ``MODEL.DISTILL.LOSS_SCALE.MODE calibrated``)."""

    label: str
    method: str
    opts: Tuple[str, ...] = ()


def parse_variant(words: List[str]) -> Variant:
    """``["LABEL=METHOD", KEY, VALUE, ...]`` (the words of one ``--variant``) as a Variant.

    Raises:
        ValueError: no ``=``, an empty label, an unknown method or an odd number of opt words.
    """
    head, opts = words[0], tuple(words[1:])
    label, sep, method = head.partition("=")
    if not sep or not label or not method:
        raise ValueError(f"--variant {head!r}: expected LABEL=METHOD, e.g. CSGR-p3p6=CSGR")
    if label.lower() in ("baseline", "teacher"):
        raise ValueError(f"--variant {head!r}: the label {label!r} is reserved")
    try:
        get_method(method)
    except KeyError as e:  # names the registered methods
        raise ValueError(f"--variant {head!r}: {e.args[0]}") from None
    if len(opts) % 2:
        raise ValueError(f"--variant {head!r}: opts must be KEY VALUE pairs, got {list(opts)}")
    return Variant(label, method, opts)


def schedule_opts(iters: Optional[int]) -> List[str]:
    """Opts for ``iters`` iterations with LR steps at 2/3 and 8/9 (none: the config's); steps
    that would fall outside (0, iters) or coincide, as in a tiny test schedule, are dropped."""
    if iters is None:
        return []
    steps = sorted({s for s in (iters * 2 // 3, iters * 8 // 9) if 0 < s < iters})
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", repr(tuple(steps))]


def plan_runs(
    detector: str,
    methods: List[str],
    seeds: List[int],
    output: str,
    root: str,
    iters: Optional[int] = None,
    teacher_iters: Optional[int] = None,
    teacher_seed: int = 1,
    teacher_weights: str = "",
    extra_opts: Tuple[str, ...] = (),
    variants: Tuple[Variant, ...] = (),
    suite: str = "shapes",
) -> Tuple[Optional[Run], List[Run], Dict[str, str]]:
    """The runs of an experiment.

    Args:
        detector: a detector key of the suite (``frcnn`` or ``retinanet``).
        methods: registered method names; those that do not apply to the detector type
            (``DistillMethod.APPLIES_TO``) or have no config in the suite are skipped.
        seeds: ``SEED`` of the students; each seed trains the baseline and every method.
        output: root folder; runs go to ``output/<detector>/<label>/seed<k>``.
        root: the repository root (``configs/``, ``tools/train_net.py``).
        iters / teacher_iters: schedule lengths (None: the configs').
        teacher_seed: the teacher's ``SEED``.
        teacher_weights: an already trained teacher to use (then no teacher run is planned).
        extra_opts: ``KEY VALUE`` opts given to every run (teacher included).
        variants: more students, each a method with its own opts (after ``extra_opts``),
            trained per seed like the methods and stored under their label.
        suite: a key of :data:`SUITES`.

    Returns:
        (teacher run or None, student runs, {skipped method: why}).
    """
    spec = SUITES[suite][detector]
    out = os.path.join(os.path.abspath(output), detector)
    root = os.path.abspath(root)
    extra = list(extra_opts)

    teacher = None
    if not teacher_weights:
        teacher_dir = os.path.join(out, "teacher", f"seed{teacher_seed}")
        teacher_opts = schedule_opts(teacher_iters) + ["SEED", str(teacher_seed)] + extra
        teacher = Run(
            "teacher",
            teacher_seed,
            spec.config_file(root, spec.teacher),
            teacher_dir,
            teacher_opts,
            cwd=root,
        )
        teacher_weights = os.path.join(teacher_dir, "model_final.pth")
    students, skipped = [], {}
    labels = [("baseline", spec.config_file(root, spec.baseline), ())]
    rows = [(m, m, ()) for m in methods] + [(v.label, v.method, v.opts) for v in variants]
    if len({label.lower() for label, _, _ in rows}) < len(rows):
        raise ValueError(f"two students share a label: {[label for label, _, _ in rows]}")
    for label, method, variant_opts in rows:
        method_config, why = spec.method_config(root, method)
        if method_config is None:
            skipped[label] = why
        else:
            labels.append((label, method_config, variant_opts))
    for seed in seeds:
        for label, config_file, variant_opts in labels:
            opts = schedule_opts(iters) + ["SEED", str(seed)]
            if label != "baseline":
                opts += ["MODEL.DISTILL.TEACHER.WEIGHTS", teacher_weights]
            run_dir = os.path.join(out, label.lower(), f"seed{seed}")
            depends = teacher_weights if label != "baseline" else ""
            opts += extra + list(variant_opts)
            students.append(Run(label, seed, config_file, run_dir, opts, depends, cwd=root))
    return teacher, students, skipped
