import json
from dataclasses import replace

import pytest
import torch
from conftest import run_cli

from edgernn.checkpoint import load_checkpoint, save_checkpoint
from edgernn.compress import CompressConfig, Compressed, compress
from edgernn.config import TrainConfig
from edgernn.data import Codec, encode, load_raw
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate, evaluate_checkpoint
from edgernn.prune import PruneConfig
from edgernn.quantize import load_int8
from edgernn.report.schema import SCHEMA, schema_problems
from edgernn.runtime import Runtime
from edgernn.train import train

QUICK = TrainConfig(epochs=1, batch_size=16, progress=False)
ROW_FIELDS = {
    "name", "role", "format", "precision", "file", "size_bytes", "params", "nonzero_params",
    "metric", "peak_rss_mb", "latency",
}  # fmt: skip
STUDENT = ["--student-hidden", "12", "--epochs", "1", "--quiet", "--tolerance", "inf"]


@pytest.mark.slow
def test_compress_end_to_end(teacher, tmp_path):
    before = teacher.read_bytes()
    out = tmp_path / "bundle"
    args = ("--prune", "0.25", "--no-export", "--json")
    result = run_cli("compress", teacher, *STUDENT, *args, "-o", out)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == SCHEMA and report["task"] == "classify"
    assert schema_problems(report) == []
    assert report["metric"] == {"name": "accuracy", "higher_is_better": True}
    rows = report["models"]
    assert [(r["stage"], r["precision"]) for r in rows] == [
        (None, "fp32"), ("distill", "fp32"), ("prune", "fp32"), ("quantize", "int8"),
    ]  # fmt: skip
    assert all(set(row) >= ROW_FIELDS and row["latency"] == [] for row in rows)
    assert rows[0]["params"] > rows[1]["params"] > rows[2]["params"]
    assert rows[3]["size_bytes"] < rows[2]["size_bytes"]
    assert summary["metrics"]["accuracy"] == rows[3]["metric"]
    size_ratio = rows[3]["size_bytes"] / rows[0]["size_bytes"]
    assert summary["ratios"]["size_bytes"] == summary["ratios"]["size"] == size_ratio
    assert [row["file"] for row in rows] == [str(teacher), "", "student.pt", "student.pt"]
    student = load_checkpoint(out / "student.pt")
    assert student.spec.hidden == 9 and student.compression["quantization"]["int8"]
    again = Compressed.from_checkpoint(student)  # what a resumed recipe bundles from
    assert [(r.stage, r.kept, r.metric, r.size_bytes) for r in again.rows] == [
        (r["stage"], r["kept"], r["metric"], r["size_bytes"]) for r in rows
    ]
    assert evaluate_checkpoint(student)["accuracy"] == pytest.approx(rows[2]["metric"])
    data = encode(load_raw(student.meta.source, "classify"), student.meta, 512)
    int8_scores = evaluate(load_int8(student), data.splits["test"], student.meta)
    assert int8_scores["accuracy"] == pytest.approx(rows[3]["metric"])
    # The one report renderer: a stage column, and no latency columns when nothing was timed.
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# Compression report (classify)")
    assert "| model | role | stage | precision |" in markdown and "p50" not in markdown
    assert "| int8 | student | quantize | torch int8 |" in markdown
    assert "Latency grid" not in (out / "report.html").read_text()
    assert teacher.read_bytes() == before


@pytest.mark.slow
def test_compress_writes_a_measured_device_bundle(teacher, tmp_path, classify_csv):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, *STUDENT, "--no-prune", "--quiet", "-o", out)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert names >= {"manifest.json", "model.onnx", "model.int8.onnx", "student.pt"}
    assert names >= {"report.json", "report.md", "report.html"}
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    rows = {(r["role"], r["format"], r["precision"]): r for r in report["models"]}
    teacher_row, final_row = rows["teacher", "torch", "fp32"], rows["final", "onnx", "int8"]
    assert teacher_row["latency"] and final_row["latency"]
    assert final_row["metric"] is not None
    # The compress rows come from memory, between the timed teacher and the timed graphs.
    staged = [(r["stage"], r["file"]) for r in report["models"] if r.get("stage")]
    assert staged == [("distill", "student.pt"), ("quantize", "student.pt")]
    markdown = (out / "report.md").read_text()
    assert "| model | role | stage |" in markdown and "## Latency grid" in markdown
    student = load_checkpoint(out / "student.pt").build()
    texts = [line.split(",")[0].strip('"') for line in classify_csv.read_text().splitlines()[1:9]]
    predicted = [p["label"] for p in Runtime(out, precision="fp32").predict(texts)]
    meta = load_checkpoint(out / "student.pt").meta
    codec = Codec(meta)
    expected = []
    for text in texts:
        ids = codec.token_ids(text)
        expected.append(meta.labels[int(student(ids[None], torch.tensor([len(ids)])).argmax())])
    assert predicted == expected


def test_without_data_only_data_free_stages_run(classify_csv, tmp_path):
    checkpoint = train(str(classify_csv), "classify", QUICK, hidden=16, embed=8)
    anonymous = replace(checkpoint, meta=replace(checkpoint.meta, source=""))
    result = compress(anonymous, CompressConfig())
    assert [row.stage for row in result.rows] == [None, "quantize"]
    assert all(row.metric is None for row in result.rows)
    assert any("not measured" in note for note in result.notes)
    assert any("distillation skipped" in note for note in result.notes)


def test_unstructured_pruning_zeroes_weights_not_parameters(classify_csv):
    checkpoint = train(str(classify_csv), "classify", QUICK, hidden=16, embed=8)
    config = CompressConfig(
        student=None, prune=PruneConfig(amount=0.6, mode="unstructured", epochs=1), quantize=None
    )
    teacher, pruned = compress(checkpoint, config).rows
    assert pruned.params == teacher.params and pruned.nonzero_params < 0.6 * teacher.params


def test_a_stage_that_loses_too_much_is_not_kept(regress_npz):
    checkpoint = train(
        str(regress_npz), "regress", TrainConfig(epochs=5, progress=False), hidden=16
    )
    harsh = PruneConfig(amount=0.75, schedule="one-shot", epochs=0)
    config = CompressConfig(student=None, prune=harsh, quantize=None, tolerance=0.0)
    result = compress(checkpoint, config)
    assert [(row.stage, row.kept) for row in result.rows] == [(None, True), ("prune", False)]
    assert result.rows[1].params < result.rows[0].params
    assert result.checkpoint.spec.hidden == 16 and result.checkpoint.compression["stages"] == []
    assert any(note.startswith("prune not kept") for note in result.notes)


def _assert_one_line_error(result, fragment, out):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--student-hidden", "64"], "bigger than the teacher"),
        (["--student-cell", "transformer"], "Invalid value for '--student-cell'"),
        (["--prune", "1.0"], "Invalid value for '--prune'"),
        (["--student-hidden", "2", "--prune", "0.9"], "leaves none"),
        (["--data", "builtin:charlm"], "is a lm dataset but the model is a classify model"),
        (["--temperature", "0"], "Invalid value for '--temperature'"),
        (["--lr", "0"], "Invalid value for '--lr'"),
        (["--lr", "inf"], "Invalid value for '--lr'"),
    ],
)
def test_bad_settings_are_one_clear_line(args, fragment, teacher, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, "--quiet", *args, "-o", out)
    _assert_one_line_error(result, fragment, out)


def test_data_of_another_task_is_refused(teacher, tag_conll, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, "--no-prune", "--data", tag_conll, "-o", out)
    _assert_one_line_error(result, "a classify dataset cannot be read from .conll files", out)
    assert tag_conll.name in result.output


def test_missing_model_is_one_clear_line(tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", tmp_path / "absent.pt", "--no-prune", "-o", out)
    _assert_one_line_error(result, "no such checkpoint", out)


def test_distillation_flags_reach_distillation(teacher, tmp_path, monkeypatch):
    seen = {}

    def spy(teacher_model, data, student, config, device="cpu", vocab=None):
        seen["config"] = config
        raise EdgeRNNError("stop after the settings were read")

    monkeypatch.setattr("edgernn.compress.stages.distill", spy)
    flags = ("--augment", "0.2", "--regression-kd", "mse", "--lr", "0.01", "--no-export")
    result = run_cli("compress", teacher, *STUDENT, *flags, "-o", tmp_path / "out")
    assert "stop after the settings were read" in result.output
    assert (seen["config"].augment, seen["config"].regression_kd) == (0.2, "mse")
    assert seen["config"].train.lr == 0.01


def _reject_int8(monkeypatch) -> None:
    # The guard itself decides; only its measurement is forced: the fp32 model loses
    # nothing, the int8 one 50 points (with no distill and no prune, int8 is the only
    # stage the guard sees, model first, then the candidate).
    drops = iter([0.0, 50.0])
    monkeypatch.setattr("edgernn.compress.stages._Run.valid_drop", lambda self, m: next(drops))


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, flags, shipped, note",
    [
        ("no-quantize", ["--no-quantize"], "fp32", "no-quantize given"),
        ("rejected", [], "fp32", "int8 not kept: 50 points worse"),
        ("kept", ["--tolerance", "inf"], "int8", None),
    ],
)
def test_the_bundle_ships_int8_only_when_compress_kept_it(
    case, flags, shipped, note, teacher, tmp_path, monkeypatch
):
    if case == "rejected":
        _reject_int8(monkeypatch)
    out = tmp_path / "bundle"
    args = ("--no-distill", "--no-prune", "--quiet", *flags, "-o", out)
    result = run_cli("compress", teacher, *args)
    assert result.exit_code == 0, result.output
    student = load_checkpoint(out / "student.pt")
    assert (student.compression["quantization"] is not None) == (shipped == "int8")
    int8_files = sorted(path.name for path in out.glob("*.int8.onnx"))
    manifest = json.loads((out / "manifest.json").read_text())
    precisions = {entry["precision"] for entry in manifest["files"]}
    assert precisions == ({"fp32", "int8"} if shipped == "int8" else {"fp32"})
    assert bool(int8_files) == (shipped == "int8")
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    graphs = [row for row in report["models"] if row["format"] == "onnx"]
    assert {row["precision"] for row in graphs if row["role"] == "final"} == {shipped}
    assert all(row["role"] == "student" for row in graphs if row["precision"] != shipped)
    onnx_int8 = [row for row in graphs if row["precision"] == "int8"]
    assert bool(onnx_int8) == (shipped == "int8")
    fp32_only = [line for line in report["notes"] if line.startswith("fp32 graphs only")]
    if note is None:
        assert fp32_only == []
    else:
        assert len(fp32_only) == 1 and note in fp32_only[0], report["notes"]
        assert "fp32 graphs only" in (out / "report.md").read_text()
    assert ("note: fp32 graphs only" in result.output) == (note is not None)
    assert Runtime(out).precision == shipped


def test_export_follows_the_int8_decision_of_compress(classify_csv, tmp_path):
    checkpoint = train(str(classify_csv), "classify", QUICK, hidden=8, embed=8)
    config = CompressConfig(student=None, prune=None, quantize=None)
    student = save_checkpoint(compress(checkpoint, config).checkpoint, tmp_path / "student.pt")
    plain = save_checkpoint(checkpoint, tmp_path / "plain.pt")
    fast = ("--no-eval", "--exporter", "torchscript")

    def exported(model, *flags):
        out = tmp_path / f"{model.stem}{''.join(flags)}"
        result = run_cli("export", model, *fast, *flags, "-o", out)
        assert result.exit_code == 0, result.output
        return sorted(path.name for path in out.glob("*.onnx")), result.output

    names, output = exported(student)
    assert names == ["model.onnx", "step.onnx"]
    assert "note: fp32 graphs only: no-quantize given" in output and "--int8" in output
    assert "model.int8.onnx" in exported(student, "--int8")[0]  # asked for: given
    assert "model.int8.onnx" in exported(plain)[0]  # no compression record: int8 as before
    assert exported(plain, "--no-int8")[0] == ["model.onnx", "step.onnx"]


@pytest.mark.slow
def test_a_recipe_bundle_follows_the_same_int8_decision(classify_csv, tmp_path):
    from edgernn.recipe.parse import load_recipe
    from edgernn.recipe.run import run_recipe

    path = tmp_path / "recipe.toml"
    path.write_text(
        '[data]\nsource = "builtin:sentiment"\ntask = "classify"\n'
        "[compress]\nno_distill = true\nno_prune = true\nno_quantize = true\n"
    )
    recipe = load_recipe(path).smoke(classify_csv)
    out = tmp_path / "out"
    run_recipe(recipe, out, progress=False)
    assert sorted(p.name for p in out.glob("*.onnx")) == ["model.onnx", "step.onnx"]
    report = json.loads((out / "report.json").read_text())
    assert "fp32 graphs only: no-quantize given" in report["notes"]
    finals = {row["precision"] for row in report["models"] if row["role"] == "final"}
    assert finals == {"fp32"}
