"""Planning the training runs of the offline experiments, for ``make main`` (tools/run_main.py, a
preset: the teacher, the baseline and the CSGR student of one seed) and the accuracy benchmark
(tools/benchmark_accuracy.py: every method over several seeds, on a built-in suite or on a
user's own configs); :mod:`.runner` runs them.

Every run is ``tools/train_net.py`` in a fresh process, as a user would run it, on the configs of
one study (:mod:`.study_specs`: a suite of :data:`SUITES`, the shapes from scratch, the shapes or
the coral photographs with ImageNet-initialised backbones, or a user's teacher and student
configs): the teacher once, then per seed the baseline student and one student per method, all
students on the same schedule (``SOLVER.MAX_ITER``/``STEPS``), augmentation and ``SEED``. Only
``MODEL.DISTILL`` differs between students. Runs go to ``<output>/<label>/seed<k>``
(``<output>/<detector>/...`` for a suite) whichever tool plans them, so a teacher (or a student)
trained by one is reused by the other.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..modeling.losses import get_method
from .study_specs import StudySpec, SuiteStudy, not_applicable

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
    "plan_study",
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
        why = not_applicable(method, self.arch)
        if why:
            return None, why
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
    run from ``cwd`` (where the configs' relative paths resolve: the repository root for a
    suite, the user's folder for their own configs).

    ``depends_on`` names a file (the teacher's weights) whose content is part of the run's
    identity for ``--reuse``: a retrained teacher invalidates its students. ``register`` are the
    modules the run imports first (``--register``: the user's datasets), ``num_gpus`` its
    ``--num-gpus`` and ``root`` the repository root (``tools/train_net.py``; default ``cwd``).
    """

    label: str
    seed: int
    config_file: str
    output_dir: str
    opts: List[str] = field(default_factory=list)
    depends_on: str = ""
    cwd: str = "."
    register: Tuple[str, ...] = ()
    num_gpus: int = 1
    root: str = ""

    @property
    def name(self) -> str:
        return f"{self.label} seed {self.seed}"

    def command(self) -> List[str]:
        cmd = [sys.executable, os.path.join(self.root or self.cwd, "tools", "train_net.py")]
        for module in self.register:
            cmd += ["--register", module]
        if self.num_gpus > 1:
            cmd += ["--num-gpus", str(self.num_gpus)]
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
    suite: str = "shapes",
    **kwargs,
) -> Tuple[Optional[Run], List[Run], Dict[str, str]]:
    """The runs of a built-in suite's detector: :func:`plan_study` of its :class:`SuiteStudy`
    into ``output/<detector>`` (``root``: the repository root; ``kwargs``: the keyword arguments
    of :func:`plan_study`, e.g. ``iters``, ``extra_opts``, ``variants``)."""
    spec = SuiteStudy(SUITES[suite][detector], os.path.abspath(root))
    out = os.path.join(os.path.abspath(output), detector)
    return plan_study(spec, methods, seeds, out, root, **kwargs)


def plan_study(
    spec: StudySpec,
    methods: List[str],
    seeds: List[int],
    out: str,
    root: str,
    iters: Optional[int] = None,
    teacher_iters: Optional[int] = None,
    teacher_seed: int = 1,
    teacher_weights: str = "",
    extra_opts: Tuple[str, ...] = (),
    variants: Tuple[Variant, ...] = (),
    num_gpus: int = 1,
) -> Tuple[Optional[Run], List[Run], Dict[str, str]]:
    """The runs of a study: the teacher, then per seed the baseline and one student per method.

    Args:
        spec: the configs (:class:`SuiteStudy` or :class:`.study_specs.UserStudy`).
        methods: registered method names; those the spec cannot run (not for the student's
            detector type, or no config in the suite) are skipped.
        seeds: ``SEED`` of the students; each seed trains the baseline and every method.
        out: the study's folder; runs go to ``out/<label>/seed<k>``.
        root: the repository root (``tools/train_net.py``).
        iters / teacher_iters: schedule lengths (None: the configs').
        teacher_seed: the teacher's ``SEED``.
        teacher_weights: an already trained teacher to use (then no teacher run is planned).
        extra_opts: ``KEY VALUE`` opts given to every run (teacher included).
        variants: more students, each a method with its own opts (after ``extra_opts``),
            reported under their own label (``out/<label lower-cased>/seed<k>``).
        num_gpus: ``--num-gpus`` of every run.

    Returns:
        (the teacher run or None, the student runs in order, {skipped label: why}).

    Raises:
        ValueError: two students share a label (case-insensitively: they would share a folder).
    """
    out, root = os.path.abspath(out), os.path.abspath(root)
    extra = list(extra_opts)
    common = dict(cwd=spec.cwd, register=tuple(spec.register), num_gpus=num_gpus, root=root)
    teacher = None
    if not teacher_weights:
        teacher_dir = os.path.join(out, "teacher", f"seed{teacher_seed}")
        teacher_opts = schedule_opts(teacher_iters) + ["SEED", str(teacher_seed)] + extra
        config = spec.teacher_config()
        teacher = Run("teacher", teacher_seed, config, teacher_dir, teacher_opts, **common)
        teacher_weights = os.path.join(teacher_dir, "model_final.pth")
    students, skipped = [], {}
    labels = [("baseline", *spec.baseline_config())]
    rows = [(m, m, ()) for m in methods] + [(v.label, v.method, v.opts) for v in variants]
    if len({label.lower() for label, _, _ in rows}) < len(rows):
        raise ValueError(f"two students share a label: {[label for label, _, _ in rows]}")
    for label, method, variant_opts in rows:
        method_config, method_opts, why = spec.method_config(method)
        if method_config is None:
            skipped[label] = why
        else:
            labels.append((label, method_config, tuple(method_opts) + tuple(variant_opts)))
    for seed in seeds:
        for label, config_file, own_opts in labels:
            opts = schedule_opts(iters) + ["SEED", str(seed)]
            if label != "baseline":
                opts += ["MODEL.DISTILL.TEACHER.WEIGHTS", teacher_weights]
            run_dir = os.path.join(out, label.lower(), f"seed{seed}")
            # the digest reads the file the run loads: a relative path from the run's folder
            depends = os.path.join(spec.cwd, teacher_weights) if label != "baseline" else ""
            opts += extra + list(own_opts)
            students.append(Run(label, seed, config_file, run_dir, opts, depends, **common))
    return teacher, students, skipped
