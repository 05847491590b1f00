"""Releasing a distilled student and inspecting runs: student export (model-zoo style files),
the model-zoo table, and the teacher sanity check."""

from .export import file_sha256, find_checkpoint, release_student, student_state_dict
from .model_zoo import model_zoo_table, read_run, replace_section
from .student_config import check_vanilla_cfg, student_cfg
from .teacher_check import check_teacher, evaluate_teacher

__all__ = [
    "check_teacher",
    "check_vanilla_cfg",
    "evaluate_teacher",
    "file_sha256",
    "find_checkpoint",
    "model_zoo_table",
    "read_run",
    "release_student",
    "replace_section",
    "student_cfg",
    "student_state_dict",
]
