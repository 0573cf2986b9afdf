"""`edgernn run`: every recipe end to end at smoke size, resuming, locking, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.pipeline import run_recipe
from edgernn.pipeline_state import LOCK_FILE, load_state
from edgernn.recipe import load_recipe

PIPELINES = Path(__file__).parent.parent / "pipelines"
BUNDLE_FILES = {"manifest.json", "student.pt", "report.json", "report.md", "report.html"}


@pytest.mark.parametrize("name", sorted(path.stem for path in PIPELINES.glob("*.toml")))
def test_every_recipe_runs_end_to_end_at_smoke_size(name, data_files, tmp_path):
    recipe = load_recipe(PIPELINES / f"{name}.toml")
    smoke = recipe.smoke(data_files[recipe.data.task])
    lines: list[str] = []
    summary = run_recipe(smoke, tmp_path / "out", progress=False, log=lines.append)
    out = tmp_path / "out"
    assert BUNDLE_FILES | {"teacher.pt", "stages.json"} <= {p.name for p in out.iterdir()}
    assert summary["stages"] == dict.fromkeys(("teacher", "compress", "bundle"), "ran")
    assert set(load_state(out)) == {"teacher", "compress", "bundle"}
    assert summary["metrics"] and summary["ratios"]["params"] < 1.0
    assert json.loads((out / "report.json").read_text())["schema"] == "edgernn.report/1"
    assert not (out / LOCK_FILE).exists()
    assert "teacher: done" in lines


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
    monkeypatch.setattr("edgernn.compress.compress", interrupted)
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
    assert summary["ratios"] == reference["ratios"]


def test_a_changed_artifact_or_setting_reruns_its_stage(tiny_recipe, tmp_path):
    out, recipe = tmp_path / "out", load_recipe(tiny_recipe)
    run_recipe(recipe, out, progress=False)
    (out / "model.onnx").write_bytes(b"damaged")
    assert run_recipe(recipe, out, progress=False)["stages"]["bundle"] == "ran"
    changed = TINY.replace("[compress]", "[compress]\nprune = 0.5")
    tiny_recipe.write_text(changed.format(data=recipe.data.source))
    stages = run_recipe(load_recipe(tiny_recipe), out, progress=False)["stages"]
    assert stages == {"teacher": "skipped", "compress": "ran", "bundle": "ran"}


def test_a_second_run_in_the_same_folder_is_refused(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("12345\n")
    with pytest.raises(EdgeRNNError, match=r"run.lock: another `edgernn run` \(pid 12345\)"):
        run_recipe(load_recipe(tiny_recipe), out, progress=False)
    assert (out / LOCK_FILE).exists()  # the other run's lock is left alone
    result = CliRunner().invoke(main, ["run", str(tiny_recipe), "-o", str(out)])
    assert result.exit_code == 1
    assert "remove it (rm" in result.output and "Traceback" not in result.output


def test_a_bad_recipe_is_one_line_on_the_command_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[data]\nsource = 'builtin:ner'\ntask = 'tag'\n[teacher]\nhiden = 3\n")
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad.toml: [teacher] unknown key 'hiden'" in result.output
    assert not (tmp_path / "out").exists()
