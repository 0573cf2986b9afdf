"""Resuming, skipping and locking of recipe runs (``stages.json``, ``run.lock``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.lock import LOCK_FILE, folder_lock
from edgernn.recipe.parse import load_recipe
from edgernn.recipe.run import run_recipe
from edgernn.recipe.state import load_state

# Each test runs a whole recipe (teacher, compress, bundle) end to end.
pytestmark = pytest.mark.slow

TINY = """
[data]
source = "{data}"
task = "regress"
[teacher]
cell = "gru"
hidden = 8
epochs = 1
[compress]
epochs = 1
[bench]
batch_sizes = [1]
seq_lens = [8]
min_time_s = 0
"""


@pytest.fixture
def tiny_recipe(regress_npz, tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(data=regress_npz))
    return path


def test_an_interrupted_run_resumes_without_redoing_finished_stages(
    tiny_recipe, tmp_path, monkeypatch
):
    result = CliRunner().invoke(
        main, ["run", str(tiny_recipe), "-o", str(tmp_path / "a"), "--quiet", "--json"]
    )
    assert result.exit_code == 0, result.output
    reference = json.loads(result.output.strip().splitlines()[-1])
    assert set(reference) == {"bundle", "report", "metrics", "ratios"}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out, recipe = tmp_path / "b", load_recipe(tiny_recipe)
    monkeypatch.setattr("edgernn.compress.stages.compress", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, out, progress=False)
    assert set(load_state(out)) == {"teacher"} and not (out / LOCK_FILE).exists()
    teacher = out / "teacher.pt"
    before = (teacher.stat().st_mtime_ns, teacher.read_bytes())
    monkeypatch.undo()

    summary = run_recipe(recipe, out, progress=False)
    assert summary["stages"] == {"teacher": "skipped", "compress": "ran", "bundle": "ran"}
    assert (teacher.stat().st_mtime_ns, teacher.read_bytes()) == before
    assert summary["metrics"] == reference["metrics"]
    # Sizes are the same model's; measured latency ratios differ from run to run.
    sizes = ("params", "nonzero_params", "size_bytes", "size")
    assert {k: summary["ratios"][k] for k in sizes} == {k: reference["ratios"][k] for k in sizes}
    assert summary["ratios"]["timed_as"] == reference["ratios"]["timed_as"]
    # An artifact that no longer has its recorded hash re-runs the stage that wrote it.
    (out / "report.md").write_text("damaged")
    summary = run_recipe(recipe, out, progress=False)
    assert summary["stages"] == {"teacher": "skipped", "compress": "skipped", "bundle": "ran"}


def test_a_changed_setting_reruns_its_stage_and_the_later_ones(tiny_recipe, tmp_path):
    out, recipe = tmp_path / "out", load_recipe(tiny_recipe)
    run_recipe(recipe, out, progress=False)
    changed = TINY.replace("[compress]", "[compress]\nprune = 0.5")
    tiny_recipe.write_text(changed.format(data=recipe.data.source))
    stages = run_recipe(load_recipe(tiny_recipe), out, progress=False)["stages"]
    assert stages == {"teacher": "skipped", "compress": "ran", "bundle": "ran"}


def test_a_second_run_in_the_same_folder_is_refused(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    with folder_lock(out):  # another command writing there
        with pytest.raises(EdgeRNNError, match=r"another edgernn command \(pid \d+\) is writing"):
            run_recipe(load_recipe(tiny_recipe), out, progress=False)
        result = CliRunner().invoke(main, ["run", str(tiny_recipe), "-o", str(out)])
        assert result.exit_code == 1
        assert "choose another output folder" in result.output
        assert "Traceback" not in result.output
        assert (out / LOCK_FILE).exists()  # the other command's lock is left alone
    assert not (out / LOCK_FILE).exists()


def test_a_lock_file_left_by_a_dead_process_does_not_block(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("12345\n")  # a SIGKILLed run: the file stays, its lock not
    summary = run_recipe(load_recipe(tiny_recipe), out, progress=False)
    assert summary["stages"]["bundle"] == "ran" and not (out / LOCK_FILE).exists()
