"""Outputs that would destroy data: an output that is an input, and a bundle swap cut short.

Every command refuses, before any work, an output that is (through a symbolic or hard link)
one of its inputs, lies inside an input folder or, for folder outputs, holds an input. A bundle
swap killed at any rename or unlink leaves a folder that loads as the old or the new bundle,
and the next writer finishes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from export_cases import bundle

from edgernn.bundle.manifest import MANIFEST, PREVIOUS_PREFIX, read_file, read_manifest
from edgernn.bundle.staging import STAGING_PREFIX, publish, recover
from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.paths import check_output_not_input, data_path
from edgernn.runtime import Runtime

# --- an output that is an input ---------------------------------------------------------


def _refused(args: list, fragment: str) -> None:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment in lines[0], lines[0]


def test_train_refuses_its_data_as_output(classify_csv):
    before = classify_csv.read_bytes()
    args = ["train", "--task", "classify", "--data", classify_csv, "--epochs", "1"]
    _refused([*args, "-o", classify_csv], "is the input --data")
    assert classify_csv.read_bytes() == before


@pytest.mark.parametrize("link", [os.symlink, os.link], ids=["symlink", "hardlink"])
def test_train_refuses_a_link_to_its_data(classify_csv, tmp_path, link):
    out = tmp_path / "model.pt"
    link(classify_csv, out)
    args = ["train", "--task", "classify", "--data", classify_csv, "-o", out]
    _refused(args, "is the input --data")
    assert out.read_bytes() == classify_csv.read_bytes()


def test_train_refuses_an_output_inside_its_data_folder(classify_csv, tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    shutil.copy(classify_csv, splits / "train.csv")
    args = ["train", "--task", "classify", "--data", splits, "-o", splits / "train.csv"]
    _refused(args, "is inside the input folder --data")


def test_folder_commands_refuse_a_folder_holding_an_input(tmp_path, classify_csv):
    models, data = tmp_path / "models", tmp_path / "data"
    models.mkdir(), data.mkdir()
    model = models / "teacher.pt"
    model.write_bytes(b"not loaded")  # the refusal comes before anything is loaded
    example = data / "inputs.npz"
    example.write_bytes(b"")
    csv = Path(shutil.copy(classify_csv, data / "reviews.csv"))
    _refused(["compress", model, "-o", models], "holds the input MODEL")
    _refused(["compress", model, "-o", tmp_path], "holds the input MODEL")
    _refused(["export", model, "-o", models], "holds the input CHECKPOINT")
    _refused(["bench", model, "-o", models], "holds the input MODEL")
    _refused(["compress", model, "--data", csv, "-o", data], "holds the input --data")
    _refused(["export", model, "--data", data, "-o", data], "is the input --data")
    _refused(["export", model, "--example", example, "-o", data], "holds the input --example")
    _refused(["bench", model, "--data", csv, "-o", data], "holds the input --data")
    assert sorted(path.name for path in models.iterdir()) == ["teacher.pt"]
    assert sorted(path.name for path in data.iterdir()) == ["inputs.npz", "reviews.csv"]


def test_bench_refuses_writing_into_the_bundle_it_reads(tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(bundle("classify", "lstm", False, exporter="torchscript")[0], folder)
    _refused(["bench", folder, "-o", folder], "is the input MODEL")
    _refused(["bench", folder, "-o", folder / "report"], "is inside the input folder MODEL")


RECIPE = '[data]\nsource = "{data}"\ntask = "classify"\n[teacher]\nhidden = 8\nepochs = 1\n'


def test_run_refuses_an_output_holding_its_recipe_or_data(tmp_path, classify_csv):
    data = tmp_path / "data"
    data.mkdir()
    csv = shutil.copy(classify_csv, data / "reviews.csv")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE.format(data=csv))
    _refused(["run", recipe, "-o", tmp_path], "holds the input RECIPE")
    _refused(["run", recipe, "-o", data], "holds the input [data] source")


def test_helper_allows_siblings_and_builtin_data(tmp_path, classify_csv):
    check_output_not_input(tmp_path / "out", [("--data", classify_csv)], folder=True)
    check_output_not_input(tmp_path / "m.pt", [("--data", classify_csv), ("--x", None)])
    assert data_path("builtin:sentiment") is None
    with pytest.raises(EdgeRNNError, match="is the input --data"):
        check_output_not_input(tmp_path / "." / "reviews.csv", [("--data", classify_csv)])


# --- a bundle swap cut short ------------------------------------------------------------


class Crash(BaseException):
    """Stands for kill -9: no except clause catches it."""


# Every call that changes a directory entry, wherever the swap makes it (rmtree too).
MUTATIONS = ("replace", "rename", "unlink", "link", "mkdir", "rmdir")
USER_FILE = "keep.txt"  # something else in the folder (teacher.pt, stages.json) must survive


def _uni():
    return bundle("classify", "lstm", False, exporter="torchscript")[0]  # model + step graphs


def _bi():
    return bundle("classify", "gru", True, exporter="torchscript")[0]  # no step graphs


def _fill(target: Path, source: Path | None, tag: str) -> set[str]:
    """Copy bundle ``source`` plus a student and a report into ``target``; their names."""
    if source is None:
        return set()
    for path in source.iterdir():
        shutil.copy2(path, target / path.name)
    (target / "student.pt").write_text(f"{tag} student")
    (target / "report.md").write_text(f"{tag} report")
    return {path.name for path in target.iterdir()}


def _setup(tmp_path: Path, old: Path | None, new: Path) -> tuple[Path, Path, dict]:
    folder = tmp_path / "out"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    (folder / USER_FILE).write_text("mine")
    bundles = {"old": _fill(folder, old, "old")}
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
    bundles["new"] = _fill(staging, new, "new")
    return folder, staging, bundles


def _loads_as(folder: Path, bundles: dict, runtime: bool) -> str:
    """Which bundle ``folder`` loads as now: ``old`` or ``new`` (``none`` before any)."""
    try:
        if runtime:
            manifest = Runtime(folder).manifest
        else:
            manifest = read_manifest(folder)
            for entry in manifest["files"]:
                read_file(folder, entry)
    except EdgeRNNError:
        assert not bundles["old"], "the old bundle was lost"
        return "none"
    which = "new" if manifest == bundles["new_manifest"] else "old"
    assert manifest == bundles[f"{which}_manifest"]
    return which


def _crash_at(monkeypatch, k: int) -> list[int]:
    """From now on the k-th directory change raises ``Crash`` instead of happening."""
    calls = [0]
    for name in MUTATIONS:
        real = getattr(os, name)

        def hooked(*args, _real=real, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise Crash
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, hooked)
    return calls


def _cut(monkeypatch, k: int, action, *args) -> tuple[bool, int]:
    """Run ``action(*args)`` crashing at the k-th directory change: (crashed, changes seen)."""
    with monkeypatch.context() as patch:
        calls = _crash_at(patch, k)
        try:
            action(*args)
        except Crash:
            return True, calls[0]
    return False, calls[0]


def _assert_recovered(folder: Path, bundles: dict, seen: str) -> None:
    """The next writer leaves exactly one bundle, never older than what readers saw."""
    recover(folder)
    after = _loads_as(folder, bundles, runtime=False)
    assert after == "new" or seen != "new", "a published bundle was rolled back"
    visible = {path.name for path in folder.iterdir()}
    assert visible == bundles.get(after, set()) | {USER_FILE}
    assert (folder / USER_FILE).read_text() == "mine"


SWAPS = {"uni->bi": (_uni, _bi), "bi->uni": (_bi, _uni), "first": (lambda: None, _uni)}


def _manifests(bundles: dict, old: Path | None, new: Path) -> dict:
    bundles["old_manifest"] = read_manifest(old) if old else None
    bundles["new_manifest"] = read_manifest(new)
    return bundles


@pytest.mark.parametrize("swap", SWAPS)
def test_publish_killed_at_any_step_leaves_old_or_new(tmp_path, monkeypatch, swap):
    old, new = (make() for make in SWAPS[swap])
    k = 1
    while True:
        folder, staging, bundles = _setup(tmp_path, old, new)
        _manifests(bundles, old, new)
        crashed, calls = _cut(monkeypatch, k, publish, staging, folder)
        seen = _loads_as(folder, bundles, runtime=True)
        _assert_recovered(folder, bundles, seen)
        if not crashed:
            assert seen == "new" and calls == k - 1
            break
        k += 1
    assert k > 10  # every step of a real swap was cut


def test_recovery_killed_at_any_step_still_recovers(tmp_path, monkeypatch):
    old, new = _uni(), _bi()
    for first in range(1, 40, 3):
        second = 1
        while True:
            folder, staging, bundles = _setup(tmp_path, old, new)
            _manifests(bundles, old, new)
            _cut(monkeypatch, first, publish, staging, folder)
            seen = _loads_as(folder, bundles, runtime=False)
            crashed, _ = _cut(monkeypatch, second, recover, folder)
            seen_now = _loads_as(folder, bundles, runtime=False)
            assert seen_now == "new" or seen != "new", "a published bundle was rolled back"
            _assert_recovered(folder, bundles, seen_now)
            if not crashed:
                break
            second += 1


def test_lost_staging_folder_rolls_back_to_the_old_bundle(tmp_path, monkeypatch):
    old, new = _uni(), _bi()
    folder, staging, bundles = _setup(tmp_path, old, new)
    _manifests(bundles, old, new)
    moved = {path.name for path in staging.iterdir()} - {MANIFEST}
    with monkeypatch.context() as patch:
        calls = _crash_at(patch, 0)
        real_replace = os.replace

        def replace(source, target, *args, **kwargs):
            # Cut the swap right after the last new graph moved in.
            if Path(source).parent == staging and not (moved & set(os.listdir(staging))):
                raise Crash
            return real_replace(source, target, *args, **kwargs)

        patch.setattr(os, "replace", replace)
        with pytest.raises(Crash):
            publish(staging, folder)
    assert calls[0] > 0 and not (folder / MANIFEST).exists()
    assert _loads_as(folder, bundles, runtime=True) == "old"
    shutil.rmtree(staging)  # the new bundle is gone: only going back is possible
    recover(folder)
    assert _loads_as(folder, bundles, runtime=True) == "old"
    visible = {path.name for path in folder.iterdir()}
    assert visible == bundles["old"] | {USER_FILE}
    assert (folder / "student.pt").read_text() == "old student"


KILLER = """
import os, signal, sys
from pathlib import Path
from edgernn.bundle import staging
k, calls = int(sys.argv[3]), [0]
for name in {mutations!r}:
    def hooked(*args, _real=getattr(os, name), **kwargs):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return _real(*args, **kwargs)
    setattr(os, name, hooked)
staging.publish(Path(sys.argv[1]), Path(sys.argv[2]))
print(calls[0])
"""


@pytest.mark.slow
def test_publish_sigkilled_at_every_step_leaves_old_or_new(tmp_path):
    old, new = _uni(), _bi()
    script = KILLER.format(mutations=MUTATIONS)
    k = 1
    while True:
        folder, staging, bundles = _setup(tmp_path, old, new)
        _manifests(bundles, old, new)
        args = [sys.executable, "-c", script, staging, folder, k]
        done = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=60)
        seen = _loads_as(folder, bundles, runtime=True)
        _assert_recovered(folder, bundles, seen)
        if done.returncode == 0:
            assert seen == "new" and int(done.stdout) == k - 1
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        k += 1
    assert k > 10
    assert not list(tmp_path.glob(f"out/{PREVIOUS_PREFIX}*"))
