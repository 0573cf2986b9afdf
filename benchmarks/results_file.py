"""The committed results of a benchmark: a machine line, then ``OUT.json`` and ``OUT.md``.

Scripts in this folder import it by name (``python benchmarks/NAME.py`` puts the folder on
``sys.path``).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgernn.report.environment import environment


def machine_line(*details: str) -> str:
    """``CPU (N cores, shared), torch V, DETAILS..., git SHA``: where the numbers come from."""
    env = environment()
    head = f"{env['cpu']} ({env['cores']} cores, shared), torch {env['versions']['torch']}"
    return ", ".join([head, *details, f"git {env['git_sha']}"])


def write_results(out: Path, payload: dict, markdown: str) -> None:
    """``OUT.json`` (the payload, machine line included) and ``OUT.md`` (``Machine: ...``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    out.with_suffix(".md").write_text(f"Machine: {payload['machine']}\n\n{markdown}")
