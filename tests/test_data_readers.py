from pathlib import Path

import numpy as np
import pytest
from conftest import numeric_arrays

from edgernn.data import RawData, load_raw
from edgernn.data.readers import read_file
from edgernn.data.source import carve_missing_splits
from edgernn.errors import EdgeRNNError


def test_csv_and_jsonl_read_text_label_pairs(classify_csv, classify_jsonl):
    for path in (classify_csv, classify_jsonl):
        examples = read_file(path, "classify")
        assert len(examples) == 60
        assert all(isinstance(t, str) and label in ("pos", "neg") for t, label in examples)


def test_tsv_classification_with_quoted_fields(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('label\ttext\npos\t"a, b"\nneg\tc d\n', encoding="utf-8")
    assert read_file(path, "classify") == [("a, b", "pos"), ("c d", "neg")]


def test_npz_keeps_true_lengths_and_dtypes(regress_npz):
    with np.load(regress_npz) as arrays:
        lengths = arrays["lengths"]
    examples = read_file(regress_npz, "regress")
    assert [len(x) for x, _ in examples] == lengths.tolist()
    assert all(x.dtype == np.float32 and y.shape == (1,) for x, y in examples)


def test_npz_classification_labels_are_strings(classify_npz):
    labels = {label for _, label in read_file(classify_npz, "classify")}
    assert labels == {"0", "1"}


def test_conll_sentences_split_on_blank_lines(tag_conll):
    sentences = read_file(tag_conll, "tag")
    assert len(sentences) == 40
    assert all(len(tokens) == len(tags) for tokens, tags in sentences)


def test_seq2seq_pairs(seq2seq_tsv):
    pairs = read_file(seq2seq_tsv, "seq2seq")
    assert all(target == source[::-1] for source, target in pairs)


def test_directory_with_splits(tmp_path, classify_csv):
    rows = classify_csv.read_text().splitlines()
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "train.csv").write_text("\n".join(rows[:41]))
    (tmp_path / "split" / "test.csv").write_text("\n".join([rows[0]] + rows[41:]))
    raw = load_raw(str(tmp_path / "split"), "classify")
    assert len(raw.test) == 20
    assert len(raw.valid) == 4 and len(raw.train) == 36  # valid carved from train


def test_carving_is_deterministic_and_disjoint(classify_csv):
    first, second = load_raw(str(classify_csv), "classify"), load_raw(str(classify_csv), "classify")
    assert first.valid == second.valid and first.test == second.test
    assert len(first.train) + len(first.valid) + len(first.test) == 60


def test_lm_text_carved_as_contiguous_tail(lm_txt):
    raw = load_raw(str(lm_txt), "lm")
    text = lm_txt.read_text()
    assert raw.train[0] + raw.test[0] + raw.valid[0] == text
    assert len(raw.valid[0]) == len(raw.test[0]) == len(text) // 10


@pytest.mark.parametrize(
    "name, content, task, message",
    [
        ("a.csv", "sentence,label\nx,1\n", "classify", "text,label"),
        ("a.csv", "text,label\nx,1,2\n", "classify", "expected 2 columns"),
        ("a.csv", "text,label\n", "classify", "no examples"),
        ("a.csv", 'text,label\n"",pos\n', "classify", "text is empty"),
        ("a.jsonl", '{"text": "x"}\n', "classify", '"text" and "label"'),
        ("a.jsonl", "{oops\n", "classify", "not valid JSON"),
        ("a.conll", "word\n", "tag", "expected 'token tag'"),
        ("a.tsv", "only one column\n", "seq2seq", "source<TAB>target"),
        ("a.txt", "   \n", "lm", "no examples"),
        ("a.parquet", "x", "classify", "cannot be read from .parquet"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, name, content, task, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EdgeRNNError, match=message):
        read_file(path, task)


def test_non_utf8_is_rejected(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\n\xff\xfe,pos\n")
    with pytest.raises(EdgeRNNError, match="not UTF-8"):
        read_file(path, "classify")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("lengths"), "missing arrays"),
        (lambda a: a.update(x=a["x"][:, :, 0]), "float \\(N, T, F\\)"),
        (lambda a: a["x"].__setitem__((0, 0, 0), np.nan), "NaN"),
        (lambda a: a.update(lengths=a["lengths"] + 20), "between 1 and T"),
        (lambda a: a.update(y=a["y"][:-1]), "y has"),
    ],
)
def test_bad_npz_gets_clear_errors(tmp_path, change, message):
    arrays = numeric_arrays(8, classify=False)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(EdgeRNNError, match=message):
        read_file(path, "regress")


def test_missing_path_and_task_mismatch(tmp_path):
    with pytest.raises(EdgeRNNError, match="no such file"):
        load_raw(str(tmp_path / "nope.csv"), "classify")
    with pytest.raises(EdgeRNNError, match="is a classify dataset"):
        load_raw("builtin:sentiment", "tag")
    with pytest.raises(EdgeRNNError, match="unknown builtin"):
        load_raw("builtin:nothing", "tag")


def test_too_few_examples_to_carve(tmp_path):
    path = Path(tmp_path / "a.csv")
    path.write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    with pytest.raises(EdgeRNNError, match="too few"):
        carve_missing_splits(RawData(task="classify", train=read_file(path, "classify")))


_ROWS = "".join(f"good film {i},{'pos' if i % 2 else 'neg'}\n" for i in range(4))


@pytest.mark.parametrize(
    "name, content, text",
    [
        ("a.csv", b"\xef\xbb\xbftext,label\n" + _ROWS.encode(), "good film 0"),  # Excel's BOM
        ("a.csv", 'text,label\r\n"a\x0cb\x85c\u2028d",pos\r\n'.encode(), "a\x0cb\x85c\u2028d"),
        ("a.jsonl", b'\xef\xbb\xbf{"text": "a\\u2028b", "label": 1}\n', "a\u2028b"),
        ("a.jsonl", '{"text": "a\u2028b", "label": true}\n'.encode(), "a\u2028b"),
    ],
)
def test_only_real_line_ends_split_lines_and_a_bom_is_dropped(tmp_path, name, content, text):
    path = tmp_path / name
    path.write_bytes(content)
    assert read_file(path, "classify")[0][0] == text


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "x", "label": null}', "label must be a string, integer or boolean"),
        ('{"text": "x", "label": 1.5}', "label must be a string, integer or boolean"),
        ('{"text": "x\\ud800", "label": "a"}', "unpaired surrogate"),
        ("[" * 3000, "nested too deeply"),
        ("9" * 5000, "number in the JSON is too long"),
    ],
)
def test_jsonl_values_a_model_cannot_use_are_refused(tmp_path, content, message):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n' + content + "\n", encoding="utf-8")
    with pytest.raises(EdgeRNNError, match=f"{path}:2: .*{message}"):
        read_file(path, "classify")


def test_non_utf8_error_names_the_line(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes(b"a\tb\nc\t\xff\n")
    with pytest.raises(EdgeRNNError, match=f"{path}:2: not UTF-8 text .* at byte 6"):
        read_file(path, "seq2seq")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(y=np.array(1.0)), "y must hold one row per sequence"),
        (lambda a: a.update(x=a["x"][:, :, :0]), "F >= 1"),
        (lambda a: a.update(y=a["y"][:, None][:, :0]), "K >= 1"),
        (lambda a: a.update(x=a["x"].astype(np.float64) * 1e300), "beyond-float32"),
        (lambda a: a.update(y=a["y"].astype(np.float64) * 1e300), "y holds NaN, infinite"),
        (lambda a: a.update(lengths=a["lengths"].astype(np.float64)), "lengths must be integer"),
    ],
)
def test_more_bad_npz_gets_clear_errors(tmp_path, change, message):
    arrays = numeric_arrays(8, classify=False)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(EdgeRNNError, match=f"{path}: .*{message}"):
        read_file(path, "regress")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04", b"\x93NUMPY", b"not a zip"])
def test_npz_that_is_not_an_archive(tmp_path, content):
    path = tmp_path / "a.npz"
    path.write_bytes(content)
    with pytest.raises(EdgeRNNError, match=f"{path}: not a readable .npz archive"):
        read_file(path, "regress")


def test_npz_padding_may_hold_anything_and_byte_labels_are_text(tmp_path):
    arrays = numeric_arrays(8, classify=True)
    arrays["x"][0, arrays["lengths"][0] :] = np.nan  # past the length: never read
    arrays["y"] = np.array([b"yes", b"no"] * 4)
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    assert {label for _, label in read_file(path, "classify")} == {"yes", "no"}


def test_csv_cell_over_the_field_limit_names_the_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\nok,a\n"' + "w " * 70_000 + '",b\n', encoding="utf-8")
    with pytest.raises(EdgeRNNError, match=f"{path}:3: not valid .csv .*field limit"):
        read_file(path, "classify")
