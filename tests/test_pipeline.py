"""`edgernn run`: every recipe in pipelines/ end to end at smoke size; CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgernn.checkpoint import load_checkpoint
from edgernn.cli import main
from edgernn.evaluate import evaluate_checkpoint
from edgernn.lock import LOCK_FILE
from edgernn.recipe.parse import load_recipe
from edgernn.recipe.run import run_recipe
from edgernn.recipe.state import load_state

PIPELINES = Path(__file__).parent.parent / "pipelines"
BUNDLE_FILES = {"manifest.json", "student.pt", "report.json", "report.md", "report.html"}


@pytest.mark.slow
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
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "edgernn.report/1"
    # Built in a staging folder, the report still names the bundle's graphs by file name.
    graphs = [row for row in report["models"] if row["format"] == "onnx"]
    assert graphs and all(row["name"].startswith(row["file"]) for row in graphs)
    assert not any(".staging" in row["name"] + row["file"] for row in report["models"])
    assert not (out / LOCK_FILE).exists()
    assert "teacher: done" in lines
    # The bundle's runtime answers as the student does: same test-split metrics, computed by
    # the exporter through the torch-free runtime and here again from student.pt in PyTorch.
    results = json.loads((out / "manifest.json").read_text())["metrics"]["results"]
    student = evaluate_checkpoint(load_checkpoint(out / "student.pt"), smoke.data.source)
    assert results["onnx_fp32"] == pytest.approx(results["pytorch_fp32"], rel=1e-5, abs=1e-6)
    assert results["pytorch_fp32"] == pytest.approx(student, rel=1e-5, abs=1e-6)


def test_a_bad_recipe_is_one_line_on_the_command_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[data]\nsource = 'builtin:ner'\ntask = 'tag'\n[teacher]\nhiden = 3\n")
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad.toml: [teacher] unknown key 'hiden'" in result.output
    assert not (tmp_path / "out").exists()
