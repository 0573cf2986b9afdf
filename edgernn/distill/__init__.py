"""Distillation: size a student from the teacher, then train it on the teacher's outputs.

``config`` holds the choices, ``student`` sizes the student within a parameter budget,
``loss`` the objectives, ``stage`` the ``distill`` stage itself. Exports resolve lazily:
``config`` is torch-free, so the command line reads its defaults without importing torch.

Example::

    from edgernn.distill import DistillConfig, StudentConfig, distill

    student = distill(teacher, data, StudentConfig(), DistillConfig())
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "DistillConfig": "edgernn.distill.config",
    "StudentConfig": "edgernn.distill.config",
    "StudentVocab": "edgernn.distill.vocab",
    "count_params": "edgernn.distill.student",
    "distill": "edgernn.distill.stage",
    "sequence_kd_data": "edgernn.distill.stage",
    "student_spec": "edgernn.distill.student",
    "student_vocab": "edgernn.distill.vocab",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
