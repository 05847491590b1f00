"""What a side-by-side study compares: a teacher, a baseline student and one distilled student per
method, as config files and opts. :func:`.accuracy_runs.plan_study` turns a spec into runs.

Two kinds of study share the planner and the runner:

* :class:`SuiteStudy`: a built-in suite (``accuracy_runs.SUITES``), whose configs live in
  ``configs/<folder>/``: one YAML per method, each differing from the suite's CSGR config only
  in ``MODEL.DISTILL.METHODS``;
* :class:`UserStudy`: a user's own teacher and student configs (their datasets registered by
  ``--register`` modules); the distillation configs are derived from the student config with
  opts (``META_ARCHITECTURE: Distiller``, the student's meta-architecture, the method, the
  teacher's config), so the user writes none.
"""

import os
from dataclasses import dataclass
from typing import Optional, Tuple

from ..config import detector_meta_arch, load_config
from ..modeling.losses import get_method, method_names

__all__ = ["StudySpec", "SuiteStudy", "UserStudy", "applicable_methods", "not_applicable"]

MethodConfig = Tuple[Optional[str], Tuple[str, ...], str]


def not_applicable(method: str, arch: str) -> str:
    """Why ``method`` does not apply to a student of meta-architecture ``arch`` ("" if it does;
    ``DistillMethod.APPLIES_TO``)."""
    method_cls = get_method(method)
    if method_cls.applies_to(arch):
        return ""
    return f"{method_cls.NOT_APPLICABLE_REASON}: {'/'.join(method_cls.APPLIES_TO)} only"


def applicable_methods(arch: str):
    """The registered methods that apply to a student of meta-architecture ``arch``, in table
    order."""
    return [m for m in method_names() if not not_applicable(m, arch)]


class StudySpec:
    """The configs of a study.

    Attributes:
        arch: the student's meta-architecture (``GeneralizedRCNN`` or ``RetinaNet``).
        register: modules (``--register``) every run imports first, e.g. the user's datasets.
        cwd: the folder the runs start in (relative paths of the configs resolve from it).
    """

    arch: str
    register: Tuple[str, ...] = ()
    cwd: str = "."

    def teacher_config(self) -> str:
        """The teacher's config file."""
        raise NotImplementedError

    def baseline_config(self) -> Tuple[str, Tuple[str, ...]]:
        """(config file, opts) of the student trained alone."""
        raise NotImplementedError

    def method_config(self, method: str) -> MethodConfig:
        """(config file, opts, "") of the student distilled with ``method``, or
        (None, (), why) for a method this study cannot run (e.g. not for this detector)."""
        raise NotImplementedError

    def names(self) -> Tuple[str, str]:
        """Short names of (the student, the teacher) for titles."""
        raise NotImplementedError


@dataclass(frozen=True)
class SuiteStudy(StudySpec):
    """A detector of a built-in suite (``detector``: an ``accuracy_runs.SuiteDetector``) in the
    repository ``root``."""

    detector: object
    root: str

    @property
    def arch(self) -> str:
        return self.detector.arch

    @property
    def cwd(self) -> str:
        return self.root

    def teacher_config(self) -> str:
        return self.detector.config_file(self.root, self.detector.teacher)

    def baseline_config(self) -> Tuple[str, Tuple[str, ...]]:
        return self.detector.config_file(self.root, self.detector.baseline), ()

    def method_config(self, method: str) -> MethodConfig:
        path, why = self.detector.method_config(self.root, method)
        return path, (), why

    def names(self) -> Tuple[str, str]:
        return self.detector.baseline, self.detector.teacher


@dataclass(frozen=True)
class UserStudy(StudySpec):
    """A user's own teacher and student configs.

    The student config is a plain detector config (or a distillation config: its student is
    used); each method's config is the student config plus::

        MODEL.META_ARCHITECTURE Distiller
        MODEL.DISTILL.STUDENT_META_ARCHITECTURE <the student's meta-architecture>
        MODEL.DISTILL.METHODS "['<METHOD>']"
        MODEL.DISTILL.TEACHER.CONFIG_FILE <the teacher config, absolute>

    and the runs add ``MODEL.DISTILL.TEACHER.WEIGHTS``. Paths are made absolute, so the runs
    may start in any folder (``cwd``, the user's).
    """

    teacher_file: str
    student_file: str
    register: Tuple[str, ...] = ()
    cwd: str = "."

    def __post_init__(self):
        for name in ("teacher_file", "student_file", "cwd"):
            object.__setattr__(self, name, os.path.abspath(getattr(self, name)))
        register = tuple(os.path.abspath(r) if r.endswith(".py") else r for r in self.register)
        object.__setattr__(self, "register", register)

    @property
    def arch(self) -> str:
        return detector_meta_arch(load_config(self.student_file))

    def _is_distiller(self) -> bool:
        return load_config(self.student_file).MODEL.META_ARCHITECTURE == "Distiller"

    def teacher_config(self) -> str:
        return self.teacher_file

    def baseline_config(self) -> Tuple[str, Tuple[str, ...]]:
        opts = ("MODEL.META_ARCHITECTURE", self.arch) if self._is_distiller() else ()
        return self.student_file, opts

    def method_config(self, method: str) -> MethodConfig:
        why = not_applicable(method, self.arch)
        if why:
            return None, (), why
        opts = ("MODEL.META_ARCHITECTURE", "Distiller")
        opts += ("MODEL.DISTILL.STUDENT_META_ARCHITECTURE", self.arch)
        opts += ("MODEL.DISTILL.METHODS", repr([method]))
        opts += ("MODEL.DISTILL.TEACHER.CONFIG_FILE", self.teacher_file)
        return self.student_file, opts, ""

    def names(self) -> Tuple[str, str]:
        stem = lambda path: os.path.splitext(os.path.basename(path))[0]  # noqa: E731
        return stem(self.student_file), stem(self.teacher_file)
