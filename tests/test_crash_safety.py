"""Real processes killed mid-write: SIGKILL and SIGINT on `edgernn run` and `edgernn compress`.

What must hold: a killed run resumes without redoing finished stages and ends with the same
metrics; a killed compress leaves the previous bundle byte for byte; nothing half-written
looks like a bundle; a live writer keeps a second one out, a dead one does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgernn.bundle.staging import STAGING_PREFIX
from edgernn.checkpoint import save_checkpoint
from edgernn.config import TrainConfig
from edgernn.lock import LOCK_FILE, folder_lock
from edgernn.recipe.state import load_state
from edgernn.runtime import Runtime
from edgernn.train import train

# Real processes, started and killed: minutes, not seconds.
pytestmark = pytest.mark.slow

RECIPE = """
[data]
source = "{data}"
task = "regress"
[teacher]
cell = "gru"
hidden = 8
epochs = 2
[compress]
epochs = 30
[bench]
batch_sizes = [1]
seq_lens = [8]
min_time_s = 0
"""
COMPRESS = ["--student-hidden", "6", "--quiet", "--tolerance", "inf", "--json"]
# The same arithmetic in every process, so a resumed run can be compared number for number.
ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _edgernn(*args) -> list[str]:
    return [sys.executable, "-c", "from edgernn.cli import main; main()", *map(str, args)]


def _finish(*args) -> subprocess.CompletedProcess:
    return subprocess.run(_edgernn(*args), env=ENV, capture_output=True, text=True, timeout=300)


def _kill_when(args: list, ready, sig: int = signal.SIGKILL) -> subprocess.Popen:
    """Start edgernn, wait until ``ready()`` holds, then send ``sig`` while it is still working."""
    process = subprocess.Popen(
        _edgernn(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not ready():
        assert process.poll() is None, f"finished before the kill: {process.communicate()}"
        assert time.monotonic() < deadline, "never reached the point to interrupt"
        time.sleep(0.01)
    process.send_signal(sig)
    process.wait(timeout=60)
    return process


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def _snapshot(folder: Path) -> dict[str, str]:
    """Every visible file's hash (a SIGKILLed writer leaves its unlocked run.lock behind)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != LOCK_FILE
    }


def _new_student(folder: Path, old: bytes):
    """Ready once a new student.pt exists anywhere below ``folder``: the export is under way."""
    return lambda: any(path.read_bytes() != old for path in folder.rglob("student.pt"))


@pytest.fixture
def recipe(regress_npz, tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(RECIPE.format(data=regress_npz))
    return path


@pytest.fixture
def teacher(regress_npz, tmp_path) -> Path:
    config = TrainConfig(epochs=2, batch_size=16, progress=False)
    checkpoint = train(str(regress_npz), "regress", config, cell="gru", hidden=12, embed=8)
    return save_checkpoint(checkpoint, tmp_path / "teacher.pt")


def test_a_sigkilled_run_resumes_and_ends_with_the_same_metrics(recipe, tmp_path):
    reference = _finish("run", recipe, "-o", tmp_path / "reference", "--quiet", "--json")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    killed = _kill_when(["run", recipe, "-o", out, "--quiet"], lambda: "teacher" in load_state(out))
    assert killed.returncode == -signal.SIGKILL
    assert set(load_state(out)) == {"teacher"}
    assert not (out / "manifest.json").exists()  # no bundle before the bundle stage ends
    teacher = (out / "teacher.pt").read_bytes()

    resumed = _finish("run", recipe, "-o", out, "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert "teacher: done, skipped" in resumed.stdout
    assert (out / "teacher.pt").read_bytes() == teacher
    assert _last_json(resumed.stdout)["metrics"] == _last_json(reference.stdout)["metrics"]
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK_FILE).exists()


def test_a_killed_compress_leaves_the_previous_bundle_intact(teacher, tmp_path):
    out = tmp_path / "bundle"
    first = _finish("compress", teacher, *COMPRESS, "--epochs", "1", "-o", out)
    assert first.returncode == 0, first.stderr
    before = _snapshot(out)
    # Killed while the new bundle is being exported, after its student.pt is written.
    args = ["compress", teacher, *COMPRESS, "--epochs", "2", "--prune", "0.5", "-o", out]
    for sig in (signal.SIGINT, signal.SIGKILL):
        killed = _kill_when(args, _new_student(out, (out / "student.pt").read_bytes()), sig)
        assert killed.returncode != 0
        assert _snapshot(out) == before
        Runtime(out)  # verifies every hash: still the complete previous bundle
        if sig == signal.SIGINT:  # Ctrl-C: one line, and the half-built bundle is cleaned away
            assert "Traceback" not in killed.stderr
            assert not list(out.glob(f"{STAGING_PREFIX}*"))

    again = _finish(*args)  # and clears what the SIGKILLed run left in its staging folder
    assert again.returncode == 0, again.stderr
    assert _snapshot(out) != before and not list(out.glob(f"{STAGING_PREFIX}*"))
    Runtime(out)


def test_a_live_writer_keeps_a_second_command_out(teacher, tmp_path):
    out = tmp_path / "bundle"
    with folder_lock(out):
        refused = _finish("compress", teacher, *COMPRESS, "--epochs", "1", "-o", out)
    assert refused.returncode == 1
    assert "another edgernn command" in refused.stderr and "Traceback" not in refused.stderr
    assert not (out / "student.pt").exists()


def test_a_sigkilled_lock_holder_does_not_block_the_next_command(tmp_path):
    out = tmp_path / "out"
    hold = "import sys, time; from edgernn.lock import folder_lock\n"
    hold += "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    with pytest.raises(Exception, match="another edgernn command"), folder_lock(out):
        pass
    holder.kill()
    holder.wait()
    assert (out / LOCK_FILE).exists()  # the file stays; the kernel dropped the lock
    with folder_lock(out):
        pass
