"""Tokenization rules (edgernn.text): tricky text, one rule set for training and the runtime,
the manifest record, legacy bundles and checkpoints, and the train flags."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from export_cases import bundle

from edgernn.bundle import read_manifest, schema
from edgernn.bundle.manifest import VERSION
from edgernn.checkpoint import load_checkpoint
from edgernn.cli import main
from edgernn.data.meta import DataMeta
from edgernn.data.prepare import Codec, text_rules
from edgernn.data.vocab import SPECIALS
from edgernn.errors import EdgeRNNError
from edgernn.export.scoring import meta_from_manifest
from edgernn.recipe.parse import parse_recipe
from edgernn.runtime.codec import BundleCodec
from edgernn.text import PYTHON_WHITESPACE, UNICODE_WHITESPACE, TextRules, bundle_rules

WORD = TextRules("word", unicode="NFC", lowercase=True, split_punctuation=True)
TAG = TextRules("word", unicode="NFC", split_punctuation=True)  # case kept
CHAR = TextRules("char", unicode="NFC")
CAFE_NFD, CAFE_NFC = "cafe\u0301", "caf\u00e9"
EMOJI = "\U0001f600"  # outside the BMP: one code point, two UTF-16 units

# A small fixed vocabulary: ids 4.. in this order.
WORDS = [*SPECIALS, "the", "plot", "was", "dull", ".", "don", "'", "t", CAFE_NFC, "σοφος"]
WORDS += ["i\u0307stanbul", "«", "»", "quoted", "—", "3", "14", "a", "b", "u", "s"]
CHARS = [*SPECIALS, "T", "h", "e", " ", "c", "a", "f", "\u00e9", EMOJI, "\t", "x", "\x1c", "İ"]

# text -> (word tokens, char tokens)
CASES = {
    "The plot was dull.": (
        ["the", "plot", "was", "dull", "."],
        list("The plot was dull."),
    ),
    "don't": (["don", "'", "t"], list("don't")),
    "U.S.A.": (["u", ".", "s", ".", "a", "."], list("U.S.A.")),
    CAFE_NFD: ([CAFE_NFC], ["c", "a", "f", "\u00e9"]),
    CAFE_NFC: ([CAFE_NFC], ["c", "a", "f", "\u00e9"]),
    "İstanbul": (["i\u0307stanbul"], list("İstanbul")),  # lower() gives 2 code points for İ
    "ΣΟΦΟΣ": (["σοφος"], list("ΣΟΦΟΣ")),  # final sigma at the end of the word
    "a\tb\nc\u00a0d\u3000e\u2028f": (
        list("abcdef"),
        list("a\tb\nc\u00a0d\u3000e\u2028f"),
    ),
    "a\x1cb": (["a\x1cb"], ["a", "\x1c", "b"]),  # U+001C is no White_Space: never a split
    f"x{EMOJI}": ([f"x{EMOJI}"], ["x", EMOJI]),
    "a—b": (["a", "—", "b"], ["a", "—", "b"]),
    "«quoted»": (["«", "quoted", "»"], list("«quoted»")),
    "3.14": (["3", ".", "14"], list("3.14")),
    "": ([], []),
    " \t\n": ([], [" ", "\t", "\n"]),
}
# Ids of the word and char tokens against WORDS and CHARS (1 is <unk>).
WORD_IDS = {
    "The plot was dull.": [4, 5, 6, 7, 8],
    "don't": [9, 10, 11],
    "U.S.A.": [23, 8, 24, 8, 21, 8],
    CAFE_NFD: [12],
    "İstanbul": [14],
    "ΣΟΦΟΣ": [13],
    "a\x1cb": [1],
    f"x{EMOJI}": [1],
    "«quoted»": [15, 17, 16],
    "3.14": [19, 8, 20],
}
CHAR_IDS = {
    CAFE_NFD: [8, 9, 10, 11],
    f"x{EMOJI}": [14, 12],
    "a\x1cb": [9, 15, 1],
    "İstanbul": [16, 1, 1, 9, 1, 1, 1, 1],
    "The ": [4, 5, 6, 7],
}


@pytest.mark.parametrize("text", list(CASES))
def test_tricky_text_tokens(text):
    words, chars = CASES[text]
    assert WORD.tokenize(text) == words
    assert CHAR.tokenize(text) == chars


def test_case_kept_for_tag_and_char():
    assert TAG.tokenize("Ann visited U.S.A.") == ["Ann", "visited", "U", ".", "S", ".", "A", "."]
    assert CHAR.tokenize("ΣΟΦΟΣ") == list("ΣΟΦΟΣ")
    assert TextRules("char", lowercase=True).tokenize("ΣΟΦΟΣ") == list("σοφος")


def test_nfc_off_keeps_the_code_points():
    assert TextRules("word").tokenize(CAFE_NFD) == [CAFE_NFD]
    assert TextRules("char").tokenize(CAFE_NFD) == list(CAFE_NFD)


def test_normalize_token_never_splits():
    assert WORD.normalize_token("U.S.A.") == "u.s.a."
    assert TAG.normalize_token(CAFE_NFD.upper()) == unicodedata.normalize("NFC", "CAFÉ")


def test_whitespace_is_unicode_white_space_not_str_split():
    assert len(UNICODE_WHITESPACE) == 25 and 0x1C not in UNICODE_WHITESPACE
    assert set(PYTHON_WHITESPACE) - set(UNICODE_WHITESPACE) == {0x1C, 0x1D, 0x1E, 0x1F}
    for point in (0x200B, 0x180E, 0xFEFF):  # zero-width space and friends are no White_Space
        assert WORD.tokenize(f"a{chr(point)}b") == [f"a{chr(point)}b"]
    assert TextRules.legacy("word").tokenize("a\x1cb c") == ["a", "b", "c"]


def _meta(task: str, rules: TextRules, vocab: list[str]) -> DataMeta:
    tokens = None if task == "tag" else rules.tokens
    labels = ["neg", "pos"] if task == "classify" else ["O"]
    return DataMeta(task, tokens, vocab=vocab, labels=labels, text=rules.to_manifest())


def _manifest(meta: DataMeta, tokenization: str) -> dict:
    text = meta.text
    return {
        "task": meta.task,
        "vocab": meta.vocab,
        "labels": meta.labels,
        "input": {"type": "tokens", "tokenization": tokenization, "text": text, "max_len": 512},
    }


@pytest.mark.parametrize(
    ("rules", "vocab", "expected"), [(WORD, WORDS, WORD_IDS), (CHAR, CHARS, CHAR_IDS)]
)
def test_training_and_runtime_give_the_same_ids(rules, vocab, expected):
    meta = _meta("classify", rules, vocab)
    training, runtime = Codec(meta), BundleCodec(_manifest(meta, rules.tokens))
    for text in [*CASES, *expected]:
        if not rules.tokenize(text) or rules.is_blank(rules.tokenize(text)):
            with pytest.raises(EdgeRNNError, match="empty or blank"):
                runtime.ids(text)
            continue
        ids = runtime.ids(text)
        assert training.token_ids(text).tolist() == ids
        if text in expected:
            assert ids == expected[text], text


def test_tag_runtime_tokenizes_text_and_normalizes_given_tokens():
    meta = _meta("tag", TAG, [*SPECIALS, "Ann", CAFE_NFC, "."])
    codec = BundleCodec(_manifest(meta, "pretokenized"))
    assert codec.ids(f"Ann {CAFE_NFD}.") == [4, 5, 6]
    assert codec.ids(["Ann", CAFE_NFD + "."]) == [4, 1]  # a given token is never split
    training = Codec(meta).encode((["Ann", CAFE_NFD], ["O", "O"]), "train")[0]
    assert training.tolist() == [4, 5]


def test_manifest_record_round_trips_and_is_complete():
    record = WORD.to_manifest()
    assert record == {
        "steps": ["NFC", "lowercase", "split_whitespace", "split_punctuation"],
        "units": "words",
        "whitespace": list(UNICODE_WHITESPACE),
        "punctuation": "unicode_category_P",
        "unicode_version": unicodedata.unidata_version,
        "join": " ",
        "unknown_id": 1,
    }
    assert CHAR.to_manifest()["steps"] == ["NFC", "split_code_points"]
    assert CHAR.to_manifest()["units"] == "code_points" and CHAR.join == ""
    for rules in (WORD, TAG, CHAR, TextRules.legacy("word"), TextRules.legacy("char")):
        assert TextRules.from_manifest(json.loads(json.dumps(rules.to_manifest()))) == rules


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"steps": ["NFKC", "split_whitespace"]}, "steps must be"),
        ({"steps": ["lowercase", "NFC", "split_whitespace"]}, "pipeline order"),
        ({"steps": ["NFC", "split_code_points", "split_punctuation"]}, "steps must be"),
        ({"units": "graphemes"}, "units must be"),
        ({"units": "code_points"}, "units must be"),
        ({"whitespace": [32, 9]}, "whitespace must be"),
        ({"whitespace": [0xD800]}, "whitespace must be"),
        ({"whitespace": [True]}, "whitespace must be"),
        ({"punctuation": "ascii"}, "punctuation must be"),
        ({"join": "-"}, "join must be"),
        ({"join": ""}, "join must be"),
        ({"unknown_id": 0}, "unknown_id must be"),
        ({"unicode_version": 15}, "unicode_version must be"),
        ({"extra": 1}, "extra must be absent"),
    ],
)
def test_bad_records_are_one_clear_error(change, fragment, tmp_path):
    with pytest.raises(EdgeRNNError, match=fragment):
        TextRules.from_manifest(WORD.to_manifest() | change)
    with pytest.raises(EdgeRNNError, match=r"manifest\.json: field input\.text\."):
        _read_tag_manifest(tmp_path, lambda m: m["input"].update(text=WORD.to_manifest() | change))


def _read_tag_manifest(folder: Path, change) -> dict:
    # A real tag bundle's manifest (tokenization pretokenized), changed; no graph is opened.
    source = bundle("tag", "gru", False, exporter="torchscript")[0]
    manifest = json.loads((source / "manifest.json").read_text("utf-8"))
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return read_manifest(folder)


def test_schema_requires_rules_from_version_2_and_agreeing_units(tmp_path):
    def drop(manifest, version):
        del manifest["input"]["text"]
        manifest["version"] = version

    assert "text" not in _read_tag_manifest(tmp_path, lambda m: drop(m, 1))["input"]
    with pytest.raises(EdgeRNNError, match="field input.text must be an object"):
        _read_tag_manifest(tmp_path, lambda m: drop(m, 2))
    with pytest.raises(EdgeRNNError, match="input.text.units must be words for tokenization"):
        _read_tag_manifest(tmp_path, lambda m: m["input"].update(text=CHAR.to_manifest()))
    with pytest.raises(EdgeRNNError, match="input.text must be null for numeric"):
        schema._text({"type": "features", "text": WORD.to_manifest()}, 2, "m.json")


def test_an_exported_bundle_records_its_rules():
    directory, checkpoint = bundle("classify", "gru", False, exporter="torchscript")
    manifest = read_manifest(directory)  # the whole schema, input.text included
    assert manifest["version"] == VERSION == 2
    assert checkpoint.meta.text is None  # made without rules: the legacy ones, recorded
    assert manifest["input"]["text"] == TextRules.legacy("char").to_manifest()
    assert meta_from_manifest(manifest).text_rules() == TextRules.legacy("char")


def test_version_1_manifest_uses_the_legacy_splitting():
    legacy = {"type": "tokens", "tokenization": "word", "max_len": 512}
    manifest = {"task": "classify", "vocab": [*SPECIALS, "dull.", "The"], "input": legacy}
    codec = BundleCodec(manifest)
    assert bundle_rules(legacy) == TextRules.legacy("word")
    assert codec.tokenize("The plot\x1cwas dull.") == ["The", "plot", "was", "dull."]
    assert codec.ids("The dull.") == [5, 4]
    with pytest.raises(EdgeRNNError, match="empty or blank"):
        codec.ids("\x1c\x1d")  # blank to str.strip(), as version 1 said
    assert meta_from_manifest(manifest | {"labels": ["a"]}).text is None
    chars = BundleCodec({"vocab": [*SPECIALS, "é"], "input": legacy | {"tokenization": "char"}})
    assert chars.tokenize(CAFE_NFD) == list(CAFE_NFD) and chars.text([4, 4], "vocab") == "éé"


def test_legacy_checkpoint_meta_keeps_str_split():
    meta = DataMeta("classify", "word", vocab=[*SPECIALS, "Dull."], labels=["a"])
    assert meta.text_rules() == TextRules.legacy("word")
    assert Codec(meta).token_ids("Dull. dull").tolist() == [4, 1]
    assert DataMeta("tag", None, vocab=list(SPECIALS), labels=["O"]).text_rules().tokens == "word"


def test_damaged_rules_in_a_checkpoint_meta_are_refused():
    meta = replace(_meta("classify", WORD, WORDS), text=WORD.to_manifest() | {"join": ""})
    with pytest.raises(EdgeRNNError, match="text rules: join must be"):
        meta.text_rules()
    meta = replace(_meta("classify", WORD, WORDS), tokens="char")
    with pytest.raises(EdgeRNNError, match="text rules cut word tokens, the data has char"):
        meta.text_rules()


def test_task_defaults_and_choices():
    assert text_rules("classify", "word") == WORD
    assert text_rules("lm", "word") == WORD
    assert text_rules("tag", "word") == TAG
    assert text_rules("lm", "char") == CHAR
    assert text_rules("seq2seq", "char", unicode="none", lowercase=True) == TextRules(
        "char", lowercase=True
    )
    chosen = text_rules("classify", "word", "none", False, False)
    assert chosen == TextRules("word") and chosen.steps() == ["split_whitespace"]
    with pytest.raises(EdgeRNNError, match="punctuation splitting applies to word tokens"):
        text_rules("lm", "char", split_punctuation=True)
    with pytest.raises(EdgeRNNError, match="unicode normalization must be nfc or none"):
        text_rules("lm", "char", unicode="nfkc")


TINY = ["--hidden", "8", "--embed", "8", "--epochs", "1", "--batch-size", "16", "--quiet"]


def _train(data, task: str, out, *flags: str):
    args = ["train", "--task", task, "--data", str(data), *TINY, *flags, "-o", str(out)]
    return CliRunner().invoke(main, args)


def test_train_flags_reach_the_checkpoint(tmp_path):
    rows = ["text,label"] + [f'"The Plot was {w}.",{w}' for w in ("Dull", "Great") * 20]
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = _train(data, "classify", tmp_path / "auto.pt")
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "auto.pt", weights_only=True)
    assert saved["version"] == 2 and saved["data"]["text"] == WORD.to_manifest()
    meta = load_checkpoint(tmp_path / "auto.pt").meta
    assert {"the", "plot", "dull", "."} <= set(meta.vocab)
    flags = ["--unicode", "none", "--no-lowercase", "--no-split-punct"]
    result = _train(data, "classify", tmp_path / "kept.pt", *flags)
    assert result.exit_code == 0, result.output
    meta = load_checkpoint(tmp_path / "kept.pt").meta
    assert meta.text_rules() == TextRules("word") and {"The", "Dull."} <= set(meta.vocab)
    result = _train(data, "classify", tmp_path / "bad.pt", "--tokens", "char", "--split-punct")
    assert result.exit_code == 1 and "punctuation splitting applies to word tokens" in result.output
    result = _train(data, "classify", tmp_path / "bad.pt", "--unicode", "nfkc")
    assert result.exit_code == 2 and "Invalid value for '--unicode'" in result.output


def test_recipes_take_the_same_choices():
    data = {"source": "builtin:sentiment", "task": "classify", "unicode": "none"}
    recipe = parse_recipe({"data": data | {"lowercase": False}}, Path("r.toml"))
    choices = {"unicode": "none", "lowercase": False, "split_punctuation": None}
    assert recipe.data.text_choices() == choices
    with pytest.raises(EdgeRNNError, match=r"r\.toml: \[data\] unicode 'nfkc' is not one of"):
        parse_recipe({"data": data | {"unicode": "nfkc"}}, Path("r.toml"))
    with pytest.raises(EdgeRNNError, match=r"\[data\] split_punct must be true or false"):
        parse_recipe({"data": data | {"split_punct": "yes"}}, Path("r.toml"))
