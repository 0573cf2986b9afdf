"""edgernn.data.shards: ``edgernn prepare`` writes what ``encode`` makes; --data reads it."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.config import TrainConfig
from edgernn.data import encode, fit_meta, load_raw
from edgernn.data.raw import SPLITS
from edgernn.data.shards import for_model, load_shards, prepare_shards
from edgernn.data.shards import store as store_module
from edgernn.errors import EdgeRNNError
from edgernn.train import train

SMALL = 300  # builtin examples written out per test: enough to carve, fast to encode


def _jsonl(path: Path, examples) -> Path:
    lines = [json.dumps({"text": text, "label": label}) for text, label in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _table(path: Path, examples, delimiter: str) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, delimiter=delimiter)
        writer.writerow(["label", "text"])
        writer.writerows([label, text] for text, label in examples)
    return path


def _conll(path: Path, sentences) -> Path:
    blocks = ["\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def _pairs(path: Path, pairs) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def _sentiment_file(tmp_path: Path) -> Path:
    return _jsonl(
        tmp_path / "reviews.jsonl", load_raw("builtin:sentiment", "classify").train[:SMALL]
    )


def _data(kind: str, tmp_path: Path) -> tuple[str, str]:
    """(DATA, task): a builtin dataset written out in a streamed format."""
    tmp_path.mkdir()
    if kind == "jsonl-file":  # one file: valid and test carved
        return str(_sentiment_file(tmp_path)), "classify"
    if kind in ("csv-dir", "tsv-dir"):  # train and valid given, test carved
        raw, suffix = load_raw("builtin:sentiment", "classify"), kind[:3]
        for name in ("train", "valid"):
            _table(
                tmp_path / f"{name}.{suffix}",
                raw.split(name)[:SMALL],
                "," if suffix == "csv" else "\t",
            )
        return str(tmp_path), "classify"
    if kind == "conll-dir":  # every split given
        raw = load_raw("builtin:ner", "tag")
        for name in SPLITS:
            _conll(tmp_path / f"{name}.conll", raw.split(name)[:SMALL])
        return str(tmp_path), "tag"
    raw = load_raw("builtin:translate", "seq2seq")  # seq2seq .tsv, one file
    return str(_pairs(tmp_path / "dates.tsv", raw.train[:SMALL])), "seq2seq"


def _assert_same(shards, encoded) -> None:
    assert shards.meta.to_dict() | {"source": ""} == encoded.meta.to_dict() | {"source": ""}
    for name in SPLITS:
        ours, theirs = shards.splits[name], encoded.splits[name]
        assert len(ours) == len(theirs) and list(ours.lengths) == [len(x) for x, _ in theirs]
        for (x, y), (x_ref, y_ref) in zip(ours, theirs, strict=True):
            assert x.dtype == x_ref.dtype and y.dtype == y_ref.dtype
            assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


@pytest.mark.parametrize("kind", ["jsonl-file", "csv-dir", "tsv-dir", "conll-dir", "tsv-pairs"])
def test_streamed_shards_hold_exactly_what_encode_makes(tmp_path, kind):
    data, task = _data(kind, tmp_path / "data")
    manifest = prepare_shards(data, task, tmp_path / "shards")
    assert manifest["streamed"]
    raw = load_raw(data, task)
    _assert_same(load_shards(tmp_path / "shards"), encode(raw, fit_meta(raw), 512))


@pytest.mark.parametrize(
    ("data", "task"), [("builtin:charlm", "lm"), ("builtin:forecast", "regress")]
)
def test_data_that_cannot_stream_is_encoded_in_memory(tmp_path, data, task):
    manifest = prepare_shards(data, task, tmp_path / "shards", max_len=48)
    assert not manifest["streamed"]
    raw = load_raw(data, task)
    _assert_same(load_shards(tmp_path / "shards"), encode(raw, fit_meta(raw), 48, 48))


def test_text_choices_are_applied_when_preparing(tmp_path):
    data = str(_sentiment_file(tmp_path))
    text = {"lowercase": False, "split_punctuation": False}
    prepare_shards(data, "classify", tmp_path / "shards", "char", text)
    raw = load_raw(data, "classify")
    _assert_same(load_shards(tmp_path / "shards"), encode(raw, fit_meta(raw, "char", text), 512))


def test_training_on_shards_is_training_on_the_source(tmp_path):
    data = str(_sentiment_file(tmp_path))
    prepare_shards(data, "classify", tmp_path / "shards")
    config = TrainConfig(epochs=2, batch_size=16, progress=False)
    sizes = {"hidden": 8, "embed": 8}
    source = train(data, "classify", config, **sizes)
    sharded = train(str(tmp_path / "shards"), "classify", config, **sizes)
    assert sharded.metrics == source.metrics
    assert all(torch.equal(sharded.state_dict[k], w) for k, w in source.state_dict.items())
    assert sharded.meta.vocab == source.meta.vocab
    assert sharded.meta.source == str(tmp_path / "shards")


def test_cli_prepare_train_evaluate_round_trip(tmp_path):
    data, shards, model = _sentiment_file(tmp_path), tmp_path / "shards", tmp_path / "m.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["prepare", str(data), "--task", "classify", "-o", str(shards)])
    assert result.exit_code == 0, result.output
    assert "train 240" in result.output
    args = ["train", "--task", "classify", "--data", str(shards), "--hidden", "8", "--embed", "8"]
    result = runner.invoke(main, [*args, "--epochs", "1", "--quiet", "--json", "-o", str(model)])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output.strip().splitlines()[-1])["metrics"]["test"]
    for extra in ([], ["--data", str(shards)], ["--data", str(data)]):
        result = runner.invoke(main, ["evaluate", str(model), "--json", *extra])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["metrics"]["test"] == trained


def test_evaluating_on_shards_of_other_data_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    other_data = _jsonl(other / "a.jsonl", [("good film", "pos"), ("bad", "neg")] * 20)
    prepare_shards(other_data, "classify", tmp_path / "shards")
    model = tmp_path / "m.pt"
    args = ["train", "--task", "classify", "--data", str(_sentiment_file(tmp_path))]
    args += ["--hidden", "8", "--embed", "8", "--epochs", "1", "--quiet", "-o", str(model)]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["evaluate", str(model), "--data", str(tmp_path / "shards")])
    assert result.exit_code == 1 and "encoded with another" in result.output


def test_training_refuses_another_task_or_tokenization(tmp_path):
    prepare_shards(str(_sentiment_file(tmp_path)), "classify", tmp_path / "shards")
    with pytest.raises(EdgeRNNError, match="shards of a classify dataset; use --task classify"):
        train(str(tmp_path / "shards"), "tag")
    with pytest.raises(EdgeRNNError, match="tokenization was fixed when the shards"):
        train(str(tmp_path / "shards"), "classify", tokens="char")


def test_a_failed_prepare_leaves_no_folder(tmp_path, monkeypatch):
    def fail(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.StoreWriter, "close", fail)
    with pytest.raises(KeyboardInterrupt):
        prepare_shards(str(_sentiment_file(tmp_path)), "classify", tmp_path / "out" / "shards")
    assert list((tmp_path / "out").iterdir()) == []


def test_prepare_replaces_earlier_shards_but_not_other_folders(tmp_path):
    data = str(_sentiment_file(tmp_path))
    prepare_shards(data, "classify", tmp_path / "shards")
    prepare_shards(data, "classify", tmp_path / "shards")
    assert load_shards(tmp_path / "shards").splits["train"][0] is not None
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(EdgeRNNError, match="a folder holding other files"):
        prepare_shards(data, "classify", tmp_path / "busy")
    with pytest.raises(EdgeRNNError, match="already a shards folder"):
        prepare_shards(str(tmp_path / "shards"), "classify", tmp_path / "again")
    args = ["prepare", str(tmp_path), "--task", "classify", "-o", str(tmp_path / "inside")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "is inside the input folder" in result.output


def test_bad_examples_name_the_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n{"text": "oops"}\n', encoding="utf-8")
    with pytest.raises(EdgeRNNError, match=r"train.jsonl:2: expected an object"):
        prepare_shards(str(path), "classify", tmp_path / "shards")
    path.write_text("")
    with pytest.raises(EdgeRNNError, match="holds no examples"):
        prepare_shards(str(tmp_path), "classify", tmp_path / "shards")
    _jsonl(path, [("a b c d e f", "x")] * 30)
    with pytest.raises(EdgeRNNError, match="6 steps, more than the max length 4"):
        prepare_shards(str(path), "classify", tmp_path / "shards", max_len=4)
    path.write_bytes(b'{"text": "ok", "label": "a"}\n' * 3 + b'{"text": "\xff", "label": "b"}\n')
    with pytest.raises(EdgeRNNError, match="not UTF-8 text"):
        prepare_shards(str(path), "classify", tmp_path / "shards")


@pytest.fixture
def shards(tmp_path) -> Path:
    prepare_shards(str(_sentiment_file(tmp_path)), "classify", tmp_path / "shards")
    return tmp_path / "shards"


def _edit_manifest(shards: Path, change) -> None:
    manifest = json.loads((shards / "shards.json").read_text())
    change(manifest)
    (shards / "shards.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: (s / "shards.json").write_text("{not json"), "not readable JSON"),
        (lambda s: (s / "shards.json").write_text("[]"), "not an edgernn shards manifest"),
        (lambda s: _edit_manifest(s, lambda m: m.update(version=99)), "format version 99"),
        (lambda s: _edit_manifest(s, lambda m: m["splits"].pop("test")), "must list the splits"),
        (lambda s: _edit_manifest(s, lambda m: m["meta"].update(text=7)), "damaged meta"),
        (lambda s: (s / "train.offsets.npy").unlink(), "missing from the shards"),
        (lambda s: _truncate(s / "train.inputs.npy"), "damaged"),
        (lambda s: np.save(s / "train.offsets.npy", np.array([0, 5, 10**9])), "do not span"),
        (lambda s: np.save(s / "valid.rows.npy", np.array([10**6])), "rows outside the store"),
        (lambda s: np.save(s / "train.targets.npy", np.zeros(3, np.float32)), "holds float32"),
    ],
)
def test_damaged_shards_are_one_clear_error(shards, damage, message):
    damage(shards)
    with pytest.raises(EdgeRNNError, match=message):
        load_shards(shards)
    result = CliRunner().invoke(
        main,
        ["train", "--task", "classify", "--data", str(shards), "-o", str(shards.parent / "m.pt")],
    )
    assert result.exit_code == 1 and message.split()[0] in result.output
    assert "Traceback" not in result.output


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def test_ids_outside_the_vocabulary_are_refused_when_read(shards):
    inputs = np.load(shards / "train.inputs.npy")
    inputs[:] = 10**6
    np.save(shards / "train.inputs.npy", inputs)
    data = load_shards(shards)
    with pytest.raises(EdgeRNNError, match="ids outside 0..*the shards are damaged"):
        data.splits["train"][0]


def test_a_split_is_a_sequence_with_lengths(shards):
    split = load_shards(shards).splits["valid"]
    pairs = split[:3]
    assert isinstance(pairs, list) and len(pairs) == 3
    assert torch.equal(split[-1][0], split[len(split) - 1][0])
    assert [len(x) for x, _ in split] == split.lengths.tolist()
    with pytest.raises(IndexError):
        split[len(split)]


def test_max_steps_bounds_a_run_on_big_data(shards):
    from edgernn.models import build_model
    from edgernn.tasks import TASKS
    from edgernn.train import build_spec, fit

    data, steps = load_shards(shards), []

    def counting(model, batch):
        steps.append(len(batch.lengths))
        return TASKS["classify"].loss(model, batch)

    model = build_model(build_spec("classify", data.meta, hidden=8, embed=8))
    fit(
        model,
        data,
        TrainConfig(epochs=3, batch_size=16, max_steps=5, progress=False),
        objective=counting,
    )
    assert len(steps) == 5
    with pytest.raises(EdgeRNNError, match="max_steps must be at least 1"):
        TrainConfig(max_steps=0)


def test_commands_that_read_source_data_name_a_shards_folder(shards):
    with pytest.raises(EdgeRNNError, match="a shards folder .*pass that instead"):
        load_raw(str(shards), "classify")


def test_a_smaller_vocabulary_reads_the_shards_as_it_would_read_the_source(tmp_path):
    # A student that kept the teacher's most frequent tokens scores on the teacher's shards.
    data = str(_sentiment_file(tmp_path))
    prepare_shards(data, "classify", tmp_path / "shards")
    raw = load_raw(data, "classify")
    meta = fit_meta(raw)
    student = replace(meta, vocab=meta.vocab[:4] + meta.vocab[20:60])
    shards = for_model(load_shards(tmp_path / "shards"), student, 512)
    _assert_same(shards, encode(raw, student, 512))
    with pytest.raises(EdgeRNNError, match="another labels"):
        for_model(load_shards(tmp_path / "shards"), replace(meta, labels=["a", "b"]), 512)
    with pytest.raises(EdgeRNNError, match="max length 5"):
        for_model(load_shards(tmp_path / "shards"), meta, 5)
