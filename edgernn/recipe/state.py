"""What makes a recipe run resumable: ``stages.json``, the record of finished stages.

``stages.json`` records each finished stage with a key (a hash of its settings and inputs) and
the sha256 of every artifact it wrote. It is rewritten atomically, and only after the stage's
artifacts are in place, so an interrupted run never records a stage that did not finish.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgernn.atomic import atomic_path

STATE_FILE = "stages.json"
SCHEMA = "edgernn.stages/1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stage_key(*parts: object) -> str:
    """A stable hash of a stage's settings and its inputs' hashes."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_state(outdir: Path) -> dict:
    """The recorded stages by name; empty when there is no (readable) state file."""
    try:
        state = json.loads((outdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        return {}
    return dict(state.get("stages", {}))


def is_done(record: dict | None, key: str, outdir: Path) -> bool:
    """Whether ``record`` is for this ``key`` and every artifact still has its recorded hash."""
    if not record or record.get("key") != key or not record.get("artifacts"):
        return False
    for name, digest in record["artifacts"].items():
        path = outdir / name
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def record_stage(outdir: Path, stages: dict, name: str, key: str, artifacts: list[Path]) -> dict:
    """Add stage ``name`` with its artifacts' hashes to ``stages`` and write the state file."""
    hashes = {str(path.relative_to(outdir)): sha256_file(path) for path in artifacts}
    stages = {**stages, name: {"key": key, "artifacts": hashes}}
    _write_json(outdir / STATE_FILE, {"schema": SCHEMA, "stages": stages})
    return stages


def _write_json(path: Path, payload: dict) -> None:
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(payload, indent=2, sort_keys=True))
