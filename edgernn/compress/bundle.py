"""Publish a compress result as a bundle, and the summary ``--json`` prints of it.

``edgernn compress`` and a recipe's bundle stage both call ``publish_bundle`` (the stage
files, or the whole device bundle, built aside and swapped in) and ``bundle_summary``, so the
two commands write the same bundle and report the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgernn.bundle.staging import set_aside, staged_folder, swap_in_folder
from edgernn.compress.config import BundleReportConfig
from edgernn.compress.finish import finish_bundle
from edgernn.compress.stages import Compressed, write_compressed


def publish_bundle(
    result: Compressed,
    folder: str | Path,
    teacher_file: str | Path,
    data: str | None = None,
    report: BundleReportConfig | None = None,
    export: bool = True,
    black_box=None,
) -> list[str]:
    """Write ``result`` into ``folder``, built in a staging folder and swapped in whole.

    The caller holds ``edgernn.lock.folder_lock`` on ``folder``.

    Args:
        result: from ``compress``.
        folder: the bundle directory; created if missing.
        teacher_file: the teacher checkpoint (its report row; the timed reference).
        data: DATA for scoring the graphs; default: the data the teacher records.
        report: the latency grid of the bundle report.
        export: False stops at ``student.pt`` and the stage report (no ONNX, no timing).
        black_box: a black-box teacher to time in this process (``finish_bundle``).

    Returns:
        The names of the files written into ``folder``, sorted.

    Example::

        with folder_lock("runs/bundle"):
            names = publish_bundle(compress(teacher), "runs/bundle", "runs/teacher.pt")
    """
    with staged_folder(folder) as staging:
        if export:
            finish_bundle(result, staging, teacher_file, data, report, black_box)
        else:
            write_compressed(result, staging, str(teacher_file))
        names = sorted(path.name for path in staging.iterdir() if path.is_file())
        c_target = set_aside(staging / "c", Path(folder))  # publish swaps files only
    # The C target follows the bundle: this compress's, or none (an older one would mislead).
    swap_in_folder(c_target, Path(folder) / "c")
    return names


def bundle_summary(result: Compressed, folder: str | Path, names: list[str]) -> dict:
    """What ``compress --json`` and ``run --json`` end with: where, what, and how much smaller.

    ``ratios`` divide the final (last kept) model by the teacher; ``size_bytes`` is the
    ratio's name (the report field it divides), ``size`` the same number under its older name;
    the latency ones come from the bundle's report.

    Returns:
        ``{"bundle", "report", "files", "metrics", "teacher_metrics", "ratios"}``.
    """
    folder = Path(folder)
    teacher, final = result.rows[0], [row for row in result.rows if row.kept][-1]
    size = final.size_bytes / teacher.size_bytes
    return {
        "bundle": str(folder),
        "report": str(folder / "report.md"),
        "files": {name: str(folder / name) for name in names},
        "metrics": final.metrics,
        "teacher_metrics": teacher.metrics,
        "ratios": {
            "params": final.params / teacher.params,
            "nonzero_params": final.nonzero_params / teacher.nonzero_params,
            "size_bytes": size,
            "size": size,
        }
        | _latency_ratios(folder),
    }


def _latency_ratios(folder: Path) -> dict:
    """The bundle report's latency ratios (``edgernn.report.compare.report_ratios``).

    seq2seq and lm: the bundle's whole translation or generation per input against the
    teacher's, never one graph call; ``timed_as`` says which. Empty when nothing was timed.
    """
    report = folder / "report.json"
    if not report.is_file():
        return {}
    ratios = json.loads(report.read_text()).get("ratios") or {}
    keys = ("p50_ms", "tokens_per_s", "first_token_ms", "timed_as")
    return {key: ratios[key] for key in keys if ratios.get(key) is not None}
