"""Distillation: size a student from the teacher, then train it on the teacher's outputs.

``config`` holds the choices, ``student`` sizes the student within a parameter budget,
``loss`` the objectives, ``stage`` the ``distill`` stage itself.

Example::

    from edgernn.distill import DistillConfig, StudentConfig, distill

    student = distill(teacher, data, StudentConfig(), DistillConfig())
"""

from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.distill.stage import distill, sequence_kd_data
from edgernn.distill.student import count_params, student_spec

__all__ = [
    "DistillConfig",
    "StudentConfig",
    "count_params",
    "distill",
    "sequence_kd_data",
    "student_spec",
]
