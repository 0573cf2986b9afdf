"""Run one worker request in a fresh Python process and return its JSON result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from edgernn.errors import EdgeRNNError

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding edgernn/


def run_worker(
    request: dict, label: str, on_progress: Callable[[int, int], None] | None = None
) -> dict:
    """Start ``python -m edgernn.bench.worker``, send ``request``, wait for its result.

    Args:
        request: what to measure (see ``edgernn.bench.worker.measure``).
        label: the candidate's name, for error messages.
        on_progress: called with ``(done, total)`` as grid points finish.

    Returns:
        The worker's result dict.

    Raises:
        EdgeRNNError: the worker reported an error or died without a result.
    """
    env = dict(os.environ)
    # The worker must import this very edgernn, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "edgernn.bench.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    tail: deque[str] = deque(maxlen=30)
    reader = threading.Thread(target=_read_stderr, args=(process.stderr, tail, on_progress))
    reader.start()
    process.stdin.write(json.dumps(request))
    process.stdin.close()
    stdout = process.stdout.read()
    code = process.wait()
    reader.join()
    return _parse(stdout, code, tail, label)


def _read_stderr(stream: IO[str], tail: deque, on_progress) -> None:
    for line in stream:
        if line.startswith("@progress "):
            if on_progress is not None:
                done, total = line.split()[1:3]
                on_progress(int(done), int(total))
        else:
            tail.append(line.rstrip("\n"))


def _parse(stdout: str, code: int, tail: deque, label: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        last = tail[-1] if tail else "no output"
        raise EdgeRNNError(f"{label}: the measuring process died (exit code {code}): {last}")
    if "error" in result:
        raise EdgeRNNError(f"{label}: {result['error']}")
    return result
