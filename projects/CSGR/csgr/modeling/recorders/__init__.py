"""Recorders: what the student computes during its own training forward (hooks), and what the
frozen teacher computes for the losses. Together they fill the ``DistillBatch``."""

from .student import StudentRecorder
from .teacher import TeacherRecorder, check_head_requirements

__all__ = ["StudentRecorder", "TeacherRecorder", "check_head_requirements"]
