"""Reports (schema ``edgernn.report/1``): rows, schema check, Markdown, HTML and plots.

One report for every command: ``compress`` fills stage rows (``rows``), ``bench`` measured
rows; both are written by ``schema.write_report`` as report.json, report.md and report.html.
"""

from edgernn.report.rows import ModelRow, build_report
from edgernn.report.schema import SCHEMA, latency_at, schema_problems, write_report

__all__ = ["SCHEMA", "ModelRow", "build_report", "latency_at", "schema_problems", "write_report"]
