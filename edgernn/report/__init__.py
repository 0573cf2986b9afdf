"""Reports (schema ``edgernn.report/1``): rows, schema check, Markdown, HTML and plots.

One report for every command: ``compress`` fills stage rows (``rows``), ``bench`` measured
rows; both are written by ``schema.write_report`` as report.json, report.md and report.html.
Seq2seq and LM reports compare end-to-end job rows (``compare``), not one graph call.
Each row may record where its bytes are (``size_parts``: ``edgernn.models.size.size_by_part``
for PyTorch, ``onnx_parts.onnx_size_by_part`` for ONNX graphs).
"""

from edgernn.report.compare import report_ratios
from edgernn.report.rows import ModelRow, build_report
from edgernn.report.schema import SCHEMA, latency_at, schema_problems, write_report

__all__ = [
    "SCHEMA",
    "ModelRow",
    "build_report",
    "latency_at",
    "report_ratios",
    "schema_problems",
    "write_report",
]
